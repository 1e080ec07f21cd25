// Health, users, API tokens and the audit log.
#include "planner/version.h"
#include "server/api/auth.h"
#include "server/api/json_io.h"
#include "server/http/list_params.h"
#include "server/api/routes.h"
#include "server/catalog/catalog.h"
#include "server/store/store.h"
#include "common/crypto.h"

namespace reprise {

std::vector<Route> AdminRoutes(ApiContext& ctx) {
  Store& store = *ctx.store;
  const Clock& clock = *ctx.clock;
  std::vector<Route> r;

  r.push_back({"GET", "/api/v1/health", Role::kViewer, true, [&](HttpRequest&) {
                 Status st = store.Ping();
                 Json j = {{"status", st.ok() ? "ok" : "degraded"},
                           {"version", Version()},
                           {"store", {{"status", st.ok() ? "ok" : st.message()},
                                      {"schema_version", store.SchemaVersion()}}}};
                 return Ok(j, st.ok() ? 200 : 503);
               }, nullptr});

  r.push_back({"GET", "/api/v1/me", Role::kViewer, false, [&](HttpRequest& req) {
                 return Ok({{"user", req.principal.user}, {"role", RoleName(req.principal.role)}});
               }, nullptr});

  r.push_back({"GET", "/api/v1/users", Role::kAdmin, false, [&](HttpRequest& req) {
                 TRY_OR_ERROR(Page page, ListParams(req));
                 TRY_OR_ERROR(auto users, store.ListUsers(page));
                 Json items = Json::array();
                 for (const auto& u : users)
                   items.push_back({{"name", u.name}, {"role", RoleName(u.role)},
                                    {"has_password", !u.password_hash.empty()},
                                    {"created_at", Time(u.created_at)}});
                 return ListResponse(std::move(items), page);
               }, nullptr});

  r.push_back({"POST", "/api/v1/users", Role::kAdmin, false, [&](HttpRequest& req) {
                 TRY_OR_ERROR(auto body, ParseJsonBody(req));
                 STATUS_OR_ERROR(CheckKeys(body, {"name", "role", "password"}, "user"));
                 TRY_OR_ERROR(auto name, StringField(body, "name", true));
                 TRY_OR_ERROR(auto role_name, StringField(body, "role", true));
                 TRY_OR_ERROR(auto password, StringField(body, "password", false));
                 if (!IsValidName(name))
                   return HttpResponse::Error(InvalidArgument("user name '" + name + "' is invalid"));
                 auto role = ParseRole(role_name);
                 if (!role)
                   return HttpResponse::Error(InvalidArgument(
                       "role '" + role_name +
                       "' is unknown (viewer, deployer, release-manager, admin)"));
                 if (!password.empty() && password.size() < 8)
                   return HttpResponse::Error(
                       InvalidArgument("password must be at least 8 characters"));
                 UserRecord u{name, *role, password.empty() ? "" : HashPassword(password),
                              ToUnixMillis(clock.Now())};
                 STATUS_OR_ERROR(store.Atomically([&] {
                   REPRISE_RETURN_IF_ERROR(store.CreateUser(u));
                   return store.AppendAudit({0, ToUnixMillis(clock.Now()), req.principal.user,
                                             "user.create", name,
                                             std::string("role ") + RoleName(*role)});
                 }));
                 return Ok({{"name", name}, {"role", RoleName(*role)}}, 201);
               }, nullptr});

  r.push_back({"POST", "/api/v1/users/{user}/tokens", Role::kAdmin, false, [&](HttpRequest& req) {
                 TRY_OR_ERROR(auto body, ParseJsonBody(req, true));
                 STATUS_OR_ERROR(CheckKeys(body, {"name"}, "token"));
                 TRY_OR_ERROR(auto name, StringField(body, "name", false));
                 TRY_OR_ERROR(auto user, store.GetUser(req.Param("user")));
                 std::string token;
                 STATUS_OR_ERROR(store.Atomically([&] {
                   REPRISE_ASSIGN_OR_RETURN(
                       token, IssueToken(store, clock, user.name, name.empty() ? "api" : name));
                   return store.AppendAudit({0, ToUnixMillis(clock.Now()), req.principal.user,
                                             "token.create", user.name,
                                             "token '" + (name.empty() ? "api" : name) + "'"});
                 }));
                 // The token is shown once; only its hash is kept.
                 return Ok({{"user", user.name}, {"name", name.empty() ? "api" : name},
                            {"token", token}},
                           201);
               }, nullptr});

  r.push_back({"GET", "/api/v1/audit", Role::kAdmin, false, [&](HttpRequest& req) {
                 TRY_OR_ERROR(Page page, ListParams(req, {"action", "subject"}));
                 AuditFilter filter{req.Query("action").value_or(""),
                                    req.Query("subject").value_or("")};
                 TRY_OR_ERROR(auto entries, store.ListAudit(filter, page));
                 Json items = Json::array();
                 for (const auto& e : entries)
                   items.push_back({{"id", e.id}, {"at", Time(e.at)}, {"actor", e.actor},
                                    {"action", e.action}, {"subject", e.subject},
                                    {"summary", e.summary}});
                 return ListResponse(std::move(items), page);
               }, nullptr});
  return r;
}

}  // namespace reprise
