#include "server/catalog/catalog.h"

#include <nlohmann/json.hpp>

namespace reprise {

using nlohmann::json;

std::string VariablesToJson(const VariableMap& vars) {
  json j = json::object();
  for (const auto& [name, v] : vars) j[name] = {{"value", v.value}, {"sensitive", v.sensitive}};
  return j.dump();
}

Result<VariableMap> VariablesFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("variables must be a JSON object");
  VariableMap out;
  for (const auto& [name, v] : j.items()) {
    if (!IsValidVariableName(name))
      return InvalidArgument("variable name '" + name +
                             "' is invalid (letters, digits and '_', not starting with a digit)");
    if (IsBuiltinVariableName(name))
      return InvalidArgument("variable '" + name + "' is built in and cannot be set");
    if (v.is_string()) {
      out[name] = Variable{v.get<std::string>(), false};
    } else if (v.is_number() || v.is_boolean()) {
      out[name] = Variable{v.dump(), false};
    } else if (v.is_object()) {
      for (const auto& [key, _] : v.items())
        if (key != "value" && key != "sensitive")
          return InvalidArgument("variable '" + name + "': unknown key '" + key +
                                 "' (expected value, sensitive)");
      auto value = v.find("value");
      if (value == v.end() || !value->is_string())
        return InvalidArgument("variable '" + name + "': 'value' must be a string");
      auto sensitive = v.find("sensitive");
      if (sensitive != v.end() && !sensitive->is_boolean())
        return InvalidArgument("variable '" + name + "': 'sensitive' must be true or false");
      out[name] =
          Variable{value->get<std::string>(), sensitive != v.end() && sensitive->get<bool>()};
    } else {
      return InvalidArgument("variable '" + name + "' must be a string or {value, sensitive}");
    }
  }
  return out;
}

Status KeepMaskedValues(VariableMap& incoming, const VariableMap& stored) {
  for (auto& [name, v] : incoming) {
    if (v.value != kMask) continue;
    auto was = stored.find(name);
    if (was == stored.end() || !was->second.sensitive)
      return InvalidArgument("variable '" + name + "': '" + std::string(kMask) +
                             "' stands for a stored sensitive value, and none is stored under "
                             "that name; enter the value");
    if (!v.sensitive)
      return InvalidArgument("variable '" + name +
                             "': a sensitive value stays sensitive unless a new value is entered");
    v.value = was->second.value;
  }
  return Status::Ok();
}

bool IsValidReleaseNumber(std::string_view number) {
  if (number.empty() || number.size() > 64) return false;
  size_t digits = 0;
  for (size_t i = 0; i < number.size(); ++i) {
    char c = number[i];
    if (c == '.') {
      if (digits == 0) return false;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 6) return false;
    } else {
      return false;
    }
  }
  return digits > 0;
}

Catalog::Catalog(CatalogOptions options) : options_(options) {}

AuditRecord Catalog::AuditOf(const std::string& actor, const std::string& action,
                             const std::string& subject, const std::string& summary) const {
  AuditRecord rec;
  rec.at = ToUnixMillis(options_.clock->Now());
  rec.actor = actor;
  rec.action = action;
  rec.subject = subject;
  rec.summary = summary;
  return rec;
}

namespace {
// The canonical JSON of `variables`, masks sent back replaced by the stored
// secrets of `stored_json` (KeepMaskedValues).
Result<std::string> WithStoredSecrets(VariableMap variables, const std::string& stored_json) {
  REPRISE_ASSIGN_OR_RETURN(auto stored, VariablesFromJson(stored_json));
  REPRISE_RETURN_IF_ERROR(KeepMaskedValues(variables, stored));
  return VariablesToJson(variables);
}

std::string VariableNames(const VariableMap& vars) {
  std::string names;
  for (const auto& [name, _] : vars) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "no variables" : "variables: " + names;
}

// What a new release and a new build both record about their making: their
// variables, who made them and when, and their notes and links.
template <typename Record>
void RecordCreation(Record& rec, const std::string& actor, const VariableMap& variables,
                    const Annotations& annotations, TimePoint now) {
  rec.variables_json = VariablesToJson(variables);
  rec.created_at = ToUnixMillis(now);
  rec.created_by = actor;
  rec.notes = annotations.notes;
  rec.links_json = annotations.links_json;
}
}  // namespace

Status Catalog::PutEnvironment(const std::string& actor, const std::string& name,
                               const VariableMap& variables) {
  if (!IsValidName(name)) return InvalidArgument("environment name '" + name + "' is invalid");
  EnvironmentRecord rec{name, "{}", ToUnixMillis(options_.clock->Now())};
  Store& store = *options_.store;
  return store.Atomically([&] {
    auto before = store.GetEnvironment(name);
    if (!before.ok() && before.status().code() != Code::kNotFound) return before.status();
    REPRISE_ASSIGN_OR_RETURN(
        rec.variables_json,
        WithStoredSecrets(variables, before.ok() ? before->variables_json : "{}"));
    REPRISE_RETURN_IF_ERROR(store.PutEnvironment(rec));
    return store.AppendAudit(AuditOf(actor, "environment.put", name, VariableNames(variables)));
  });
}

Status Catalog::PutGlobalVariables(const std::string& actor, const VariableMap& variables) {
  Store& store = *options_.store;
  return store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(auto before, store.GetGlobalVariables());
    GlobalVariablesRecord rec{"{}", ToUnixMillis(options_.clock->Now()), actor};
    REPRISE_ASSIGN_OR_RETURN(rec.variables_json,
                             WithStoredSecrets(variables, before.variables_json));
    REPRISE_RETURN_IF_ERROR(store.PutGlobalVariables(rec));
    return store.AppendAudit(AuditOf(actor, "variables.put", "global", VariableNames(variables)));
  });
}

Status Catalog::PutTarget(const std::string& actor, const TargetRecord& target,
                          const VariableMap& variables) {
  if (!IsValidName(target.name))
    return InvalidArgument("target name '" + target.name + "' is invalid");
  if (target.environment.empty()) return InvalidArgument("target needs an 'environment'");
  if (target.agent.empty()) return InvalidArgument("target needs an 'agent'");
  if (!IsValidName(target.agent))
    return InvalidArgument("agent name '" + target.agent + "' is invalid");
  if (target.path.empty() || target.path.front() != '/')
    return InvalidArgument("target 'path' must be an absolute directory path");
  if (target.path.find("/../") != std::string::npos || target.path.ends_with("/.."))
    return InvalidArgument("target 'path' must not contain '..'");
  auto env = options_.store->GetEnvironment(target.environment);
  if (!env.ok()) {
    if (env.status().code() == Code::kNotFound)
      return InvalidArgument("unknown environment '" + target.environment + "'");
    return env.status();
  }
  TargetRecord rec = target;
  rec.updated_at = ToUnixMillis(options_.clock->Now());
  Store& store = *options_.store;
  return store.Atomically([&] {
    auto before = store.GetTarget(target.name);
    if (!before.ok() && before.status().code() != Code::kNotFound) return before.status();
    REPRISE_ASSIGN_OR_RETURN(
        rec.variables_json,
        WithStoredSecrets(variables, before.ok() ? before->variables_json : "{}"));
    REPRISE_RETURN_IF_ERROR(store.PutTarget(rec));
    return store.AppendAudit(AuditOf(actor, "target.put", target.name,
                                     "environment " + target.environment + ", agent " +
                                         target.agent + ", path " + target.path + ", " +
                                         VariableNames(variables)));
  });
}

Result<ReleaseRecord> Catalog::CreateRelease(const std::string& actor, const std::string& app,
                                             const std::string& number,
                                             const VariableMap& variables,
                                             const Annotations& annotations) {
  if (!IsValidReleaseNumber(number))
    return InvalidArgument("release number '" + number +
                           "' is invalid (expected dotted numbers such as 1.0.2)");
  auto application = options_.store->GetApplication(app);
  if (!application.ok()) return application.status();
  ReleaseRecord rec;
  rec.application = app;
  rec.number = number;
  rec.spec_version = application->spec_version;
  rec.snapshot_json = application->spec_json;
  RecordCreation(rec, actor, variables, annotations, options_.clock->Now());
  Store& store = *options_.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(store.CreateRelease(rec));
    return store.AppendAudit(AuditOf(
        actor, "release.create", app + "/" + number,
        "spec version " + std::to_string(rec.spec_version) + ", " + VariableNames(variables)));
  }));
  return rec;
}

Result<BuildRecord> Catalog::CreateBuild(const std::string& actor, const std::string& app,
                                         const std::string& release, const VariableMap& variables,
                                         const Annotations& annotations) {
  auto rel = options_.store->GetRelease(app, release);
  if (!rel.ok()) return rel.status();
  BuildRecord rec;
  rec.application = app;
  rec.release = release;
  RecordCreation(rec, actor, variables, annotations, options_.clock->Now());
  Store& store = *options_.store;
  std::optional<BuildRecord> created;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(created, store.CreateBuild(rec));
    return store.AppendAudit(AuditOf(actor, "build.create",
                                     app + "/" + release + "/" + std::to_string(created->number),
                                     VariableNames(variables)));
  }));
  return std::move(*created);
}

}  // namespace reprise
