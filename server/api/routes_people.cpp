// Users, their API tokens, the audit log (JSON or CSV) and "what waits for my
// approval". Every change is written with its audit entry in one transaction.
#include <algorithm>

#include "common/crypto.h"
#include "planner/app_spec.h"
#include "server/api/auth.h"
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

// Ten years: a longer-lived token is a mistake, not a policy.
constexpr int64_t kMaxTokenLifetimeSeconds = int64_t{10} * 366 * 24 * 3600;
// A CSV export reads the log in pages of this size, up to kMaxCsvRows rows.
constexpr int64_t kCsvPage = 1000;
constexpr int64_t kMaxCsvRows = 1000000;

const char* const kRoleList = "viewer, deployer, release-manager, admin";

Json UserJson(const UserRecord& u) {
  return {{"name", u.name},
          {"role", RoleName(u.role)},
          {"disabled", u.disabled},
          {"has_password", !u.password_hash.empty()},
          {"created_at", Time(u.created_at)}};
}

// Never the hash: a token is identified by its id and name.
Json TokenJson(const TokenRecord& t, int64_t now) {
  Json j = JSON_MEMBERS(t, id, user, name);
  j["created_at"] = Time(t.created_at);
  j["last_used_at"] = TimeOrNull(t.last_used_at);
  j["expires_at"] = TimeOrNull(t.expires_at);
  j["expired"] = t.expires_at != 0 && now >= t.expires_at;
  return j;
}

Result<Role> RoleField(const std::string& name) {
  auto role = ParseRole(name);
  if (!role) return InvalidArgument("role '" + name + "' is unknown (" + kRoleList + ")");
  return *role;
}

Status CheckPassword(const std::string& password) {
  if (password.size() < 8) return InvalidArgument("password must be at least 8 characters");
  if (password.size() > 1024) return InvalidArgument("password must be at most 1024 characters");
  return Status::Ok();
}

// Refuses a change that would leave no enabled admin (nobody could undo it).
Status KeepAnAdmin(Store& store, const UserRecord& before, const UserRecord& after) {
  bool was_admin = before.role == Role::kAdmin && !before.disabled;
  bool is_admin = after.role == Role::kAdmin && !after.disabled;
  if (!was_admin || is_admin) return Status::Ok();
  Page page{kMaxListLimit, 0};
  for (int pages = 0; pages < 1000; ++pages, page.offset += page.limit) {
    REPRISE_ASSIGN_OR_RETURN(auto users, store.ListUsers(page));
    for (const auto& u : users)
      if (u.name != before.name && u.role == Role::kAdmin && !u.disabled) return Status::Ok();
    if (static_cast<int64_t>(users.size()) < page.limit) break;
  }
  return FailedPrecondition("'" + before.name +
                            "' is the last enabled admin; make another user admin first");
}

// PATCH /users/{user}: {role?, disabled?, password?} applied to `u`; the
// audit summary names what changed (never the password). `password_hash`:
// the new password's hash, computed before (it is slow: not inside the
// transaction); empty when the body sets none.
Result<std::string> ApplyUserPatch(const Json& body, const std::string& password_hash,
                                   UserRecord& u) {
  std::vector<std::string> changes;
  if (body.contains("role")) {
    REPRISE_ASSIGN_OR_RETURN(auto name, StringField(body, "role", true));
    REPRISE_ASSIGN_OR_RETURN(Role role, RoleField(name));
    if (role != u.role)
      changes.push_back(std::string("role ") + RoleName(u.role) + " -> " + RoleName(role));
    u.role = role;
  }
  if (body.contains("disabled")) {
    if (!body["disabled"].is_boolean()) return InvalidArgument("'disabled' must be true or false");
    bool disabled = body["disabled"].get<bool>();
    if (disabled != u.disabled) changes.push_back(disabled ? "disabled" : "enabled");
    u.disabled = disabled;
  }
  if (!password_hash.empty()) {
    u.password_hash = password_hash;
    changes.push_back("password reset");
  }
  if (changes.empty()) return std::string("no change");
  std::string summary;
  for (const auto& c : changes) summary += (summary.empty() ? "" : "; ") + c;
  return summary;
}

Result<int64_t> ExpiresInField(const Json& body) {
  if (!body.contains("expires_in_seconds") || body["expires_in_seconds"].is_null())
    return int64_t{0};
  const Json& v = body["expires_in_seconds"];
  if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxTokenLifetimeSeconds)
    return InvalidArgument("'expires_in_seconds' must be a whole number from 1 to " +
                           std::to_string(kMaxTokenLifetimeSeconds) + " (or absent: never)");
  return v.get<int64_t>();
}

Json AuditJson(const AuditRecord& e) {
  return {{"id", e.id},         {"at", Time(e.at)},     {"actor", e.actor},
          {"action", e.action}, {"subject", e.subject}, {"summary", e.summary}};
}

Result<AuditFilter> AuditFilterFrom(const HttpRequest& req) {
  AuditFilter f;
  f.action_prefix = req.Query("action").value_or("");
  f.subject = req.Query("subject").value_or("");
  f.actor = req.Query("actor").value_or("");
  REPRISE_ASSIGN_OR_RETURN(f.from, TimeQuery(req, "from"));
  REPRISE_ASSIGN_OR_RETURN(f.to, TimeQuery(req, "to"));
  if (f.from != 0 && f.to != 0 && f.to <= f.from)
    return InvalidArgument("query parameter 'to' must be after 'from'");
  auto format = req.Query("format").value_or("json");
  if (format != "json" && format != "csv")
    return InvalidArgument("query parameter 'format' must be json or csv");
  return f;
}

// Every entry that matches (not one page), newest first.
HttpResponse AuditCsv(Store& store, const AuditFilter& filter) {
  std::string body = "id,at,actor,action,subject,summary\r\n";
  Page page{kCsvPage, 0};
  for (; page.offset < kMaxCsvRows; page.offset += kCsvPage) {
    auto entries = store.ListAudit(filter, page);
    if (!entries.ok()) return HttpResponse::Error(entries.status());
    for (const auto& e : *entries)
      body += std::to_string(e.id) + "," + Time(e.at) + "," + CsvField(e.actor) + "," +
              CsvField(e.action) + "," + CsvField(e.subject) + "," + CsvField(e.summary) + "\r\n";
    if (static_cast<int64_t>(entries->size()) < kCsvPage) break;
  }
  HttpResponse r;
  r.content_type = "text/csv; charset=utf-8";
  r.body = std::move(body);
  r.headers.push_back({"Content-Disposition", "attachment; filename=\"audit-log.csv\""});
  return r;
}

// Whether the deployment waits for `p`'s approval: its stage needs approvals
// that `p`'s role may give, they are not all in, `p` has not decided, and `p`
// did not request it (unless the stage allows self-approval).
bool AwaitsApprovalBy(Store& store, const DeploymentRecord& d, const Principal& p) {
  auto rel = store.GetRelease(d.application, d.release);
  if (!rel.ok()) return false;
  auto spec = ParseAppSpec(rel->snapshot_json, "release snapshot");
  if (!spec.ok()) return false;
  const StageSpec* stage = spec->FindStage(d.stage);
  if (stage == nullptr || stage->gates.approvals.count <= 0) return false;
  Role needed = ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager);
  if (p.role < needed) return false;
  if (d.requested_by == p.user && !stage->gates.allow_self_approval) return false;
  auto approvals = store.ListApprovals(d.id);
  if (!approvals.ok()) return false;
  int approved = 0;
  for (const auto& a : *approvals) {
    if (a.revoked) continue;
    if (a.user == p.user) return false;
    if (a.decision == "approved") ++approved;
  }
  return approved < stage->gates.approvals.count;
}

}  // namespace

namespace {

// Whether deployment `id` waits at a manual step `p` may continue (the
// step's role, deployer when it names none; an unknown role: admins only).
bool MayAnswerManual(const DeploymentEngine& engine, int64_t id, const Principal& p) {
  auto m = engine.Manual(id);
  if (!m) return false;
  std::optional<Role> needed = m->role.empty() ? Role::kDeployer : ParseRole(m->role);
  return p.role >= needed.value_or(Role::kAdmin);
}

// Appends an audit entry by the request's user.
auto AuditBy(Store& store, const Clock& clock) {
  return [&store, &clock](const HttpRequest& req, const char* action, const std::string& subject,
                          const std::string& summary) {
    return store.AppendAudit(
        {0, ToUnixMillis(clock.Now()), req.principal.user, action, subject, summary});
  };
}

// The users: list, create, show, change.
void AddUserRoutes(ApiContext& ctx, std::vector<Route>& r) {
  Store& store = *ctx.store;
  const Clock& clock = *ctx.clock;
  auto audit = AuditBy(store, clock);
  const RequestBody new_user_body{
      "user",
      {{"name", "string", true, "the login name"},
       {"role", "string", true, "viewer, deployer, release-manager or admin"},
       {"password", "string", false, "for the web UI (API clients use tokens)"}}};
  const RequestBody user_change_body{
      "user",
      {{"role", "string", false, "viewer, deployer, release-manager or admin"},
       {"disabled", "boolean", false, "a disabled user can neither log in nor use tokens"},
       {"password", "string", false, "a new password"}}};
  RouteGroup group(r, "Users");
  group.Add(ListRoute(
      "/api/v1/users", Role::kAdmin, {.summary = "List users"},
      [&](HttpRequest&, const Page& page) { return store.ListUsers(page); }, UserJson));

  group.Add(JsonBodyRoute(
      Post, "/api/v1/users", Role::kAdmin,
      {.summary = "Create a user",
       .body = new_user_body,
       .success_status = 201,
       .success = "the new user"},
      [&, audit](HttpRequest& req, const Json& body) {
        TRY_OR_ERROR(auto name, StringField(body, "name", true));
        TRY_OR_ERROR(auto role_name, StringField(body, "role", true));
        TRY_OR_ERROR(auto password, StringField(body, "password", false));
        if (!IsValidName(name))
          return HttpResponse::Error(InvalidArgument("user name '" + name + "' is invalid"));
        TRY_OR_ERROR(Role role, RoleField(role_name));
        if (!password.empty()) STATUS_OR_ERROR(CheckPassword(password));
        UserRecord u{name, role, password.empty() ? "" : HashPassword(password),
                     ToUnixMillis(clock.Now())};
        STATUS_OR_ERROR(store.Atomically([&] {
          REPRISE_RETURN_IF_ERROR(store.CreateUser(u));
          return audit(req, "user.create", name, std::string("role ") + RoleName(role));
        }));
        return Ok({{"name", name}, {"role", RoleName(role)}}, 201);
      }));

  group.Add(ItemRoute(
      "/api/v1/users/{user}", Role::kAdmin, {.summary = "Get a user", .success = "the user"},
      [&](HttpRequest& req) { return store.GetUser(req.Param("user")); }, UserJson));

  group.Add(JsonBodyRoute(
      Patch, "/api/v1/users/{user}", Role::kAdmin,
      {.summary = "Change a user's role, password or disabled flag",
       .body = user_change_body,
       .success = "the user"},
      [&, audit](HttpRequest& req, const Json& body) {
        std::string password_hash;
        if (body.contains("password")) {
          TRY_OR_ERROR(auto password, StringField(body, "password", true));
          STATUS_OR_ERROR(CheckPassword(password));
          password_hash = HashPassword(password);
        }
        UserRecord after;
        STATUS_OR_ERROR(store.Atomically([&] {
          REPRISE_ASSIGN_OR_RETURN(UserRecord before, store.GetUser(req.Param("user")));
          after = before;
          REPRISE_ASSIGN_OR_RETURN(std::string summary, ApplyUserPatch(body, password_hash, after));
          REPRISE_RETURN_IF_ERROR(KeepAnAdmin(store, before, after));
          REPRISE_RETURN_IF_ERROR(store.UpdateUser(after));
          return audit(req, "user.update", after.name, summary);
        }));
        return Ok(UserJson(after));
      }));
}

// A user's API tokens: list, create, revoke.
void AddTokenRoutes(ApiContext& ctx, std::vector<Route>& r) {
  Store& store = *ctx.store;
  const Clock& clock = *ctx.clock;
  auto audit = AuditBy(store, clock);
  const RequestBody token_body{
      "token",
      {{"name", "string", false, "what the token is for (default \"api\")"},
       {"expires_in_seconds", "integer", false, "lifetime; absent: no expiry"}},
      false};
  RouteGroup group(r, "Users");
  group.Add(Get("/api/v1/users/{user}/tokens", Role::kAdmin,
                {.summary = "List a user's API tokens",
                 .success = "{items}: the tokens (never their secret)"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto user, store.GetUser(req.Param("user")));
                  TRY_OR_ERROR(auto tokens, store.ListTokens(user.name));
                  int64_t now = ToUnixMillis(clock.Now());
                  Json items = Json::array();
                  for (const auto& t : tokens) items.push_back(TokenJson(t, now));
                  return Ok({{"user", user.name}, {"items", items}});
                }));

  group.Add(JsonBodyRoute(
      Post, "/api/v1/users/{user}/tokens", Role::kAdmin,
      {.summary = "Create an API token",
       .body = token_body,
       .success_status = 201,
       .success = "the token record and its secret, shown this once"},
      [&, audit](HttpRequest& req, const Json& body) {
        TRY_OR_ERROR(auto name, StringField(body, "name", false));
        if (name.empty()) name = "api";
        if (name.size() > 100)
          return HttpResponse::Error(InvalidArgument("token name must be at most 100 characters"));
        TRY_OR_ERROR(int64_t expires_in, ExpiresInField(body));
        TRY_OR_ERROR(auto user, store.GetUser(req.Param("user")));
        int64_t now = ToUnixMillis(clock.Now());
        int64_t expires_at = expires_in == 0 ? 0 : now + expires_in * 1000;
        std::string token;
        TokenRecord stored;
        STATUS_OR_ERROR(store.Atomically([&] {
          REPRISE_ASSIGN_OR_RETURN(token,
                                   IssueToken(store, clock, user.name, name, expires_at, &stored));
          return audit(req, "token.create", user.name,
                       "token '" + name + "' (#" + std::to_string(stored.id) + ")" +
                           (expires_at ? ", expires " + Time(expires_at) : ""));
        }));
        // The token is shown once; only its hash is kept.
        Json out = TokenJson(stored, now);
        out["token"] = token;
        return Ok(out, 201);
      }));

  group.Add(Delete("/api/v1/users/{user}/tokens/{id}", Role::kAdmin,
                   {.summary = "Revoke an API token", .success = "{user, id, revoked: true}"},
                   [&, audit](HttpRequest& req) {
                     TRY_OR_ERROR(int64_t id, ParseNumber(req.Param("id"), "token id"));
                     TRY_OR_ERROR(auto user, store.GetUser(req.Param("user")));
                     TRY_OR_ERROR(auto tokens, store.ListTokens(user.name));
                     auto it = std::find_if(tokens.begin(), tokens.end(),
                                            [&](const TokenRecord& t) { return t.id == id; });
                     if (it == tokens.end())
                       return HttpResponse::Error(NotFound(
                           "user '" + user.name + "' has no token #" + std::to_string(id)));
                     STATUS_OR_ERROR(store.Atomically([&]() -> Status {
                       REPRISE_ASSIGN_OR_RETURN(bool removed, store.DeleteToken(user.name, id));
                       if (!removed)
                         return NotFound("token #" + std::to_string(id) + " is already gone");
                       return audit(req, "token.revoke", user.name,
                                    "token '" + it->name + "' (#" + std::to_string(id) + ")");
                     }));
                     return Ok({{"user", user.name}, {"id", id}, {"revoked", true}});
                   }));
}

// The audit log and what awaits the caller's approval.
void AddAuditAndApprovalRoutes(ApiContext& ctx, std::vector<Route>& r) {
  Store& store = *ctx.store;
  r.push_back(
      Get("/api/v1/audit", Role::kAdmin,
          {.summary = "Read the audit log",
           .tag = "Audit",
           .query = ExportListQuery({{"action", "string", "actions starting with this"},
                                     {"subject", "string", "only this subject (\"deployment 7\")"},
                                     {"actor", "string", "only this user"}},
                                    ""),
           .success = kExportListAnswer},
          [&](HttpRequest& req) {
            TRY_OR_ERROR(Page page,
                         ListParams(req, {"action", "subject", "actor", "from", "to", "format"}));
            TRY_OR_ERROR(AuditFilter filter, AuditFilterFrom(req));
            if (req.Query("format").value_or("json") == "csv") return AuditCsv(store, filter);
            TRY_OR_ERROR(auto entries, store.ListAudit(filter, page));
            return ListResponse(entries, page, AuditJson);
          }));

  r.push_back(
      Get("/api/v1/me/approvals", Role::kViewer,
          {.summary = "What awaits the caller's approval",
           .tag = "Session",
           .success =
               "deployment ids awaiting approval, paused at a manual step, and rollback records"},
          [&](HttpRequest& req) {
            DeploymentFilter filter;
            filter.statuses = {"waiting"};  // as the Approvals page lists
            TRY_OR_ERROR(auto list, store.ListDeployments(filter, Page{kMaxListLimit, 0}));
            Json ids = Json::array();
            for (const auto& d : list)
              if (AwaitsApprovalBy(store, d, req.principal)) ids.push_back(d.id);
            // Plans paused at a manual step this user may continue.
            Json manual = Json::array();
            filter.statuses = {"running"};
            TRY_OR_ERROR(auto running, store.ListDeployments(filter, Page{kMaxListLimit, 0}));
            for (const auto& d : running)
              if (ctx.engine && MayAnswerManual(*ctx.engine, d.id, req.principal))
                manual.push_back(d.id);
            return Ok({{"count", ids.size() + manual.size()},
                       {"deployment_ids", ids},
                       {"manual_deployment_ids", manual}});
          }));
}

}  // namespace

std::vector<Route> PeopleRoutes(ApiContext& ctx) {
  std::vector<Route> r;
  AddUserRoutes(ctx, r);
  AddTokenRoutes(ctx, r);
  AddAuditAndApprovalRoutes(ctx, r);
  return r;
}

}  // namespace reprise
