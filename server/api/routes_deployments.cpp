// Deploy, preview, deployments, approvals, live logs, holds, and what is
// deployed where.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "planner/execution_context.h"
#include "server/api/deployment_list.h"
#include "server/api/json_io.h"
#include "server/api/list_query.h"
#include "server/api/route_kinds.h"
#include "server/api/routes.h"
#include "server/catalog/catalog.h"
#include "server/engine/engine.h"
#include "server/http/list_params.h"
#include "server/store/store.h"

namespace reprise {

namespace {

constexpr const char* kBuildPath = "/api/v1/applications/{app}/releases/{rel}/builds/{n}";

Actor ActorOf(const HttpRequest& req) { return {req.principal.user, req.principal.role}; }

Json GatesJson(const std::vector<GateState>& gates) {
  Json out = Json::array();
  for (const auto& g : gates)
    out.push_back({{"gate", g.gate}, {"holds", g.holds}, {"detail", g.detail}});
  return out;
}

}  // namespace

// A deployment as lists show it (also the dashboard's last deployment of a stage).
Json DeploymentSummary(const DeploymentRecord& d) {
  Json j = JSON_MEMBERS(d, id, application, release, build, stage, kind, status, forced, automatic,
                        comment, requested_by, error);
  j["context"] = d.context_choice;
  // Who asked, for people: automatic promotions are the automation's.
  j["by"] = d.automatic ? "automation" : d.requested_by;
  j["created_at"] = Time(d.created_at);
  j["scheduled_at"] = TimeOrNull(d.scheduled_at);
  j["expires_after_seconds"] = d.expires_after_ms / 1000;
  j["started_at"] = TimeOrNull(d.started_at);
  j["finished_at"] = TimeOrNull(d.finished_at);
  j["targets"] = Json::array();
  j["target_names"] = SplitCommaList(d.targets_csv);
  if (d.started_at && d.finished_at) j["duration_ms"] = d.finished_at - d.started_at;
  return j;
}

namespace {

Json DeploymentDetail(Store& store, DeploymentEngine& engine, const DeploymentRecord& d) {
  Json j = DeploymentSummary(d);
  auto targets = store.ListDeploymentTargets(d.id);
  Json tj = Json::array();
  std::set<std::string> seen;
  if (targets.ok())
    for (const auto& t : *targets) {
      seen.insert(t.target);
      Json one = JSON_MEMBERS(t, target, status, message);
      one["started_at"] = TimeOrNull(t.started_at);
      one["finished_at"] = TimeOrNull(t.finished_at);
      if (auto p = engine.Progress(d.id, t.target))
        one["progress"] = {{"phase", p->phase},
                           {"bytes_done", p->bytes_done},
                           {"bytes_total", p->bytes_total},
                           {"files_done", p->files_done},
                           {"files_total", p->files_total}};
      tj.push_back(one);
    }
  if (j.contains("target_names"))
    for (const auto& name : j["target_names"])
      if (!seen.count(name.get<std::string>()))
        tj.push_back({{"target", name}, {"status", "pending"}, {"message", ""}});
  j["targets"] = tj;
  auto approvals = store.ListApprovals(d.id);
  j["approvals"] = Json::array();
  if (approvals.ok())
    for (const auto& a : *approvals)
      j["approvals"].push_back({{"user", a.user},
                                {"decision", a.decision},
                                {"comment", a.comment},
                                {"at", Time(a.at)},
                                {"revoked", a.revoked}});
  if (d.status == "waiting" || d.status == "scheduled") {
    auto gates = engine.Gates(d);
    if (gates.ok()) j["gates"] = GatesJson(*gates);
  }
  if (auto m = engine.Manual(d.id))
    j["manual"] = {{"message", m->message}, {"role", m->role}, {"step", m->step_id}};
  if (!d.context_json.empty()) {
    auto ctx = ContextFromJson(d.context_json);
    if (ctx.ok()) j["execution_context"] = Json::parse(ContextToDisplayJson(*ctx), nullptr, false);
  }
  j["audit"] = AuditTrailJson(store, "deployment " + std::to_string(d.id));
  return j;
}

Json LogLineJson(const DeploymentLogRecord& l) {
  return {{"seq", l.seq},
          {"at", Time(l.at)},
          {"target", l.target},
          {"level", l.level},
          {"text", l.text}};
}

bool IsFinalStatus(const std::string& s) {
  return s == "succeeded" || s == "failed" || s == "cancelled" || s == "interrupted" ||
         s == "expired";
}

Result<std::optional<TimePoint>> AtField(const Json& body) {
  auto it = body.find("at");
  if (it == body.end() || it->is_null()) return std::optional<TimePoint>();
  if (!it->is_string()) return InvalidArgument("field 'at' must be an RFC 3339 string");
  auto t = ParseRfc3339(it->get<std::string>());
  if (!t)
    return InvalidArgument(
        "field 'at' must be RFC 3339 with an offset, e.g. "
        "2026-11-23T22:00:00+01:00; got '" +
        it->get<std::string>() + "'");
  return std::optional<TimePoint>(*t);
}

// Live log streams open now (each counted while its EventStream lives).
std::atomic<int> open_streams{0};

// What every live stream of one deployment shares: its lines, read once per
// engine signal (not once per stream) and kept rendered as events.
// Thread-safe.
class LogFeed {
 public:
  LogFeed(Store& store, DeploymentEngine& engine, int64_t id)
      : store_(store), engine_(engine), id_(id) {
    listener_ = engine_.AddLogListener([this] {
      dirty_ = true;
      std::lock_guard lock(wake_mu_);
      for (const auto& [key, wake] : wakes_) wake();
    });
  }
  ~LogFeed() { engine_.RemoveLogListener(listener_); }

  // One feed per store and deployment while any stream uses it.
  static std::shared_ptr<LogFeed> For(Store& store, DeploymentEngine& engine, int64_t id) {
    static std::mutex mu;
    static std::map<std::pair<Store*, int64_t>, std::weak_ptr<LogFeed>> feeds;
    std::lock_guard lock(mu);
    for (auto it = feeds.begin(); it != feeds.end();)
      it = it->second.expired() ? feeds.erase(it) : ++it;
    auto& slot = feeds[{&store, id}];
    auto feed = slot.lock();
    if (!feed) slot = feed = std::make_shared<LogFeed>(store, engine, id);
    return feed;
  }

  std::function<void()> Subscribe(std::function<void()> wake) {
    std::lock_guard lock(wake_mu_);
    int64_t key = next_key_++;
    wakes_[key] = std::move(wake);
    return [this, key] {
      std::lock_guard unlock(wake_mu_);
      wakes_.erase(key);
    };
  }

  // The events after *cursor (which advances), and the end once the
  // deployment is over and every line was sent.
  std::string Poll(int64_t* cursor, bool* done) {
    std::lock_guard lock(mu_);
    if (dirty_.exchange(false)) Refresh();
    std::string out;
    if (*cursor < base_seq_) {  // behind what is kept: read it from the store
      auto lines = store_.ListDeploymentLog(id_, *cursor, 500);
      if (lines.ok())
        for (const auto& l : *lines) {
          out += Render(l);
          *cursor = l.seq;
        }
      if (!out.empty()) return out;
    }
    auto from = std::upper_bound(events_.begin(), events_.end(), *cursor,
                                 [](int64_t c, const auto& e) { return c < e.first; });
    for (auto it = from; it != events_.end(); ++it) {
      out += it->second;
      *cursor = it->first;
    }
    if (engine_.ShuttingDown()) {
      *done = true;
      return out + "event: end\ndata: {\"status\":\"server-stopping\"}\n\n";
    }
    if (final_status_ && *cursor >= max_seq_) {
      *done = true;
      out += "event: end\ndata: " + DumpJson(Json{{"status", *final_status_}}) + "\n\n";
    }
    return out;
  }

 private:
  static std::string Render(const DeploymentLogRecord& l) {
    return "id: " + std::to_string(l.seq) + "\nevent: line\ndata: " + DumpJson(LogLineJson(l)) +
           "\n\n";
  }

  // Under mu_. The status is read before the lines: once it is final, the
  // lines read after it are all there will be.
  void Refresh() {
    auto d = store_.GetDeployment(id_);
    std::optional<std::string> final_status;
    if (!d.ok())
      final_status = "unknown";
    else if (IsFinalStatus(d->status))
      final_status = d->status;
    for (int page = 0; page < 1000; ++page) {
      auto lines = store_.ListDeploymentLog(id_, max_seq_, 500);
      if (!lines.ok()) break;
      for (const auto& l : *lines) {
        events_.emplace_back(l.seq, Render(l));
        max_seq_ = l.seq;
      }
      if (lines->size() < 500) break;
    }
    if (events_.size() > kKeep) {  // keep the newest; older readers go to the store
      events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(kKeep / 2));
      base_seq_ = events_.front().first - 1;
    }
    final_status_ = final_status;
  }

  static constexpr size_t kKeep = 20000;
  Store& store_;
  DeploymentEngine& engine_;
  const int64_t id_;
  int64_t listener_ = 0;
  std::atomic<bool> dirty_{true};
  std::mutex mu_;
  std::vector<std::pair<int64_t, std::string>> events_;  // (seq, event), in order
  int64_t base_seq_ = 0;                                 // events_ holds every line after this one
  int64_t max_seq_ = 0;
  std::optional<std::string> final_status_;
  std::mutex wake_mu_;
  std::map<int64_t, std::function<void()>> wakes_;
  int64_t next_key_ = 1;
};

// The live log of deployment `id` after line `after`, as server-sent events:
// polled when the engine signals a change, never waiting on a thread.
std::shared_ptr<EventStream> LiveLog(Store& store, DeploymentEngine& engine, int64_t id,
                                     int64_t after) {
  struct Counted {
    Counted() { ++open_streams; }
    ~Counted() { --open_streams; }
  };
  auto counted = std::make_shared<Counted>();
  auto cursor = std::make_shared<int64_t>(after);
  auto feed = LogFeed::For(store, engine, id);
  auto stream = std::make_shared<EventStream>();
  stream->poll = [feed, cursor, counted](bool* done) { return feed->Poll(cursor.get(), done); };
  stream->subscribe = [feed](std::function<void()> wake) -> std::function<void()> {
    auto off = feed->Subscribe(std::move(wake));
    return [feed, off] { off(); };
  };
  return stream;
}

}  // namespace

// Deploy a build to a stage: now, scheduled, or waiting at its gates.
static void AddDeployRoute(ApiContext& ctx, std::vector<Route>& r) {
  [[maybe_unused]] Store& store = *ctx.store;
  [[maybe_unused]] DeploymentEngine& engine = *ctx.engine;
  const RequestBody deploy_body{
      "deploy request",
      {{"stage", "string", true, "the pipeline stage to deploy to"},
       {"at", "string", false, "RFC 3339 time: schedule instead of starting now"},
       {"force", "boolean", false, "skip the previous-stage gate (recorded in the audit log)"},
       {"context", "string", false, "which configuration to use: build or current"},
       VariablesFieldDoc("deployment variables (override the build's)"),
       {"comment", "string", false, "why; shown in the history"},
       {"expires_after_seconds", "integer", false,
        "a waiting request lapses after this long (1..2592000)"},
       {"acknowledge_irreversible", "boolean", false,
        "confirm the plan's irreversible steps will run"}}};
  r.push_back(JsonBodyRoute(
      Post, std::string(kBuildPath) + "/deploy", Role::kDeployer,
      {.summary = "Deploy a build to a stage",
       .tag = "Deployments",
       .description = "Checks the gates (approvals, windows, previous stage) and queues, "
                      "schedules or starts the deployment.",
       .body = deploy_body,
       .success_status = 202,
       .success = "the deployment"},
      [&](HttpRequest& req, const Json& body) {
        TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
        DeployRequest dr;
        TRY_OR_ERROR(dr.stage, StringField(body, "stage", true));
        TRY_OR_ERROR(dr.at, AtField(body));
        TRY_OR_ERROR(dr.context_choice, StringField(body, "context", false));
        TRY_OR_ERROR(dr.comment, StringField(body, "comment", false));
        TRY_OR_ERROR(dr.variables, VariablesField(body));
        if (body.contains("force")) {
          if (!body["force"].is_boolean())
            return HttpResponse::Error(InvalidArgument("field 'force' must be true or false"));
          dr.force = body["force"].get<bool>();
        }
        if (body.contains("acknowledge_irreversible")) {
          if (!body["acknowledge_irreversible"].is_boolean())
            return HttpResponse::Error(
                InvalidArgument("field 'acknowledge_irreversible' must be true or false"));
          dr.acknowledge_irreversible = body["acknowledge_irreversible"].get<bool>();
        }
        if (body.contains("expires_after_seconds")) {
          const auto& e = body["expires_after_seconds"];
          if (!e.is_number_integer() || e.get<int64_t>() < 1 || e.get<int64_t>() > 30 * 86400)
            return HttpResponse::Error(InvalidArgument(
                "field 'expires_after_seconds' must be a whole number from 1 to 2592000"));
          dr.expires_after = std::chrono::seconds(e.get<int64_t>());
        }
        TRY_OR_ERROR(auto d,
                     engine.Request(ActorOf(req), req.Param("app"), req.Param("rel"), n, dr));
        return Ok(DeploymentDetail(store, engine, d), 202);
      }));
}

// Preview what deploying a build to a stage would do.
static void AddPreviewRoute(ApiContext& ctx, std::vector<Route>& r) {
  [[maybe_unused]] Store& store = *ctx.store;
  [[maybe_unused]] DeploymentEngine& engine = *ctx.engine;
  const RequestBody preview_body{"preview request",
                                 {{"stage", "string", true, "the stage to preview"},
                                  {"context", "string", false, "build or current"}}};
  r.push_back(JsonBodyRoute(
      Post, std::string(kBuildPath) + "/preview", Role::kViewer,
      {.summary = "Preview what deploying a build would do",
       .tag = "Deployments",
       .body = preview_body,
       .success = "targets, variables, gates, operations, problems and irreversible steps"},
      [&](HttpRequest& req, const Json& body) {
        TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
        TRY_OR_ERROR(auto stage, StringField(body, "stage", true));
        TRY_OR_ERROR(auto choice, StringField(body, "context", false));
        TRY_OR_ERROR(
            auto p, engine.PreviewDeployment(req.Param("app"), req.Param("rel"), n, stage, choice));
        Json targets = Json::array();
        for (const auto& t : p.targets)
          targets.push_back(
              JSON_MEMBERS(t, target, current, added, overwritten, deleted, unchanged));
        Json vars = Json::array();
        for (const auto& v : p.variables)
          vars.push_back(JSON_MEMBERS(v, name, scope, target, change, as_deployed, current));
        Json ops = Json::object();
        for (const auto& [target, lines] : p.operations) ops[target] = lines;
        Json irreversible = Json::array();
        for (const auto& s : p.irreversible) irreversible.push_back(IrreversibleStepJson(s));
        Json j = JSON_MEMBERS(p, kind, summary, problems);
        j["context"] = p.context_choice;
        j["targets"] = targets;
        j["variables"] = vars;
        j["gates"] = GatesJson(p.gates);
        j["operations"] = ops;
        j["irreversible"] = irreversible;
        return Ok(j);
      }));
}

// list, show, follow and change deployments
static void AddDeploymentReadRoutes(ApiContext& ctx, std::vector<Route>& r) {
  [[maybe_unused]] Store& store = *ctx.store;
  [[maybe_unused]] DeploymentEngine& engine = *ctx.engine;
  RouteGroup group(r, "Deployments");
  group.Add(Get(
      "/api/v1/deployments", Role::kViewer,
      {.summary = "List deployments",
       .query = ExportListQuery({{"application", "string", "only this application"},
                                 {"stage", "string", "only this stage"},
                                 {"status", "string", "comma-separated statuses"},
                                 {"target", "string", "only deployments that touched this target"},
                                 {"user", "string", "only those requested by this user"},
                                 {"release", "string", "only this release"},
                                 {"build", "integer", "only this build number"}}),
       .success = kExportListAnswer},
      [&](HttpRequest& req) { return ListDeploymentsResponse(store, req, DeploymentSummary); }));

  group.Add(Get("/api/v1/deployments/{id}", Role::kViewer,
                {.summary = "Get a deployment",
                 .success = "the deployment with targets, gates and approvals"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto id, ParseNumber(req.Param("id"), "deployment id"));
                  TRY_OR_ERROR(auto d, store.GetDeployment(id));
                  return Ok(DeploymentDetail(store, engine, d));
                }));

  group.Add(Get("/api/v1/deployments/{id}/log", Role::kViewer,
                {.summary = "A deployment's log",
                 .description = "JSON lines; with Accept: text/event-stream a live stream of "
                                "server-sent events (Last-Event-ID resumes).",
                 .query = {{"after", "integer", "only lines after this sequence number"}},
                 .success = "{deployment_id, status, lines}"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto id, ParseNumber(req.Param("id"), "deployment id"));
                  TRY_OR_ERROR(auto d, store.GetDeployment(id));
                  int64_t after = 0;
                  if (auto a = req.Query("after")) {
                    TRY_OR_ERROR(after, ParseNumber(*a, "after"));
                  }
                  if (auto last = req.Header("last-event-id")) {
                    TRY_OR_ERROR(after, ParseNumber(*last, "Last-Event-ID"));
                  }
                  std::string accept = req.Header("accept").value_or("");
                  if (accept.find("text/event-stream") == std::string::npos) {
                    TRY_OR_ERROR(auto lines, store.ListDeploymentLog(id, after, 10000));
                    Json out = Json::array();
                    for (const auto& l : lines) out.push_back(LogLineJson(l));
                    return Ok({{"deployment_id", id}, {"status", d.status}, {"lines", out}});
                  }
                  if (open_streams.load() >= ctx.max_log_streams)
                    return HttpResponse::Error(503, "unavailable",
                                               "too many live log streams are open; retry shortly");
                  HttpResponse res;
                  res.headers.emplace_back("Cache-Control", "no-cache");
                  res.events = LiveLog(store, engine, id, after);
                  return res;
                }));
}

// approve, reject, cancel, continue and reschedule a deployment
static void AddDeploymentChangeRoutes(ApiContext& ctx, std::vector<Route>& r) {
  [[maybe_unused]] Store& store = *ctx.store;
  [[maybe_unused]] DeploymentEngine& engine = *ctx.engine;
  const RequestBody comment_body{"request", {{"comment", "string", false, "why"}}, false};
  auto comment_of = [comment_body](const HttpRequest& req) -> Result<std::string> {
    auto body = ParseJsonBody(req, true);
    if (!body.ok()) return body.status();
    Status keys = CheckKeys(*body, comment_body);
    if (!keys.ok()) return keys;
    return StringField(*body, "comment", false);
  };
  RouteGroup group(r, "Deployments");
  auto action = [&](const char* path, Role role, const char* summary,
                    std::function<Status(const Actor&, int64_t, const std::string&)> fn) {
    group.Add(Post(
        std::string("/api/v1/deployments/{id}/") + path, role,
        {.summary = summary, .body = comment_body, .success = "the deployment after the change"},
        [&, fn, comment_of](HttpRequest& req) {
          TRY_OR_ERROR(auto id, ParseNumber(req.Param("id"), "deployment id"));
          TRY_OR_ERROR(auto comment, comment_of(req));
          STATUS_OR_ERROR(fn(ActorOf(req), id, comment));
          TRY_OR_ERROR(auto d, store.GetDeployment(id));
          return Ok(DeploymentDetail(store, engine, d));
        }));
  };
  action(
      "approve", Role::kDeployer, "Approve a waiting deployment",
      [&](const Actor& a, int64_t id, const std::string& c) { return engine.Approve(a, id, c); });
  action("reject", Role::kDeployer, "Reject a waiting deployment",
         [&](const Actor& a, int64_t id, const std::string& c) { return engine.Reject(a, id, c); });
  action(
      "revoke-approval", Role::kDeployer, "Withdraw your approval",
      [&](const Actor& a, int64_t id, const std::string&) { return engine.RevokeApproval(a, id); });
  action("cancel", Role::kDeployer, "Cancel a deployment",
         [&](const Actor& a, int64_t id, const std::string& c) { return engine.Cancel(a, id, c); });
  action(
      "continue", Role::kDeployer, "Continue a plan paused at a manual step",
      [&](const Actor& a, int64_t id, const std::string& c) { return engine.Continue(a, id, c); });

  const RequestBody change_body{"deployment change",
                                {{"at", "string", true, "the new RFC 3339 start time"}}};
  group.Add(JsonBodyRoute(Patch, "/api/v1/deployments/{id}", Role::kDeployer,
                          {.summary = "Reschedule a scheduled deployment",
                           .body = change_body,
                           .success = "the deployment"},
                          [&](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(auto id, ParseNumber(req.Param("id"), "deployment id"));
                            TRY_OR_ERROR(auto at, AtField(body));
                            if (!at)
                              return HttpResponse::Error(InvalidArgument("missing field 'at'"));
                            STATUS_OR_ERROR(engine.Reschedule(ActorOf(req), id, *at));
                            TRY_OR_ERROR(auto d, store.GetDeployment(id));
                            return Ok(DeploymentDetail(store, engine, d));
                          }));
}

// grants per environment, and clearing a stage's hold
static void AddGrantAndHoldRoutes(ApiContext& ctx, std::vector<Route>& r) {
  [[maybe_unused]] Store& store = *ctx.store;
  [[maybe_unused]] DeploymentEngine& engine = *ctx.engine;
  // ---- grants: per-user permissions on an environment beside the role
  auto grant_json = [](const GrantRecord& g) {
    return Json{{"environment", g.environment},
                {"user", g.user},
                {"permission", g.permission},
                {"granted_by", g.granted_by},
                {"granted_at", Time(g.granted_at)}};
  };
  RouteGroup grants(r, "Grants");
  grants.Add(Get("/api/v1/environments/{env}/grants", Role::kViewer,
                 {.summary = "List an environment's grants",
                  .query = PageQuery(),
                  .success = "{environment, items}"},
                 [&, grant_json](HttpRequest& req) {
                   TRY_OR_ERROR(Page page, ListParams(req));
                   TRY_OR_ERROR(auto list, engine.Grants(req.Param("env")));
                   Json items = Json::array();
                   const size_t first = std::min<size_t>(page.offset, list.size());
                   const size_t last = std::min<size_t>(first + page.limit, list.size());
                   for (size_t i = first; i < last; ++i) items.push_back(grant_json(list[i]));
                   return Ok({{"environment", req.Param("env")}, {"items", items}});
                 }));
  auto set_grant = [&](bool granted) {
    return [&, granted](HttpRequest& req) {
      TRY_OR_ERROR(auto body, ParseJsonBody(req, true));
      if (!body.empty())
        return HttpResponse::Error(InvalidArgument(
            "a grant takes no fields; the path names environment, user and permission"));
      bool changed = false;
      STATUS_OR_ERROR(engine.SetGrant(ActorOf(req), req.Param("env"), req.Param("user"),
                                      req.Param("permission"), granted, &changed));
      Json out = {{"environment", req.Param("env")},
                  {"user", req.Param("user")},
                  {"permission", req.Param("permission")},
                  {"granted", granted}};
      return Ok(out, granted && changed ? 201 : 200);
    };
  };
  const std::string grant = "/api/v1/environments/{env}/grants/{user}/{permission}";
  const RequestBody no_fields{"grant", {}, false};  // the path says it all
  grants.Add(Put(grant, Role::kAdmin,
                 {.summary = "Grant a user a permission on an environment",
                  .body = no_fields,
                  .success = "the grant (201 when it is new)"},
                 set_grant(true)));
  grants.Add(Delete(grant, Role::kAdmin,
                    {.summary = "Withdraw a user's permission on an environment",
                     .body = no_fields,
                     .success = "the grant, now off"},
                    set_grant(false)));

  const RequestBody hold_body{
      "clear-hold request", {{"comment", "string", false, "why the hold is cleared"}}, false};
  r.push_back(JsonBodyRoute(
      Post, "/api/v1/applications/{app}/stages/{stage}/clear-hold", Role::kReleaseManager,
      {.summary = "Clear a stage's hold",
       .tag = "Deployments",
       .body = hold_body,
       .success = "{application, stage, hold: null}"},
      [&](HttpRequest& req, const Json& body) {
        TRY_OR_ERROR(auto comment, StringField(body, "comment", false));
        STATUS_OR_ERROR(
            engine.ClearHold(ActorOf(req), req.Param("app"), req.Param("stage"), comment));
        return Ok(
            {{"application", req.Param("app")}, {"stage", req.Param("stage")}, {"hold", nullptr}});
      }));
  (void)clock;
}

std::vector<Route> DeploymentRoutes(ApiContext& ctx) {
  std::vector<Route> r;
  if (ctx.engine == nullptr) return r;
  AddDeployRoute(ctx, r);
  AddPreviewRoute(ctx, r);
  AddDeploymentReadRoutes(ctx, r);
  AddDeploymentChangeRoutes(ctx, r);
  AddGrantAndHoldRoutes(ctx, r);
  return r;
}

// "stages" for GET /applications/{app}: what is deployed where.
Json DeployedWhereJson(DeploymentEngine& engine, const std::string& app) {
  Json stages = Json::array();
  auto views = engine.DeployedWhere(app);
  if (!views.ok()) return stages;
  for (const auto& v : *views) {
    Json targets = Json::array();
    for (const auto& t : v.targets) {
      Json current = nullptr;
      if (t.build != 0)
        current = {{"release", t.release},
                   {"build", t.build},
                   {"deployment_id", t.deployment_id},
                   {"at", Time(t.at)},
                   {"by", t.by}};
      targets.push_back({{"target", t.target}, {"current", current}});
    }
    Json candidates = Json::array();
    for (const auto& b : v.rollback_candidates)
      candidates.push_back({{"release", b.release},
                            {"build", b.build},
                            {"deployment_id", b.deployment_id},
                            {"at", Time(b.at)},
                            {"by", b.by}});
    stages.push_back({{"stage", v.stage},
                      {"environment", v.environment},
                      {"protected", v.is_protected},
                      {"auto_promote", v.auto_promote},
                      {"hold", v.hold_json.empty() ? Json(nullptr) : Json::parse(v.hold_json)},
                      {"targets", targets},
                      {"rollback_candidates", candidates}});
  }
  return stages;
}

}  // namespace reprise
