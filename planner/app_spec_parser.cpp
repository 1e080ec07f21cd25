// Application specs (pipeline, variables, gates, plans) from YAML or JSON
// text, read through the planner's yaml-cpp primitives (yaml_reader.h);
// plans embedded as text go through the plan parser.
#include "planner/app_spec.h"
#include "planner/steps/step_args.h"
#include "planner/yaml_reader.h"

namespace reprise {

using namespace yaml_internal;

namespace {

// ---- Application spec ----

Result<Variable> ReadVariable(const Reader& r, const YAML::Node& node, const std::string& name) {
  if (node.IsScalar()) return Variable{node.Scalar(), false};
  if (node.IsNull()) return Variable{"", false};
  Fields f;
  std::string what = "variable '" + name + "'";
  auto loaded = f.Load(r, node, what, {"value", "sensitive"});
  if (!loaded.ok()) return loaded.status();
  Variable var;
  if (!f.Has("value")) return r.Error(node, "missing key 'value' in " + what);
  REPRISE_ASSIGN_OR_RETURN(var.value, ReadString(r, f.Get("value"), Quoted("value", what)));
  if (f.Has("sensitive")) {
    REPRISE_ASSIGN_OR_RETURN(var.sensitive,
                             ReadBool(r, f.Get("sensitive"), Quoted("sensitive", what)));
  }
  return var;
}

Result<VariableMap> ReadVariables(const Reader& r, const YAML::Node& node) {
  VariableMap out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) return r.Error(node, "'variables' must be a map of name: value");
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
    if (!key.IsScalar() || !IsValidVariableName(key.Scalar())) {
      return r.Error(key, "variable names are letters, digits and _ (not starting with a digit)");
    }
    const std::string& name = key.Scalar();
    if (IsBuiltinVariableName(name)) {
      return r.Error(key, "variable '" + name + "' is built in and cannot be set");
    }
    if (out.count(name)) return r.Error(key, "duplicate variable '" + name + "'");
    REPRISE_ASSIGN_OR_RETURN(out[name], ReadVariable(r, it->second, name));
  }
  return out;
}

Result<GateSpec> ReadGates(const Reader& r, const YAML::Node& node) {
  GateSpec gates;
  if (node.IsNull()) return gates;
  Fields f;
  auto loaded =
      f.Load(r, node, "gates", {"approvals", "window", "timezone", "allow_self_approval"});
  if (!loaded.ok()) return loaded.status();
  if (f.Has("approvals")) {
    const YAML::Node a = f.Get("approvals");
    Fields af;
    auto l = af.Load(r, a, "approvals", {"count", "role"});
    if (!l.ok()) return l.status();
    if (!af.Has("count")) return r.Error(a, "missing key 'count' in approvals");
    REPRISE_ASSIGN_OR_RETURN(int64_t count,
                             ReadInt(r, af.Get("count"), "'count' in approvals", 0, 100));
    gates.approvals.count = static_cast<int>(count);
    if (af.Has("role")) {
      REPRISE_ASSIGN_OR_RETURN(gates.approvals.role,
                               ReadString(r, af.Get("role"), "'role' in approvals"));
      if (!gates.approvals.role.empty() && !IsKnownRole(gates.approvals.role))
        return r.Error(af.Get("role"), "unknown role '" + gates.approvals.role +
                                           "' in approvals (expected: " + kKnownRoles + ")");
    }
  }
  std::shared_ptr<const TimeZone> zone;  // for windows that name none; null: UTC
  if (f.Has("timezone")) {
    const YAML::Node z = f.Get("timezone");
    REPRISE_ASSIGN_OR_RETURN(gates.timezone, ReadString(r, z, "'timezone' in gates"));
    auto loaded_zone = TimeZone::Get(gates.timezone);
    if (!loaded_zone.ok()) {
      return r.Error(z, "'timezone' in gates: " + loaded_zone.status().message());
    }
    zone = *loaded_zone;
  }
  if (f.Has("window")) {
    const YAML::Node w = f.Get("window");
    std::vector<YAML::Node> items;
    if (w.IsScalar()) {
      items.push_back(w);
    } else if (w.IsSequence()) {
      for (const auto& item : w) items.push_back(item);
    } else {
      return r.Error(w, "'window' in gates must be a list such as [\"Mon-Fri 22:00-06:00\"]");
    }
    for (const auto& item : items) {
      REPRISE_ASSIGN_OR_RETURN(std::string text, ReadString(r, item, "a 'window' in gates"));
      auto window = ParseDeploymentWindow(text, zone);
      if (!window.ok()) return r.Error(item, "'window' in gates: " + window.status().message());
      gates.windows.push_back(std::move(window).value());
    }
  }
  if (f.Has("allow_self_approval")) {
    REPRISE_ASSIGN_OR_RETURN(gates.allow_self_approval, ReadBool(r, f.Get("allow_self_approval"),
                                                                 "'allow_self_approval' in gates"));
  }
  return gates;
}

Result<StageSpec> ReadStage(const Reader& r, const YAML::Node& node) {
  Fields f;
  auto loaded =
      f.Load(r, node, "a pipeline stage",
             {"stage", "environment", "targets", "plan", "auto_promote", "protected", "gates"});
  if (!loaded.ok()) return loaded.status();
  StageSpec s;
  s.position = Reader::Position(node.Mark());
  for (const char* key : {"stage", "environment", "targets", "plan"}) {
    if (!f.Has(key)) {
      return r.Error(node, "missing key '" + std::string(key) + "' in a pipeline stage");
    }
  }
  REPRISE_ASSIGN_OR_RETURN(s.stage, ReadString(r, f.Get("stage"), "'stage'"));
  if (s.stage.empty()) return r.Error(f.Get("stage"), "'stage' is empty");
  std::string what = "stage '" + s.stage + "'";
  REPRISE_ASSIGN_OR_RETURN(s.environment,
                           ReadString(r, f.Get("environment"), Quoted("environment", what)));
  const YAML::Node targets = f.Get("targets");
  if (targets.IsScalar()) {
    s.targets.push_back(targets.Scalar());
  } else {
    REPRISE_ASSIGN_OR_RETURN(s.targets, ReadStringList(r, targets, Quoted("targets", what)));
  }
  if (s.targets.empty()) return r.Error(targets, Quoted("targets", what) + " is empty");
  std::set<std::string> seen;
  for (const auto& t : s.targets) {
    if (!seen.insert(t).second)
      return r.Error(targets, "target '" + t + "' listed twice in " + what);
  }
  REPRISE_ASSIGN_OR_RETURN(s.plan, ReadString(r, f.Get("plan"), Quoted("plan", what)));
  if (f.Has("auto_promote")) {
    REPRISE_ASSIGN_OR_RETURN(s.auto_promote,
                             ReadBool(r, f.Get("auto_promote"), Quoted("auto_promote", what)));
  }
  if (f.Has("protected")) {
    REPRISE_ASSIGN_OR_RETURN(s.is_protected,
                             ReadBool(r, f.Get("protected"), Quoted("protected", what)));
  }
  if (f.Has("gates")) {
    REPRISE_ASSIGN_OR_RETURN(s.gates, ReadGates(r, f.Get("gates")));
  }
  return s;
}

bool IsValidPlanName(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

Result<AppSpec> ReadAppSpec(const Reader& r, const YAML::Node& root) {
  if (!root.IsDefined() || root.IsNull()) return r.Error(root, "the application spec is empty");
  Fields f;
  auto loaded =
      f.Load(r, root, "the application spec", {"description", "variables", "pipeline", "plans"});
  if (!loaded.ok()) return loaded.status();
  AppSpec spec;
  if (f.Has("description")) {
    REPRISE_ASSIGN_OR_RETURN(spec.description,
                             ReadString(r, f.Get("description"), "'description'"));
  }
  if (f.Has("variables")) {
    REPRISE_ASSIGN_OR_RETURN(spec.variables, ReadVariables(r, f.Get("variables")));
  }
  std::map<std::string, YAML::Mark> plan_marks;
  if (f.Has("plans")) {
    const YAML::Node plans = f.Get("plans");
    if (!plans.IsMap() && !plans.IsNull()) {
      return r.Error(plans, "'plans' must be a map of plan name: plan YAML");
    }
    for (auto it = plans.begin(); plans.IsMap() && it != plans.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
      if (!key.IsScalar() || !IsValidPlanName(key.Scalar())) {
        return r.Error(key, "plan names are letters, digits, '-', '_' and '.'");
      }
      const std::string& name = key.Scalar();
      if (spec.plans.count(name)) return r.Error(key, "duplicate plan '" + name + "'");
      const YAML::Node value = it->second;  // a copy: the iterator proxy dies here
      std::string text;
      if (value.IsScalar()) {
        text = value.Scalar();
        // Positions inside the text are relative to the text itself.
        Reader inner(r.Where(value.Mark()) + ": plan '" + name + "' ", true);
        Result<Plan> plan =
            Guarded<Plan>(inner, [&] { return ParsePlanNode(inner, YAML::Load(text), name); });
        if (!plan.ok()) return plan.status();
      } else if (value.IsSequence()) {
        // A plan written inline as YAML: positions are the spec's own.
        Result<Plan> plan = ParsePlanNode(r, value, name);
        if (!plan.ok())
          return Status(plan.status().code(),
                        plan.status().message() + " (in plan '" + name + "')");
        text = YAML::Dump(value) + "\n";
      } else {
        return r.Error(value,
                       "plan '" + name + "' must be YAML text (a string) or a list of steps");
      }
      spec.plans[name] = text;
      plan_marks[name] = key.Mark();
    }
  }
  if (!f.Has("pipeline")) return r.Error(root, "missing key 'pipeline' in the application spec");
  const YAML::Node pipeline = f.Get("pipeline");
  if (!pipeline.IsSequence()) return r.Error(pipeline, "'pipeline' must be a list of stages");
  for (const auto& item : pipeline) {
    REPRISE_ASSIGN_OR_RETURN(StageSpec stage, ReadStage(r, item));
    if (spec.FindStage(stage.stage)) {
      return r.Error(item, "duplicate stage '" + stage.stage + "'");
    }
    if (spec.plans.count(stage.plan) == 0) {
      return r.Error(item, "stage '" + stage.stage + "' uses plan '" + stage.plan +
                               "', which is not in 'plans'");
    }
    spec.pipeline.push_back(std::move(stage));
  }
  return spec;
}

}  // namespace

Result<AppSpec> ParseAppSpec(std::string_view text, std::string_view source_name) {
  Reader r{std::string(source_name)};
  return Guarded<AppSpec>(r, [&] { return ReadAppSpec(r, YAML::Load(std::string(text))); });
}

}  // namespace reprise
