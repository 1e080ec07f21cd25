// POST /api/v1/targets/{target}/validate: the target's files against the
// manifest of the build its agent says it runs.
#include "server/api/target_validate.h"

#include "server/api/json_io.h"
#include "server/hub/agent_hub.h"
#include "server/rollback/rollback_records.h"
#include "server/store/store.h"

namespace reprise {
namespace {

std::string Label(const TargetVerification& v) {
  if (v.release.empty() && v.build.empty()) return "artifact " + v.artifact;
  return v.release + " build " + v.build;
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Why the target's agent cannot answer: offline, pending approval, refused.
Status AgentUnavailable(AgentHub& hub, const std::string& target, const std::string& agent) {
  std::string status = "offline";
  for (const auto& a : hub.Agents()) {
    if (a.name != agent) continue;
    if (a.status == "pending") status = "not approved yet";
    if (a.status == "refused") status = "refused";
  }
  return Unavailable("agent " + agent + " of target " + target + " is " + status +
                     "; validating needs it connected and approved");
}

// The agent's answer for a target, with errors that name the agent.
Result<TargetState> StateOf(AgentHub& hub, const std::string& target, const std::string& agent) {
  auto state = hub.GetTargetState(target);
  if (!state.ok()) {
    if (state.status().code() == Code::kNotFound) return state.status();
    return state.status().WithContext("agent " + agent + " of target " + target);
  }
  if (!state->online) return AgentUnavailable(hub, target, agent);
  return state;
}

// The record whose label matches the agent's, else the oldest one: every
// record of the same bytes has the same manifest.
const ArtifactRecord& Pick(const std::vector<ArtifactRecord>& records, const TargetState& state) {
  for (const auto& r : records) {
    if (r.release == state.release && std::to_string(r.build) == state.build &&
        r.name == state.artifact)
      return r;
  }
  return records.front();
}

Json BuildNumberJson(const std::string& build) {
  if (!build.empty() && build.size() < 16 &&
      build.find_first_not_of("0123456789") == std::string::npos)
    return std::stoll(build);
  return build;
}

Json ToJson(const TargetVerification& v) {
  Json changed = Json::array();
  for (const auto& c : v.report.changed)
    changed.push_back({{"path", c.path}, {"problem", c.detail}});
  return {{"target", v.target},
          {"agent", v.agent},
          {"release", v.release},
          {"build", BuildNumberJson(v.build)},
          {"artifact", v.artifact},
          {"sha256", v.sha256},
          {"release_dir", v.release_dir},
          {"ok", v.report.ok()},
          {"files_checked", v.report.files_checked},
          {"missing", v.report.missing},
          {"changed", changed},
          {"extra", v.report.extra}};
}

// The body may be empty or {}: there is nothing to choose.
Status CheckNoFields(const HttpRequest& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return Status::Ok();
  REPRISE_ASSIGN_OR_RETURN(Json body, ParseJsonBody(req));
  if (!body.empty())
    return InvalidArgument("unknown field '" + body.begin().key() +
                           "' in target validation (it takes no fields)");
  return Status::Ok();
}

}  // namespace

Result<TargetVerification> VerifyTarget(AgentHub& hub, Store& store, const std::string& target) {
  REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, store.GetTarget(target));
  REPRISE_ASSIGN_OR_RETURN(TargetState state, StateOf(hub, target, rec.agent));
  if (state.current_release.empty())
    return FailedPrecondition("nothing is deployed on target " + target + " (agent " + rec.agent +
                              " reports no current release)");
  if (state.artifact_sha256.empty())
    return FailedPrecondition("agent " + rec.agent + " does not know which artifact release " +
                              state.current_release + " on target " + target +
                              " came from (its metadata is missing)");
  TargetVerification v;
  v.target = target;
  v.agent = rec.agent;
  v.release = state.release;
  v.build = state.build;
  v.artifact = state.artifact;
  v.sha256 = state.artifact_sha256;
  v.release_dir = state.current_release;

  REPRISE_ASSIGN_OR_RETURN(std::vector<ArtifactRecord> records,
                           store.FindArtifactsBySha256(state.artifact_sha256));
  if (records.empty())
    return FailedPrecondition("no artifact with sha256 " + state.artifact_sha256 + " (" + Label(v) +
                              " on target " + target +
                              ") is stored any more, so there is no manifest to check its files "
                              "against; retention may have removed the build");
  const ArtifactRecord& record = Pick(records, state);
  auto manifest = ManifestFromJson(record.manifest_json);
  if (!manifest.ok())
    return Internal("the stored manifest of artifact '" + record.name + "' of " +
                    record.application + " " + record.release + " build " +
                    std::to_string(record.build) +
                    " cannot be read: " + manifest.status().message());
  if (v.artifact.empty()) v.artifact = record.name;
  // After a rollback record's execution the target runs the composed tree.
  if (!state.manifest_hash.empty() && state.manifest_hash != manifest->manifest_hash)
    if (auto composed = FindComposedManifest(store, target, state.manifest_hash))
      manifest = *composed;

  auto report = hub.Validate(target, *manifest);
  if (!report.ok()) {
    if (report.status().code() == Code::kNotFound)  // `current` went away meanwhile
      return FailedPrecondition("nothing is deployed on target " + target +
                                " any more: " + report.status().message());
    if (report.status().code() == Code::kUnavailable)
      return AgentUnavailable(hub, target, rec.agent);
    return report.status().WithContext("agent " + rec.agent + " of target " + target);
  }
  v.report = std::move(report).value();

  // A deployment may have switched `current` while the files were hashed:
  // then the report belongs to neither release.
  auto after = hub.GetTargetState(target);
  if (after.ok() && after->online && after->current_release != state.current_release)
    return Conflict("target " + target + " switched from " + state.current_release + " to " +
                    (after->current_release.empty() ? "nothing" : after->current_release) +
                    " while its files were being checked; validate again");
  return v;
}

std::string VerificationSummary(const TargetVerification& v) {
  const ValidationReport& r = v.report;
  if (r.ok()) return "ok, " + Plural(r.files_checked, "file", "files") + "; " + Label(v);
  uint64_t problems = r.missing.size() + r.changed.size() + r.extra.size();
  return Plural(problems, "problem", "problems") + " (" + std::to_string(r.missing.size()) +
         " missing, " + std::to_string(r.changed.size()) + " changed, " +
         std::to_string(r.extra.size()) + " extra); " + Label(v);
}

std::vector<Route> TargetValidateRoutes(AgentHub& hub, Store& store, const Clock& clock) {
  std::vector<Route> r;
  AgentHub* h = &hub;
  Store* s = &store;
  const Clock* c = &clock;
  r.push_back(Post("/api/v1/targets/{target}/validate", Role::kDeployer,
                   {.summary = "Compare a target's files with what was deployed",
                    .tag = "Targets",
                    .body = RequestBody{"target validation", {}, false},
                    .success = "what changed, is missing or extra on the target"},
                   [h, s, c](HttpRequest& req) {
                     STATUS_OR_ERROR(CheckNoFields(req));
                     const std::string target = req.Param("target");
                     TRY_OR_ERROR(auto v, VerifyTarget(*h, *s, target));
                     STATUS_OR_ERROR(
                         s->AppendAudit({0, ToUnixMillis(c->Now()), req.principal.user,
                                         "target.validate", target, VerificationSummary(v)}));
                     return Ok(ToJson(v));
                   }));
  return r;
}

}  // namespace reprise
