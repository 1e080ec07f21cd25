// Global variables: the server-wide scope every deployment resolves last.
#include "server/api/json_io.h"
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
  r.push_back({"GET", "/api/v1/variables", Role::kViewer, false,
               [&](HttpRequest&) { return GlobalVariablesResponse(store); }, nullptr});
  // Replaces the whole scope, as PUT /environments/{env} does for an environment.
  r.push_back({"PUT", "/api/v1/variables", Role::kAdmin, false,
               [&](HttpRequest& req) {
                 TRY_OR_ERROR(auto body, ParseJsonBody(req));
                 STATUS_OR_ERROR(CheckKeys(body, {"variables"}, "global variables"));
                 if (!body.contains("variables"))
                   return HttpResponse::Error(
                       InvalidArgument("field 'variables' is required ({} removes them all)"));
                 TRY_OR_ERROR(auto vars, VariablesField(body));
                 STATUS_OR_ERROR(catalog.PutGlobalVariables(req.principal.user, vars));
                 return GlobalVariablesResponse(store);
               },
               nullptr});
  return r;
}

}  // namespace reprise
