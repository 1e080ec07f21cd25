// What a target holds (state), re-hashing it (validate), whether the agent
// can write there (probe), and the JSON forms the agent protocol carries.
#include <nlohmann/json.hpp>

#include "agents/agent/json_fields.h"
#include "agents/agent/runner_internal.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace agent_runner;  // this module's own internals

// The JSON forms' fields (json_fields.h), each declared once.
constexpr auto kArchiveLimitsFields = [](auto& l, auto&& field) {
  field("max_entries", l.max_entries);
  field("max_total_bytes", l.max_total_bytes);
  field("max_entry_bytes", l.max_entry_bytes);
  field("max_compression_ratio", l.max_compression_ratio);
  field("ratio_check_min_bytes", l.ratio_check_min_bytes);
};
constexpr auto kTargetStateFields = [](auto& s, auto&& field) {
  field("online", s.online);
  field("current_release", s.current_release);
  field("previous_release", s.previous_release);
  field("release", s.release);
  field("build", s.build);
  field("artifact", s.artifact);
  field("artifact_sha256", s.artifact_sha256);
  field("manifest_hash", s.manifest_hash);
  field("cached_releases", s.cached_releases);
};

}  // namespace

Result<TargetState> AgentRunner::State(std::string_view target_path) {
  REPRISE_ASSIGN_OR_RETURN(fs::path root, ResolveTargetRoot(target_path));
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  // Reads no stamps: stamps being settled need not be waited for.
  Layout l{root};
  TargetState s;
  DeployState st = ReadState(l);
  s.current_release = LinkedRelease(l, root / "current");
  s.previous_release = st.previous == s.current_release ? "" : st.previous;
  s.cached_releases = st.history;
  if (!s.current_release.empty()) {
    auto m = ReadMeta(l, s.current_release);
    if (m.ok()) {
      s.release = m->release;
      s.build = m->build;
      s.artifact = m->artifact;
      s.artifact_sha256 = m->sha256;
      s.manifest_hash = m->manifest_hash;
    }
  }
  // After a restart, armed before the first re-deploy if time allows (once
  // settled, when stamps are pending).
  if (!impl_->Unsettled(root)) impl_->WatchReleases(l);
  return s;
}

Result<ValidationReport> AgentRunner::Validate(std::string_view target_path,
                                               const Manifest& manifest) {
  REPRISE_ASSIGN_OR_RETURN(fs::path root, ResolveTargetRoot(target_path));
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  Layout l{root};
  std::string name = LinkedRelease(l, root / "current");
  if (name.empty()) return NotFound("nothing is deployed: " + (root / "current").string());
  return ValidateTree(l.releases() / name, manifest);
}

Result<ProbeReport> AgentRunner::Probe(std::string_view target_path) {
  // No root lock: the probe's own file sits beside .reprise/, so it neither
  // waits for nor disturbs a deployment running there.
  auto root = ResolveTargetRoot(target_path);
  if (!root.ok()) return UnwritableRoot(root.status().message());
  return ProbeRoot(*root);
}

std::string ArchiveLimitsToJson(const ArchiveLimits& limits) {
  return FieldsToJson(limits, kArchiveLimitsFields).dump();
}

Result<ArchiveLimits> ArchiveLimitsFromJson(std::string_view text) {
  return ParseFields<ArchiveLimits>(text, kArchiveLimitsFields, "archive limits");
}

std::string TargetStateToJson(const TargetState& s) {
  return FieldsToJson(s, kTargetStateFields).dump();
}

Result<TargetState> TargetStateFromJson(std::string_view text) {
  return ParseFields<TargetState>(text, kTargetStateFields, "target state");
}

std::string ValidationReportToJson(const ValidationReport& r) {
  json changed = json::array();
  for (const auto& c : r.changed) changed.push_back({{"path", c.path}, {"detail", c.detail}});
  json j = {{"missing", r.missing},
            {"changed", changed},
            {"extra", r.extra},
            {"files_checked", r.files_checked},
            {"ok", r.ok()}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ValidationReport> ValidationReportFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ValidationReport r;
    r.missing = j.value("missing", std::vector<std::string>{});
    r.extra = j.value("extra", std::vector<std::string>{});
    r.files_checked = j.value("files_checked", uint64_t{0});
    for (const auto& c : j.value("changed", json::array())) {
      r.changed.push_back({c.at("path").get<std::string>(), c.value("detail", "")});
    }
    return r;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad validation report: ") + e.what());
  }
}

}  // namespace reprise
