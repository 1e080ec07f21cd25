// Catalog::PutApplication: the spec is parsed by the planner, then checked
// against the environments and targets this server knows, and against the
// targets of the other applications (a target belongs to one application).
#include "planner/app_spec.h"
#include "server/catalog/catalog.h"

namespace reprise {

namespace {

// kInvalidArgument when another application's current spec names one of
// `spec`'s targets: two applications on one target would overwrite each
// other's `current`. Run inside the save's transaction.
Status CheckTargetsUnshared(Store& store, const std::string& name, const AppSpec& spec) {
  constexpr int64_t kPageSize = 1000;
  for (Page page{kPageSize, 0};; page.offset += kPageSize) {
    REPRISE_ASSIGN_OR_RETURN(auto apps, store.ListApplications(page));
    for (const auto& other : apps) {
      if (other.name == name) continue;
      auto other_spec = ParseAppSpec(other.spec_json, "application " + other.name);
      if (!other_spec.ok())
        return Internal("cannot read the spec of application '" + other.name +
                        "': " + other_spec.status().message());
      for (const auto& stage : spec.pipeline)
        for (const auto& target : stage.targets)
          for (const auto& other_stage : other_spec->pipeline)
            for (const auto& taken : other_stage.targets)
              if (taken == target)
                return InvalidArgument("spec: stage '" + stage.stage + "': target '" + target +
                                       "' is used by application '" + other.name + "' (stage '" +
                                       other_stage.stage +
                                       "'); a target belongs to one application");
    }
    if (static_cast<int64_t>(apps.size()) < kPageSize) return Status::Ok();
  }
}

// A spec edited from its masked text sends "******" back for the sensitive
// variables it did not change: they keep the stored spec's values.
Status KeepStoredSpecSecrets(Store& store, const std::string& name, AppSpec& spec) {
  bool has_mask = false;
  for (const auto& [_, v] : spec.variables) has_mask = has_mask || v.value == kMask;
  if (!has_mask) return Status::Ok();
  VariableMap stored_vars;
  auto stored = store.GetApplication(name);
  if (stored.ok()) {
    auto stored_spec = ParseAppSpec(stored->spec_json, "stored spec");
    if (stored_spec.ok()) stored_vars = stored_spec->variables;
  } else if (stored.status().code() != Code::kNotFound) {
    return stored.status();
  }
  return KeepMaskedValues(spec.variables, stored_vars).WithContext("spec");
}

}  // namespace

Result<ApplicationRecord> Catalog::PutApplication(const std::string& actor, const std::string& name,
                                                  const std::string& spec_text) {
  if (!IsValidName(name)) return InvalidArgument("application name '" + name + "' is invalid");
  if (spec_text.empty())
    return InvalidArgument("the application spec is empty (send YAML or JSON)");
  auto spec = ParseAppSpec(spec_text, "spec");
  if (!spec.ok()) return spec.status();
  if (spec->pipeline.empty()) return InvalidArgument("spec: 'pipeline' needs at least one stage");
  for (const auto& stage : spec->pipeline) {
    const std::string where = "spec: stage '" + stage.stage + "'";
    auto env = options_.store->GetEnvironment(stage.environment);
    if (!env.ok()) {
      if (env.status().code() == Code::kNotFound)
        return InvalidArgument(where + ": unknown environment '" + stage.environment + "'");
      return env.status();
    }
    if (stage.targets.empty()) return InvalidArgument(where + ": 'targets' is empty");
    for (const auto& target_name : stage.targets) {
      auto target = options_.store->GetTarget(target_name);
      if (!target.ok()) {
        if (target.status().code() == Code::kNotFound)
          return InvalidArgument(where + ": unknown target '" + target_name + "'");
        return target.status();
      }
      if (target->environment != stage.environment)
        return InvalidArgument(where + ": target '" + target_name + "' is in environment '" +
                               target->environment + "', not '" + stage.environment + "'");
    }
  }
  ApplicationRecord rec;
  rec.name = name;
  REPRISE_RETURN_IF_ERROR(KeepStoredSpecSecrets(*options_.store, name, *spec));
  rec.spec_json = AppSpecToJson(*spec);
  // A mask still there once the secrets are back stands somewhere else (a
  // secret's value that also appeared literally in a plan): saving it would
  // silently change the spec.
  if (rec.spec_json.find(kMask) != std::string::npos)
    return InvalidArgument("spec: '" + std::string(kMask) +
                           "' stands where no stored secret can be put back (a secret's value "
                           "that also appears elsewhere in the spec, e.g. in a plan, is masked "
                           "there too): type the real text in its place");
  rec.spec_text = spec_text;
  rec.updated_at = ToUnixMillis(options_.clock->Now());
  rec.updated_by = actor;
  std::string stages;
  for (const auto& s : spec->pipeline) stages += (stages.empty() ? "" : " -> ") + s.stage;
  Store& store = *options_.store;
  std::optional<ApplicationRecord> stored;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(CheckTargetsUnshared(store, name, *spec));
    REPRISE_ASSIGN_OR_RETURN(stored, store.PutApplication(rec));
    return store.AppendAudit(
        AuditOf(actor, "application.put", name,
                "spec version " + std::to_string(stored->spec_version) + ", pipeline " + stages));
  }));
  return std::move(*stored);
}

std::string MaskedSpecText(const ApplicationRecord& app) {
  auto spec = ParseAppSpec(app.spec_json, "stored spec");
  if (!spec.ok()) return "";
  std::vector<std::string> secrets;
  for (const auto& [_, v] : spec->variables)
    if (v.sensitive && !v.value.empty()) secrets.push_back(v.value);
  return Masker(std::move(secrets)).Mask(app.spec_text);
}

// A stored spec with sensitive values masked, for responses.
std::string MaskedSpecJson(const std::string& spec_json) {
  auto spec = ParseAppSpec(spec_json, "stored spec");
  if (!spec.ok()) return "{}";
  return AppSpecToJson(*spec, SensitiveValues::kMask);
}

}  // namespace reprise
