// Catalog::PutApplication: the spec is parsed by the planner, then checked
// against the environments and targets this server knows.
#include "planner/app_spec.h"
#include "server/catalog/catalog.h"

namespace reprise {

Result<ApplicationRecord> Catalog::PutApplication(const std::string& actor,
                                                  const std::string& name,
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
  rec.spec_json = AppSpecToJson(*spec);
  rec.spec_text = spec_text;
  rec.updated_at = ToUnixMillis(options_.clock->Now());
  rec.updated_by = actor;
  std::string stages;
  for (const auto& s : spec->pipeline) stages += (stages.empty() ? "" : " -> ") + s.stage;
  Store& store = *options_.store;
  std::optional<ApplicationRecord> stored;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(stored, store.PutApplication(rec));
    return store.AppendAudit(
        AuditOf(actor, "application.put", name,
                "spec version " + std::to_string(stored->spec_version) + ", pipeline " + stages));
  }));
  return std::move(*stored);
}

// A stored spec with sensitive values masked, for responses.
std::string MaskedSpecJson(const std::string& spec_json) {
  auto spec = ParseAppSpec(spec_json, "stored spec");
  if (!spec.ok()) return "{}";
  return AppSpecToJson(*spec, SensitiveValues::kMask);
}

}  // namespace reprise
