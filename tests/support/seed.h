// Catalog seeding through the API for tests: a target, an application with
// its first release, and SeedLocalStage, an application with one stage whose
// one target lives on the server's local agent, for tests that need
// something to deploy without an agent process. Not thread-safe (one client).
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"

namespace reprise::testing {

// A response's body as JSON (discarded, not thrown, when it is not JSON).
inline nlohmann::json Body(const HttpResult& r) {
  return nlohmann::json::parse(r.body, nullptr, false);
}

// What application `app`'s view says is deployed on `target` (its
// "current": null when nothing is); the string "no such target" when the
// application has no such target.
inline nlohmann::json TargetCurrent(HttpClient& admin, const std::string& target,
                                    const std::string& app = "shop") {
  auto view = Body(admin.Get("/api/v1/applications/" + app));
  for (const auto& s : view["stages"])
    for (const auto& t : s["targets"])
      if (t["target"] == target) return t["current"];
  return "no such target";
}

// PUT /api/v1/targets/{name}: the target `path` on `agent` in `environment`.
inline void PutTarget(HttpClient& admin, const std::string& name, const std::string& environment,
                      const std::string& agent, const std::string& path) {
  nlohmann::json t = {{"environment", environment}, {"agent", agent}, {"path", path}};
  auto put = admin.Put("/api/v1/targets/" + name, t.dump());
  REQUIRE_MESSAGE(put.status == 200, put.body);
}

// PUT /api/v1/applications/{app} with the YAML `spec`, then its release `release`.
inline void PutApplicationWithRelease(HttpClient& admin, const std::string& app,
                                      const std::string& spec, const std::string& release = "1.0") {
  auto created = admin.Put("/api/v1/applications/" + app, spec, "application/yaml");
  REQUIRE_MESSAGE(created.status == 200, created.body);
  nlohmann::json number = {{"number", release}};
  REQUIRE(admin.Post("/api/v1/applications/" + app + "/releases", number.dump()).status == 201);
}

struct LocalStage {
  std::string application = "app";
  std::string environment = "Integration";
  std::string target = "web";
  std::string stage = "S";
  int builds = 1;  // of release 1.0
};

// Creates the environment, the target on agent "local" at `path`, the
// application whose stage runs plan `p` made of `plan_steps` (YAML list
// lines indented four spaces), release 1.0 and its builds.
inline void SeedLocalStage(HttpClient& admin, const std::filesystem::path& path,
                           const std::string& plan_steps, const LocalStage& names = {}) {
  REQUIRE(admin.Put("/api/v1/environments/" + names.environment, "{}").status == 200);
  PutTarget(admin, names.target, names.environment, "local", path.string());
  std::string spec = "pipeline:\n  - {stage: " + names.stage +
                     ", environment: " + names.environment + ", targets: [" + names.target +
                     "], plan: p}\nplans:\n  p: |\n" + plan_steps;
  PutApplicationWithRelease(admin, names.application, spec);
  const std::string app = "/api/v1/applications/" + names.application;
  for (int build = 1; build <= names.builds; ++build)
    REQUIRE(admin.Post(app + "/releases/1.0/builds", "{}").status == 201);
}

}  // namespace reprise::testing
