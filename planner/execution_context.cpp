#include "planner/execution_context.h"

#include <nlohmann/json.hpp>

#include <set>

#include "common/enum_names.h"

namespace reprise {

using nlohmann::json;

const TargetInfo* ExecutionContext::FindTarget(std::string_view name) const {
  for (const auto& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

VariableScopes ExecutionContext::ScopesFor(const TargetInfo* target) const {
  VariableScopes scopes;
  for (const auto& [scope, map] : variables) {
    if (scope == Scope::kRuntime || scope == Scope::kTarget) continue;
    scopes.At(scope) = map;
  }
  VariableMap& b = scopes.Builtins();
  auto set = [&](const char* name, std::string value) {
    b[name] = Variable{std::move(value), false};
  };
  set("ApplicationName", application);
  set("ReleaseNumber", release);
  set("BuildNumber", build);
  set("StageName", stage);
  set("EnvironmentName", environment);
  set("DeploymentId", deployment_id);
  set("ExecutionUser", execution_user);
  set("IsRedeploy", is_redeploy ? "true" : "false");
  set("IsRollback", is_rollback ? "true" : "false");
  set("PreviousBuildNumber", previous_build);
  // Only unambiguous with one artifact; with several, deploy-artifact knows
  // each hash by name.
  if (artifact_sha256.size() == 1) set("ArtifactSha256", artifact_sha256.begin()->second);
  if (target) {
    scopes.At(Scope::kTarget) = target->variables;
    set("TargetName", target->name);
    set("TargetPath", target->path);
  }
  return scopes;
}

std::vector<std::string> ExecutionContext::SensitiveValues() const {
  std::vector<std::string> out;
  for (const auto& [scope, map] : variables) AppendSensitiveValues(map, &out);
  for (const auto& t : targets) AppendSensitiveValues(t.variables, &out);
  return out;
}

Status ExecutionContext::Validate() const {
  auto check = [](const VariableMap& map, std::string_view where) -> Status {
    for (const auto& [name, var] : map) {
      if (!IsValidVariableName(name)) {
        return InvalidArgument("bad variable name \"" + name + "\" in " + std::string(where));
      }
      if (IsBuiltinVariableName(name)) {
        return InvalidArgument("variable $" + name + " in " + std::string(where) +
                               " is built in and cannot be set");
      }
    }
    return Status::Ok();
  };
  for (const auto& [scope, map] : variables) {
    REPRISE_RETURN_IF_ERROR(check(map, std::string(ScopeName(scope)) + " scope"));
  }
  std::set<std::string> names;
  for (const auto& t : targets) {
    if (t.name.empty()) return InvalidArgument("a target has no name");
    if (!names.insert(t.name).second) return InvalidArgument("target " + t.name + " listed twice");
    REPRISE_RETURN_IF_ERROR(check(t.variables, "target " + t.name));
  }
  return Status::Ok();
}

namespace {

// The context's string fields by their JSON names, written and read alike.
struct StringField {
  const char* name;
  std::string ExecutionContext::*member;
};
constexpr StringField kStringFields[] = {
    {"deployment_id", &ExecutionContext::deployment_id},
    {"application", &ExecutionContext::application},
    {"release", &ExecutionContext::release},
    {"build", &ExecutionContext::build},
    {"stage", &ExecutionContext::stage},
    {"environment", &ExecutionContext::environment},
    {"execution_user", &ExecutionContext::execution_user},
    {"previous_build", &ExecutionContext::previous_build},
    {"plan_name", &ExecutionContext::plan_name},
    {"plan_text", &ExecutionContext::plan_text},
};

json VariablesToJson(const VariableMap& map, bool mask) {
  json out = json::object();
  for (const auto& [name, var] : map) {
    out[name] = json{{"value", mask && var.sensitive ? std::string(kMask) : var.value},
                     {"sensitive", var.sensitive}};
  }
  return out;
}

std::string ToJsonImpl(const ExecutionContext& c, bool mask) {
  json j;
  for (const StringField& field : kStringFields) j[field.name] = c.*field.member;
  j["is_redeploy"] = c.is_redeploy;
  j["is_rollback"] = c.is_rollback;
  json targets = json::array();
  for (const auto& t : c.targets) {
    targets.push_back(json{{"name", t.name},
                           {"agent", t.agent},
                           {"path", t.path},
                           {"variables", VariablesToJson(t.variables, mask)}});
  }
  j["targets"] = targets;
  j["artifacts"] = c.artifact_sha256;
  if (!c.artifact_manifest_hash.empty()) j["artifact_manifests"] = c.artifact_manifest_hash;
  json vars = json::object();
  for (const auto& [scope, map] : c.variables) {
    if (scope == Scope::kRuntime || scope == Scope::kTarget) continue;
    vars[std::string(ScopeName(scope))] = VariablesToJson(map, mask);
  }
  j["variables"] = vars;
  return j.dump();
}

Result<VariableMap> VariablesFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + " must be an object");
  VariableMap out;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_object() || !v.contains("value") || !v["value"].is_string()) {
      return InvalidArgument(where + "." + name +
                             " must be {\"value\": string, \"sensitive\": bool}");
    }
    Variable var;
    var.value = v["value"].get<std::string>();
    var.sensitive = v.value("sensitive", false);
    out[name] = var;
  }
  return out;
}

}  // namespace

std::string ContextToJson(const ExecutionContext& context) { return ToJsonImpl(context, false); }
std::string ContextToDisplayJson(const ExecutionContext& context) {
  return ToJsonImpl(context, true);
}

Result<ExecutionContext> ContextFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) return InvalidArgument("execution context must be a JSON object");
    ExecutionContext c;
    for (const StringField& field : kStringFields) {
      if (j.contains(field.name)) c.*field.member = j.at(field.name).get<std::string>();
    }
    c.is_redeploy = j.value("is_redeploy", false);
    c.is_rollback = j.value("is_rollback", false);
    if (j.contains("targets")) {
      for (const auto& t : j.at("targets")) {
        TargetInfo info;
        info.name = t.at("name").get<std::string>();
        info.agent = t.value("agent", "");
        info.path = t.value("path", "");
        if (t.contains("variables")) {
          REPRISE_ASSIGN_OR_RETURN(info.variables,
                                   VariablesFromJson(t.at("variables"), "targets." + info.name));
        }
        c.targets.push_back(std::move(info));
      }
    }
    if (j.contains("artifacts")) {
      c.artifact_sha256 = j.at("artifacts").get<std::map<std::string, std::string>>();
    }
    if (j.contains("artifact_manifests")) {
      c.artifact_manifest_hash =
          j.at("artifact_manifests").get<std::map<std::string, std::string>>();
    }
    if (j.contains("variables")) {
      for (const auto& [scope_name, map] : j.at("variables").items()) {
        auto scope = ScopeFromName(scope_name);
        if (!scope || *scope == Scope::kRuntime || *scope == Scope::kTarget) {
          return InvalidArgument("unknown variable scope \"" + scope_name + "\"");
        }
        REPRISE_ASSIGN_OR_RETURN(c.variables[*scope],
                                 VariablesFromJson(map, "variables." + scope_name));
      }
    }
    REPRISE_RETURN_IF_ERROR(c.Validate());
    return c;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("bad execution context JSON: ") + e.what());
  }
}

namespace {
// clang-format off
constexpr EnumName<VariableChange::Kind> kChangeKindNames[] = {
    {VariableChange::Kind::kAdded, "added"}, {VariableChange::Kind::kRemoved, "removed"},
    {VariableChange::Kind::kChanged, "changed"},
};
// clang-format on
}  // namespace

std::string_view ChangeKindName(VariableChange::Kind kind) {
  return NameOf(kChangeKindNames, kind, "changed");
}

namespace {

void DiffMaps(const VariableMap& before, const VariableMap& after, Scope scope,
              const std::string& target, std::vector<VariableChange>& out) {
  auto display = [](const Variable& v, bool mask) { return mask ? std::string(kMask) : v.value; };
  for (const auto& [name, old_var] : before) {
    auto it = after.find(name);
    if (it == after.end()) {
      out.push_back({VariableChange::Kind::kRemoved, name, scope, target,
                     display(old_var, old_var.sensitive), "", old_var.sensitive});
    } else if (!(it->second == old_var)) {
      bool sensitive = old_var.sensitive || it->second.sensitive;
      out.push_back({VariableChange::Kind::kChanged, name, scope, target,
                     display(old_var, sensitive), display(it->second, sensitive), sensitive});
    }
  }
  for (const auto& [name, new_var] : after) {
    if (before.count(name) == 0) {
      out.push_back({VariableChange::Kind::kAdded, name, scope, target, "",
                     display(new_var, new_var.sensitive), new_var.sensitive});
    }
  }
}

}  // namespace

ContextDiff Diff(const ExecutionContext& before, const ExecutionContext& after) {
  ContextDiff diff;
  static const VariableMap kEmpty;
  auto scope_map = [](const ExecutionContext& c, Scope s) -> const VariableMap& {
    auto it = c.variables.find(s);
    return it == c.variables.end() ? kEmpty : it->second;
  };
  for (Scope s : kAllScopes) {
    if (s == Scope::kRuntime) continue;
    if (s == Scope::kTarget) {
      std::set<std::string> names;
      for (const auto& t : before.targets) names.insert(t.name);
      for (const auto& t : after.targets) names.insert(t.name);
      for (const auto& name : names) {
        const TargetInfo* b = before.FindTarget(name);
        const TargetInfo* a = after.FindTarget(name);
        DiffMaps(b ? b->variables : kEmpty, a ? a->variables : kEmpty, s, name, diff.variables);
      }
      continue;
    }
    DiffMaps(scope_map(before, s), scope_map(after, s), s, "", diff.variables);
  }
  diff.plan_changed = before.plan_text != after.plan_text;
  std::set<std::string> artifacts;
  for (const auto& [name, sha] : before.artifact_sha256) artifacts.insert(name);
  for (const auto& [name, sha] : after.artifact_sha256) artifacts.insert(name);
  for (const auto& name : artifacts) {
    auto b = before.artifact_sha256.find(name);
    auto a = after.artifact_sha256.find(name);
    if (b == before.artifact_sha256.end() || a == after.artifact_sha256.end() ||
        b->second != a->second) {
      diff.artifacts_changed.push_back(name);
    }
  }
  return diff;
}

std::vector<std::string> ContextDiff::Describe() const {
  std::vector<std::string> lines;
  for (const auto& c : variables) {
    std::string where =
        c.scope == Scope::kTarget ? "target " + c.target : std::string(ScopeName(c.scope));
    std::string line =
        std::string(ChangeKindName(c.kind)) + " " + where + " variable " + c.name + ": ";
    switch (c.kind) {
      case VariableChange::Kind::kAdded:
        line += c.new_value;
        break;
      case VariableChange::Kind::kRemoved:
        line += "was " + c.old_value;
        break;
      case VariableChange::Kind::kChanged:
        line += c.old_value + " -> " + c.new_value;
        break;
    }
    lines.push_back(std::move(line));
  }
  if (plan_changed) lines.push_back("the plan text differs");
  for (const auto& a : artifacts_changed) lines.push_back("artifact " + a + " differs");
  return lines;
}

}  // namespace reprise
