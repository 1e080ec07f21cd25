// What a target holds (state), re-hashing it (validate), whether the agent
// can write there (probe), and the JSON forms the agent protocol carries.
#include <nlohmann/json.hpp>

#include "agents/agent/runner_internal.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace agent_runner;  // this module's own internals

}  // namespace

Result<TargetState> AgentRunner::State(std::string_view target_path) {
  REPRISE_ASSIGN_OR_RETURN(fs::path root, ResolveTargetRoot(target_path));
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
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
  json j = {{"max_entries", limits.max_entries},
            {"max_total_bytes", limits.max_total_bytes},
            {"max_entry_bytes", limits.max_entry_bytes},
            {"max_compression_ratio", limits.max_compression_ratio},
            {"ratio_check_min_bytes", limits.ratio_check_min_bytes}};
  return j.dump();
}

Result<ArchiveLimits> ArchiveLimitsFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ArchiveLimits l;
    l.max_entries = j.value("max_entries", l.max_entries);
    l.max_total_bytes = j.value("max_total_bytes", l.max_total_bytes);
    l.max_entry_bytes = j.value("max_entry_bytes", l.max_entry_bytes);
    l.max_compression_ratio = j.value("max_compression_ratio", l.max_compression_ratio);
    l.ratio_check_min_bytes = j.value("ratio_check_min_bytes", l.ratio_check_min_bytes);
    return l;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad archive limits: ") + e.what());
  }
}

std::string TargetStateToJson(const TargetState& s) {
  json j = {{"online", s.online},
            {"current_release", s.current_release},
            {"previous_release", s.previous_release},
            {"release", s.release},
            {"build", s.build},
            {"artifact", s.artifact},
            {"artifact_sha256", s.artifact_sha256},
            {"manifest_hash", s.manifest_hash},
            {"cached_releases", s.cached_releases}};
  return j.dump();
}

Result<TargetState> TargetStateFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    TargetState s;
    s.online = j.value("online", false);
    s.current_release = j.value("current_release", "");
    s.previous_release = j.value("previous_release", "");
    s.release = j.value("release", "");
    s.build = j.value("build", "");
    s.artifact = j.value("artifact", "");
    s.artifact_sha256 = j.value("artifact_sha256", "");
    s.manifest_hash = j.value("manifest_hash", "");
    s.cached_releases = j.value("cached_releases", std::vector<std::string>{});
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad target state: ") + e.what());
  }
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
