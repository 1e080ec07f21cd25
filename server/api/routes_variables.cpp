// Global variables: the server-wide scope every deployment resolves last.
#include "server/api/json_io.h"
#include "server/api/route_kinds.h"
#include "server/api/routes.h"
#include "server/catalog/catalog.h"
#include "server/store/store.h"

namespace reprise {

namespace {

HttpResponse GlobalVariablesResponse(Store& store) {
  TRY_OR_ERROR(auto g, store.GetGlobalVariables());
  return Ok({{"variables", VariablesOut(g.variables_json)},
             {"updated_at", Time(g.updated_at)},
             {"updated_by", g.updated_by}});
}

}  // namespace

std::vector<Route> VariableRoutes(ApiContext& ctx) {
  Store& store = *ctx.store;
  Catalog& catalog = *ctx.catalog;
  std::vector<Route> r;
  BodyField all_variables = VariablesFieldDoc("every global variable ({} removes them all)");
  all_variables.required = true;
  const RequestBody variables_body{"global variables", {all_variables}};
  RouteGroup group(r, "Variables");
  group.Add(Get("/api/v1/variables", Role::kViewer,
                {.summary = "The global variables", .success = "{variables}"},
                [&](HttpRequest&) { return GlobalVariablesResponse(store); }));
  // Replaces the whole scope, as PUT /environments/{env} does for an environment.
  group.Add(JsonBodyRoute(
      Put, "/api/v1/variables", Role::kAdmin,
      {.summary = "Replace the global variables", .body = variables_body, .success = "{variables}"},
      [&](HttpRequest& req, const Json& body) {
        if (!body.contains("variables"))
          return HttpResponse::Error(
              InvalidArgument("field 'variables' is required ({} removes them all)"));
        TRY_OR_ERROR(auto vars, VariablesField(body));
        STATUS_OR_ERROR(catalog.PutGlobalVariables(req.principal.user, vars));
        return GlobalVariablesResponse(store);
      }));
  return r;
}

}  // namespace reprise
