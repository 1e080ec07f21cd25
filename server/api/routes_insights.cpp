// The overview across applications (GET /dashboard) and the delivery
// insights of one stage (GET /insights).
#include <algorithm>
#include <map>
#include <set>

#include "server/api/json_io.h"
#include "server/api/routes.h"
#include "server/engine/engine.h"
#include "server/insights/insights.h"
#include "server/store/store.h"

namespace reprise {

Json DeploymentSummary(const DeploymentRecord& d);  // routes_deployments.cpp

namespace {

constexpr int kMaxInsightDays = 3650;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;
// Deployments read for insights, at most (pages of 1000, newest first).
constexpr int kMaxDeploymentPages = 100;

// Refuses query parameters other than `allowed` and any given twice.
Status CheckQuery(const HttpRequest& req, const std::set<std::string>& allowed) {
  for (const auto& [name, value] : req.query) {
    if (!allowed.count(name)) {
      if (allowed.empty())
        return InvalidArgument("this endpoint takes no query parameters (got '" + name + "')");
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
      return InvalidArgument("unknown query parameter '" + name + "' (expected: " + names + ")");
    }
    if (req.query.count(name) > 1)
      return InvalidArgument("query parameter '" + name + "' is given more than once");
  }
  return Status::Ok();
}

Json OptionalNumber(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

// The stage's targets do not all run the same build: name what each runs.
std::string DriftOf(const StageView& v) {
  std::set<std::pair<std::string, int64_t>> builds;
  for (const auto& t : v.targets) builds.insert({t.release, t.build});
  if (builds.size() <= 1) return "";
  std::string text = "targets run different builds:";
  for (const auto& t : v.targets)
    text +=
        " " + t.target + " " +
        (t.build == 0 ? std::string("nothing") : t.release + " build " + std::to_string(t.build)) +
        ";";
  text.pop_back();
  return text;
}

Json DashboardStage(Store& store, const std::string& app, const StageView& v) {
  Json current = nullptr;
  const TargetCurrent* newest = nullptr;
  for (const auto& t : v.targets)
    if (t.build != 0 && (newest == nullptr || t.at > newest->at)) newest = &t;
  if (newest != nullptr)
    current = {{"release", newest->release},
               {"build", newest->build},
               {"deployment_id", newest->deployment_id},
               {"at", Time(newest->at)},
               {"by", newest->by}};
  Json last = nullptr;
  DeploymentFilter filter;
  filter.application = app;
  filter.stage = v.stage;
  // The newest deployment that ran or may still run: one cancelled or
  // expired before it started changed nothing there.
  auto latest = store.ListDeployments(filter, Page{20, 0});
  if (latest.ok()) {
    for (const auto& d : *latest) {
      if ((d.status == "cancelled" || d.status == "expired") && d.started_at == 0) continue;
      last = DeploymentSummary(d);
      break;
    }
  }
  const std::string drift = DriftOf(v);
  return {{"stage", v.stage},
          {"environment", v.environment},
          {"protected", v.is_protected},
          {"hold", v.hold_json.empty() ? Json(nullptr) : Json::parse(v.hold_json, nullptr, false)},
          {"drift", drift.empty() ? Json(nullptr) : Json(drift)},
          {"targets", v.targets.size()},
          {"current", current},
          {"last_deployment", last}};
}

HttpResponse Dashboard(Store& store, DeploymentEngine& engine) {
  TRY_OR_ERROR(auto apps, store.ListApplications(Page{1000, 0}));
  Json applications = Json::array();
  Json environments = Json::array();
  std::set<std::string> seen_environments;
  for (const auto& a : apps) {
    TRY_OR_ERROR(auto views, engine.DeployedWhere(a.name));
    Json stages = Json::array();
    for (const auto& v : views) {
      stages.push_back(DashboardStage(store, a.name, v));
      if (seen_environments.insert(v.environment).second) environments.push_back(v.environment);
    }
    applications.push_back({{"name", a.name}, {"stages", stages}});
  }
  return Ok({{"environments", environments}, {"applications", applications}});
}

// The application's deployments that finished or were requested after `since`,
// with their builds' creation times.
Result<std::vector<InsightDeployment>> DeploymentsSince(Store& store, const std::string& app,
                                                        int64_t since) {
  std::vector<InsightDeployment> out;
  std::map<std::pair<std::string, int64_t>, int64_t> build_created;
  DeploymentFilter filter;
  filter.application = app;
  for (int page = 0; page < kMaxDeploymentPages; ++page) {
    auto list = store.ListDeployments(filter, Page{1000, page * 1000LL});
    if (!list.ok()) return list.status();
    for (const auto& d : *list) {
      if (d.created_at < since && d.finished_at < since) continue;
      auto key = std::pair(d.release, d.build);
      auto found = build_created.find(key);
      if (found == build_created.end()) {
        auto b = store.GetBuild(app, d.release, d.build);
        found = build_created.emplace(key, b.ok() ? b->created_at : 0).first;
      }
      out.push_back({.id = d.id,
                     .stage = d.stage,
                     .release = d.release,
                     .build = d.build,
                     .kind = d.kind,
                     .status = d.status,
                     .created_at = d.created_at,
                     .finished_at = d.finished_at,
                     .build_created_at = found->second});
    }
    // Newest first: once a page ends before `since`, older pages do too.
    if (list->size() < 1000 || list->back().created_at < since) break;
  }
  return out;
}

Json SeriesJson(const std::vector<InsightBucket>& series) {
  Json out = Json::array();
  for (const auto& b : series) {
    Json j = JSON_MEMBERS(b, deployments, succeeded, failures, rollbacks);
    j["start"] = Time(b.start);
    j["change_failure_rate"] =
        b.deployments ? Json(static_cast<double>(b.failures) / b.deployments) : Json(nullptr);
    j["lead_time_p50_seconds"] = OptionalNumber(b.lead_time_p50_seconds);
    j["time_to_restore_p50_seconds"] = OptionalNumber(b.time_to_restore_p50_seconds);
    out.push_back(std::move(j));
  }
  return out;
}

HttpResponse InsightsOf(Store& store, DeploymentEngine& engine, const Clock& clock,
                        const HttpRequest& req) {
  STATUS_OR_ERROR(CheckQuery(req, {"application", "stage", "days"}));
  const std::string app = req.Query("application").value_or("");
  if (app.empty())
    return HttpResponse::Error(InvalidArgument("missing query parameter 'application'"));
  int64_t days = 30;
  if (auto text = req.Query("days")) {
    TRY_OR_ERROR(days, ParseNumber(*text, "days"));
    if (days < 1 || days > kMaxInsightDays)
      return HttpResponse::Error(InvalidArgument("query parameter 'days' must be between 1 and " +
                                                 std::to_string(kMaxInsightDays)));
  }
  TRY_OR_ERROR(auto application, store.GetApplication(app));
  TRY_OR_ERROR(auto views, engine.DeployedWhere(application.name));
  if (views.empty())
    return HttpResponse::Error(
        FailedPrecondition("application '" + app + "' has no stages in its pipeline"));
  std::string stage = req.Query("stage").value_or(views.back().stage);
  Json stages = Json::array();
  for (const auto& v : views) stages.push_back(v.stage);
  if (std::find(stages.begin(), stages.end(), Json(stage)) == stages.end())
    return HttpResponse::Error(NotFound("application '" + app + "' has no stage '" + stage + "'"));
  const int64_t now = ToUnixMillis(clock.Now());
  // Older deployments matter too: a failure before the window that was
  // restored inside it.
  TRY_OR_ERROR(auto deployments,
               DeploymentsSince(store, application.name, now - (days + 30) * kDayMs));
  Insights in = ComputeInsights(deployments, stage, now, static_cast<int>(days));
  Json j = JSON_MEMBERS(in, bucket_seconds, deployments, succeeded, failures, restores,
                        deployment_frequency_per_week);
  j["application"] = application.name;
  j["stage"] = stage;
  j["stages"] = stages;
  j["days"] = days;
  j["from"] = Time(in.from);
  j["to"] = Time(in.to);
  j["lead_time_p50_seconds"] = OptionalNumber(in.lead_time_p50_seconds);
  j["change_failure_rate"] = in.change_failure_rate ? Json(*in.change_failure_rate) : Json(nullptr);
  j["time_to_restore_p50_seconds"] = OptionalNumber(in.time_to_restore_p50_seconds);
  j["series"] = SeriesJson(in.series);
  return Ok(j);
}

}  // namespace

std::vector<Route> InsightsRoutes(ApiContext& ctx) {
  std::vector<Route> r;
  if (ctx.engine == nullptr) return r;
  Store& store = *ctx.store;
  DeploymentEngine& engine = *ctx.engine;
  const Clock& clock = *ctx.clock;
  RouteGroup group(r, "Insights");
  group.Add(Get("/api/v1/dashboard", Role::kViewer,
                {.summary = "The dashboard: every application's stages and what runs",
                 .success = "applications with their stages, running and waiting deployments"},
                [&store, &engine](HttpRequest& req) {
                  STATUS_OR_ERROR(CheckQuery(req, {}));
                  return Dashboard(store, engine);
                }));
  group.Add(Get("/api/v1/insights", Role::kViewer,
                {.summary = "Delivery statistics of an application on a stage",
                 .query = {{"application", "string", "the application (required)"},
                           {"stage", "string", "the stage (default: the last of the pipeline)"},
                           {"days", "integer", "the window in days"}},
                 .success = "deployment frequency, lead time, failure rate and time to restore"},
                [&store, &engine, &clock](HttpRequest& req) {
                  return InsightsOf(store, engine, clock, req);
                }));
  return r;
}

}  // namespace reprise
