// The `set` step: sets a runtime variable for the steps after it.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<SetStep> Parse(StepArgs& args) {
  REPRISE_RETURN_IF_ERROR(args.Load("set", {"name", "value", "sensitive"}));
  SetStep s;
  if (!args.Has("name")) return args.Missing("name", "set");
  StepArgs name = args.Get("name");
  REPRISE_ASSIGN_OR_RETURN(s.name, name.String("'name' in set"));
  if (!IsValidVariableName(s.name)) {
    return name.Error("'name' in set: \"" + s.name +
                      "\" is not a variable name (letters, digits, _)");
  }
  if (IsBuiltinVariableName(s.name))
    return name.Error("'name' in set: $" + s.name + " is built in");
  REPRISE_ASSIGN_OR_RETURN(s.value, args.Required("value", "set"));
  if (args.Has("sensitive")) {
    REPRISE_ASSIGN_OR_RETURN(s.sensitive, args.Get("sensitive").Bool("'sensitive' in set"));
  }
  return s;
}

Flow Run(Walker& w, const Step& step, const SetStep& set, Frame& f) {
  bool unknown = false;
  auto value = w.Expand(set.value, f, w.SoleTarget(f), &unknown);
  if (w.dry()) {
    if (!value.ok()) {
      w.Problem(step, value.status().message());
      unknown = true;
    }
    if (set.sensitive && value.ok() && !unknown) w.AddSecret(*value);
    std::string shown = set.sensitive ? std::string(kMask) : (value.ok() ? *value : "?");
    w.AddPlanned(step, f, nullptr, "set $" + set.name + " = " + shown);
    // A value set where the step may not run is not known before running.
    if (unknown || !f.condition.empty()) {
      f.runtime.erase(set.name);
      f.unknown_runtime.insert(set.name);
    } else {
      f.runtime[set.name] = Variable{*value, set.sensitive};
      f.unknown_runtime.erase(set.name);
    }
    return Flow::Ok();
  }
  TimePoint started = w.clock().Now();
  if (!value.ok()) return w.RecordFailure(step, value.status().message(), f, started);
  if (set.sensitive) w.AddSecret(*value);
  f.runtime[set.name] = Variable{*value, set.sensitive};
  w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo,
            "set $" + set.name + " = " + (set.sensitive ? std::string(kMask) : *value));
  w.Record(step, w.SoleTarget(f), "set $" + set.name, started, Flow::Ok());
  return Flow::Ok();
}

}  // namespace

StepKindInfo SetKind() { return MakeStepKind("set", /*is_block=*/false, Parse, Run); }

}  // namespace reprise
