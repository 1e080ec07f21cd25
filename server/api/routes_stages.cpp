// POST /api/v1/applications/{app}/stages/{stage}/test-connection: can every
// target of the stage be deployed to now?
#include "server/api/routes_stages.h"

#include "planner/app_spec.h"
#include "server/api/json_io.h"
#include "server/engine/connection_check.h"
#include "server/hub/agent_hub.h"
#include "server/store/store.h"

namespace reprise {
namespace {

// The stage's targets in the application's current spec.
Result<std::vector<std::string>> StageTargets(Store& store, const std::string& app,
                                              const std::string& stage) {
  REPRISE_ASSIGN_OR_RETURN(ApplicationRecord a, store.GetApplication(app));
  REPRISE_ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(a.spec_json, "application spec"));
  const StageSpec* s = spec.FindStage(stage);
  if (s == nullptr)
    return NotFound("application '" + app + "' has no stage '" + stage + "' in its pipeline");
  return s->targets;
}

// The body of a connection test: which build's size to check free space for.
const RequestBody& TestConnectionBody() {
  static const RequestBody body{
      "test connection",
      {{"release", "string", false, "with build: check each target has room for this build"},
       {"build", "integer", false, "the build number"}},
      false};
  return body;
}

// The build whose artifacts free space is compared with (none: no body).
Result<std::vector<ReleaseSpace>> SpaceFromBody(Store& store, const std::string& app,
                                                const HttpRequest& req) {
  REPRISE_ASSIGN_OR_RETURN(Json body, ParseJsonBody(req, /*allow_empty=*/true));
  REPRISE_RETURN_IF_ERROR(CheckKeys(body, TestConnectionBody()));
  REPRISE_ASSIGN_OR_RETURN(std::string release, StringField(body, "release", false));
  const bool has_build = body.contains("build");
  if (release.empty() && !has_build) return std::vector<ReleaseSpace>{};
  if (release.empty() || !has_build)
    return InvalidArgument("give both 'release' and 'build' (or neither) to test the connection");
  if (!body["build"].is_number_integer() || body["build"].get<int64_t>() <= 0)
    return InvalidArgument("field 'build' must be a positive whole number");
  const int64_t build = body["build"].get<int64_t>();
  REPRISE_RETURN_IF_ERROR(store.GetBuild(app, release, build).status());
  return SpaceForBuild(store, app, release, build);
}

Json ToJson(const TargetConnection& t) {
  return {{"target", t.target},     {"agent", t.agent},           {"connected", t.connected},
          {"approved", t.approved}, {"version", t.version},       {"latency_ms", t.latency_ms},
          {"writable", t.writable}, {"free_bytes", t.free_bytes}, {"needed_bytes", t.needed_bytes},
          {"problem", t.problem}};
}

std::string Summary(const ConnectionReport& report) {
  size_t problems = 0;
  for (const auto& t : report.targets) problems += t.kind != TargetConnection::Problem::kNone;
  if (problems == 0) return "ok, " + std::to_string(report.targets.size()) + " targets";
  return std::to_string(problems) + " of " + std::to_string(report.targets.size()) +
         " targets with a problem: " + report.Problems(TargetConnection::Problem::kAgent) +
         (report.Problems(TargetConnection::Problem::kAgent).empty() ? "" : "; ") +
         report.Problems(TargetConnection::Problem::kTarget);
}

}  // namespace

std::vector<Route> StageRoutes(AgentHub& hub, Store& store, const Clock& clock) {
  std::vector<Route> r;
  AgentHub* h = &hub;
  Store* s = &store;
  const Clock* c = &clock;
  // Deployer: the probe creates and removes a file on every target machine.
  r.push_back(Post(
      "/api/v1/applications/{app}/stages/{stage}/test-connection", Role::kDeployer,
      {.summary = "Test the connection to a stage's targets",
       .tag = "Deployments",
       .description = "Each target's agent creates and removes a file and reports its free space.",
       .body = TestConnectionBody(),
       .success = "{ok, application, stage, targets}"},
      [h, s, c](HttpRequest& req) {
        const std::string app = req.Param("app");
        const std::string stage = req.Param("stage");
        TRY_OR_ERROR(auto targets, StageTargets(*s, app, stage));
        TRY_OR_ERROR(auto space, SpaceFromBody(*s, app, req));
        TRY_OR_ERROR(auto report, TestConnection(*h, targets, space));
        STATUS_OR_ERROR(
            s->AppendAudit({0, ToUnixMillis(c->Now()), req.principal.user, "stage.test-connection",
                            app + "/" + stage, Summary(report)}));
        Json items = Json::array();
        for (const auto& t : report.targets) items.push_back(ToJson(t));
        return Ok(
            {{"ok", report.ok()}, {"application", app}, {"stage", stage}, {"targets", items}});
      }));
  return r;
}

}  // namespace reprise
