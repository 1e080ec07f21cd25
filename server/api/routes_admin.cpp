// Health and who am I (users, tokens and the audit log: routes_people.cpp).
#include "planner/version.h"
#include "server/api/json_io.h"
#include "server/api/routes.h"
#include "server/store/store.h"

namespace reprise {

std::vector<Route> AdminRoutes(ApiContext& ctx) {
  Store& store = *ctx.store;
  std::vector<Route> r;

  r.push_back(Public(
      Get("/api/v1/health", Role::kViewer,
          {.summary = "Is the server up",
           .tag = "Meta",
           .success = "{status, version, store: {status, schema_version}} (503 when degraded)"},
          [&](HttpRequest&) {
            Status st = store.Ping();
            Json j = {{"status", st.ok() ? "ok" : "degraded"},
                      {"version", Version()},
                      {"store",
                       {{"status", st.ok() ? "ok" : st.message()},
                        {"schema_version", store.SchemaVersion()}}}};
            return Ok(j, st.ok() ? 200 : 503);
          })));

  r.push_back(
      Get("/api/v1/me", Role::kViewer,
          {.summary = "Who the caller is", .tag = "Session", .success = "{user, role}"},
          [&](HttpRequest& req) {
            return Ok({{"user", req.principal.user}, {"role", RoleName(req.principal.role)}});
          }));

  return r;
}

}  // namespace reprise
