// The `on-targets` block: narrows the selected targets to those named.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

#include <algorithm>

namespace reprise {
namespace {

Result<OnTargetsBlock> Parse(StepArgs& args) {
  const char* kind = "on-targets";
  REPRISE_RETURN_IF_ERROR(args.Load(kind, {"targets", "steps"}));
  OnTargetsBlock b;
  if (!args.Has("targets")) return args.Missing("targets", kind);
  StepArgs targets = args.Get("targets");
  if (targets.IsScalar()) {
    b.targets.push_back(targets.Scalar());
  } else {
    REPRISE_ASSIGN_OR_RETURN(b.targets, targets.StringList(Quoted("targets", kind)));
  }
  if (b.targets.empty()) return targets.Error("'targets' in on-targets is empty");
  int counter = 0;
  REPRISE_ASSIGN_OR_RETURN(b.steps, args.Children("steps", kind, &counter));
  return b;
}

Flow Run(Walker& w, const Step& step, const OnTargetsBlock& block, Frame& f) {
  std::vector<const TargetInfo*> selected;
  for (const auto& name : block.targets) {
    const TargetInfo* t = w.context().FindTarget(name);
    if (!t) {
      std::string message = "target " + name + " is not a target of stage " + w.context().stage;
      if (w.dry()) {
        w.Problem(step, message);
        continue;
      }
      return w.RecordFailure(step, message, f, w.clock().Now());
    }
    if (std::find(f.targets.begin(), f.targets.end(), t) != f.targets.end()) {
      selected.push_back(t);
    }
  }
  std::string names;
  for (const auto* t : selected) names += (names.empty() ? "" : ", ") + t->name;
  if (w.dry())
    w.AddPlanned(step, f, nullptr, "on targets: " + (names.empty() ? "(none here)" : names));
  if (!w.dry()) {
    w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo,
              "on targets: " + (names.empty() ? "(none selected here; skipped)" : names));
  }
  if (selected.empty()) return Flow::Ok();
  std::vector<const TargetInfo*> saved = f.targets;
  f.targets = selected;
  Flow flow = w.RunNested(block.steps, f);
  f.targets = saved;
  return flow;
}

}  // namespace

StepKindInfo OnTargetsKind() { return MakeStepKind("on-targets", /*is_block=*/true, Parse, Run); }

}  // namespace reprise
