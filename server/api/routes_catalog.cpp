// Environments, targets, applications, releases and builds.
#include "server/api/json_io.h"
#include "server/api/release_notes.h"
#include "server/api/route_kinds.h"
#include "server/api/routes.h"
#include "server/api/routes_rollback_records.h"
#include "server/catalog/catalog.h"
#include "server/http/list_params.h"
#include "server/store/store.h"

namespace reprise {

Json DeployedWhereJson(DeploymentEngine& engine, const std::string& app);

namespace {

Json EnvironmentJson(const EnvironmentRecord& e) {
  return {{"name", e.name},
          {"variables", VariablesOut(e.variables_json)},
          {"updated_at", Time(e.updated_at)}};
}

Json TargetJson(const TargetRecord& t) {
  Json j = JSON_MEMBERS(t, name, environment, agent, path);
  j["variables"] = VariablesOut(t.variables_json);
  j["updated_at"] = Time(t.updated_at);
  return j;
}

// Sensitive values inside a stored spec never leave the server.
Json MaskedSpec(const std::string& spec_json) {
  Json spec = Json::parse(MaskedSpecJson(spec_json), nullptr, false);
  return spec.is_discarded() ? Json::object() : spec;
}

Json ApplicationJson(const ApplicationRecord& a) {
  return {{"name", a.name},
          {"spec_version", a.spec_version},
          {"spec", MaskedSpec(a.spec_json)},
          {"updated_at", Time(a.updated_at)},
          {"updated_by", a.updated_by}};
}

Json ReleaseJson(const ReleaseRecord& r) {
  Json j = JSON_MEMBERS(r, application, number, spec_version, created_by, notes);
  j["variables"] = VariablesOut(r.variables_json);
  j["created_at"] = Time(r.created_at);
  j["links"] = LinksOut(r.links_json);
  return j;
}

Json BuildJson(const BuildRecord& b) {
  Json j = JSON_MEMBERS(b, application, release, number, created_by, notes);
  j["variables"] = VariablesOut(b.variables_json);
  j["created_at"] = Time(b.created_at);
  j["sealed"] = b.sealed();
  j["sealed_reason"] = SealedReason(b);
  j["links"] = LinksOut(b.links_json);
  return j;
}

}  // namespace

// environments and targets
// Environments: list, show, create or replace.
static void AddEnvironmentRoutes(Store& store, Catalog& catalog, std::vector<Route>& r) {
  const RequestBody environment_body{"environment", {VariablesFieldDoc()}, false};
  RouteGroup group(r, "Environments");
  group.Add(ListRoute(
      "/api/v1/environments", Role::kViewer, {.summary = "List environments"},
      [&](HttpRequest&, const Page& page) { return store.ListEnvironments(page); },
      EnvironmentJson));
  group.Add(ItemRoute(
      "/api/v1/environments/{env}", Role::kViewer,
      {.summary = "Get an environment", .success = "the environment: name, variables, updated_at"},
      [&](HttpRequest& req) { return store.GetEnvironment(req.Param("env")); }, EnvironmentJson));
  group.Add(JsonBodyRoute(Put, "/api/v1/environments/{env}", Role::kAdmin,
                          {.summary = "Create or replace an environment",
                           .body = environment_body,
                           .success = "the stored environment"},
                          [&](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(auto vars, VariablesField(body));
                            STATUS_OR_ERROR(
                                catalog.PutEnvironment(req.principal.user, req.Param("env"), vars));
                            TRY_OR_ERROR(auto env, store.GetEnvironment(req.Param("env")));
                            return Ok(EnvironmentJson(env));
                          }));
}

// Targets: list, show, create or replace.
static void AddTargetRoutes(Store& store, Catalog& catalog, std::vector<Route>& r) {
  const RequestBody target_body{"target",
                                {{"environment", "string", true, "the environment it belongs to"},
                                 {"agent", "string", true, "the agent that deploys to it"},
                                 {"path", "string", true, "the directory on the agent's machine"},
                                 VariablesFieldDoc()}};
  RouteGroup group(r, "Targets");
  group.Add(ListRoute(
      "/api/v1/targets", Role::kViewer, {.summary = "List targets"},
      [&](HttpRequest&, const Page& page) { return store.ListTargets(page); }, TargetJson));
  group.Add(ItemRoute(
      "/api/v1/targets/{target}", Role::kViewer,
      {.summary = "Get a target",
       .success = "the target: name, environment, agent, path, variables"},
      [&](HttpRequest& req) { return store.GetTarget(req.Param("target")); }, TargetJson));
  group.Add(JsonBodyRoute(Put, "/api/v1/targets/{target}", Role::kAdmin,
                          {.summary = "Create or replace a target",
                           .body = target_body,
                           .success = "the stored target"},
                          [&](HttpRequest& req, const Json& body) {
                            TargetRecord t;
                            t.name = req.Param("target");
                            TRY_OR_ERROR(t.environment, StringField(body, "environment", true));
                            TRY_OR_ERROR(t.agent, StringField(body, "agent", true));
                            TRY_OR_ERROR(t.path, StringField(body, "path", true));
                            TRY_OR_ERROR(auto vars, VariablesField(body));
                            STATUS_OR_ERROR(catalog.PutTarget(req.principal.user, t, vars));
                            TRY_OR_ERROR(auto stored, store.GetTarget(t.name));
                            return Ok(TargetJson(stored));
                          }));
}

// applications, releases and builds
static void AddApplicationRoutes(ApiContext& ctx, std::vector<Route>& r) {
  Store& store = *ctx.store;
  Catalog& catalog = *ctx.catalog;
  RouteGroup group(r, "Applications");
  group.Add(ListRoute(
      "/api/v1/applications", Role::kViewer, {.summary = "List applications"},
      [&](HttpRequest&, const Page& page) { return store.ListApplications(page); },
      ApplicationJson));
  group.Add(Get("/api/v1/applications/{app}", Role::kViewer,
                {.summary = "Get an application",
                 .success = "the application with its spec (secrets masked), spec_text and stages"},
                [&store, &ctx](HttpRequest& req) {
                  TRY_OR_ERROR(auto a, store.GetApplication(req.Param("app")));
                  Json j = ApplicationJson(a);
                  j["spec_text"] = MaskedSpecText(a);  // for editing; secrets masked
                  if (ctx.engine != nullptr) {
                    j["stages"] = DeployedWhereJson(*ctx.engine, a.name);
                    AddRollbackRecordsToStages(store, j["stages"]);
                  }
                  return Ok(j);
                }));
  group.Add(Put("/api/v1/applications/{app}", Role::kReleaseManager,
                {.summary = "Create or update an application from its spec",
                 .description = "The body is the application spec (pipeline, plan, variables), as "
                                "JSON or YAML text (see docs/spec.md).",
                 .body = RequestBody{"application spec", {}, true, true},
                 .success = "the stored application"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto a, catalog.PutApplication(req.principal.user, req.Param("app"),
                                                              req.body));
                  return Ok(ApplicationJson(a));
                }));
}

// Releases: list, create, show.
static void AddReleaseRoutes(Store& store, Catalog& catalog, std::vector<Route>& r) {
  const RequestBody release_body{"release",
                                 {{"number", "string", true, "the release number (\"1.4\")"},
                                  VariablesFieldDoc(),
                                  NotesFieldDoc(),
                                  LinksFieldDoc()}};
  RouteGroup group(r, "Releases");
  group.Add(Get("/api/v1/applications/{app}/releases", Role::kViewer,
                {.summary = "List an application's releases",
                 .query = PageQuery(),
                 .success = "{items, limit, offset, next_offset?}"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto app, store.GetApplication(req.Param("app")));
                  TRY_OR_ERROR(Page page, ListParams(req));
                  TRY_OR_ERROR(auto list, store.ListReleases(app.name, page));
                  return ListResponse(list, page, ReleaseJson);
                }));
  group.Add(JsonBodyRoute(Post, "/api/v1/applications/{app}/releases", Role::kDeployer,
                          {.summary = "Create a release",
                           .body = release_body,
                           .success_status = 201,
                           .success = "the new release"},
                          [&](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(auto number, StringField(body, "number", true));
                            TRY_OR_ERROR(auto vars, VariablesField(body));
                            TRY_OR_ERROR(auto notes, NotesAndLinksFields(body, "release"));
                            TRY_OR_ERROR(auto rel, catalog.CreateRelease(
                                                       req.principal.user, req.Param("app"), number,
                                                       vars, {notes.notes, notes.links_json}));
                            return Ok(ReleaseJson(rel), 201);
                          }));
  group.Add(Get("/api/v1/applications/{app}/releases/{rel}", Role::kViewer,
                {.summary = "Get a release", .success = "the release with its spec snapshot"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto rel, store.GetRelease(req.Param("app"), req.Param("rel")));
                  Json j = ReleaseJson(rel);
                  j["snapshot"] = MaskedSpec(rel.snapshot_json);
                  return Ok(j);
                }));
}

// Builds: list, create, show, seal.
static void AddBuildRoutes(Store& store, Catalog& catalog, std::vector<Route>& r) {
  const RequestBody build_body{
      "build", {VariablesFieldDoc(), NotesFieldDoc(), LinksFieldDoc()}, false};
  RouteGroup group(r, "Builds");
  group.Add(Get("/api/v1/applications/{app}/releases/{rel}/builds", Role::kViewer,
                {.summary = "List a release's builds",
                 .query = PageQuery(),
                 .success = "{items, limit, offset, next_offset?}"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(auto rel, store.GetRelease(req.Param("app"), req.Param("rel")));
                  TRY_OR_ERROR(Page page, ListParams(req));
                  TRY_OR_ERROR(auto list, store.ListBuilds(rel.application, rel.number, page));
                  return ListResponse(list, page, BuildJson);
                }));
  group.Add(JsonBodyRoute(Post, "/api/v1/applications/{app}/releases/{rel}/builds", Role::kDeployer,
                          {.summary = "Create a build",
                           .body = build_body,
                           .success_status = 201,
                           .success = "the new build"},
                          [&](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(auto vars, VariablesField(body));
                            TRY_OR_ERROR(auto notes, NotesAndLinksFields(body, "build"));
                            TRY_OR_ERROR(auto b,
                                         catalog.CreateBuild(req.principal.user, req.Param("app"),
                                                             req.Param("rel"), vars,
                                                             {notes.notes, notes.links_json}));
                            return Ok(BuildJson(b), 201);
                          }));
  group.Add(
      Get("/api/v1/applications/{app}/releases/{rel}/builds/{n}", Role::kViewer,
          {.summary = "Get a build with its artifacts", .success = "the build and its artifacts"},
          [&](HttpRequest& req) {
            TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
            TRY_OR_ERROR(auto b, store.GetBuild(req.Param("app"), req.Param("rel"), n));
            TRY_OR_ERROR(auto artifacts, store.ListArtifacts(b.application, b.release, n));
            Json j = BuildJson(b);
            j["artifacts"] = Json::array();
            for (const auto& a : artifacts) j["artifacts"].push_back(ArtifactSummaryJson(a));
            return Ok(j);
          }));
  // Whoever may create builds may seal one: no artifact can be added after.
  group.Add(Post("/api/v1/applications/{app}/releases/{rel}/builds/{n}/seal", Role::kDeployer,
                 {.summary = "Seal a build: no artifact can be added after",
                  .body = RequestBody{"seal request", {}, false},
                  .success = "the sealed build"},
                 [&](HttpRequest& req) {
                   TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
                   TRY_OR_ERROR(auto body, ParseJsonBody(req, true));
                   if (!body.empty())
                     return HttpResponse::Error(InvalidArgument(
                         "a seal request takes no fields (got '" + body.begin().key() + "')"));
                   TRY_OR_ERROR(auto b, catalog.SealBuild(req.principal.user, req.Param("app"),
                                                          req.Param("rel"), n));
                   return Ok(BuildJson(b));
                 }));
}

std::vector<Route> CatalogRoutes(ApiContext& ctx) {
  std::vector<Route> r;
  AddEnvironmentRoutes(*ctx.store, *ctx.catalog, r);
  AddTargetRoutes(*ctx.store, *ctx.catalog, r);
  AddApplicationRoutes(ctx, r);
  AddReleaseRoutes(*ctx.store, *ctx.catalog, r);
  AddBuildRoutes(*ctx.store, *ctx.catalog, r);
  return r;
}

std::vector<Route> ApiRoutes(ApiContext& ctx) {
  std::vector<Route> all;
  for (auto group : {AdminRoutes(ctx), CatalogRoutes(ctx), ArtifactRoutes(ctx),
                     DeploymentRoutes(ctx), RetentionRoutes(ctx), MetricsRoutes(ctx),
                     PeopleRoutes(ctx), VariableRoutes(ctx), InsightsRoutes(ctx)})
    for (auto& route : group) all.push_back(std::move(route));
  return all;
}

}  // namespace reprise
