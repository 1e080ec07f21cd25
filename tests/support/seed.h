// SeedLocalStage: an application with one stage whose one target lives on
// the server's local agent, created through the API, for tests that need
// something to deploy without an agent process. Not thread-safe (one client).
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"

namespace reprise::testing {

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
  nlohmann::json t = {
      {"environment", names.environment}, {"agent", "local"}, {"path", path.string()}};
  auto put = admin.Put("/api/v1/targets/" + names.target, t.dump());
  REQUIRE_MESSAGE(put.status == 200, put.body);
  std::string spec = "pipeline:\n  - {stage: " + names.stage +
                     ", environment: " + names.environment + ", targets: [" + names.target +
                     "], plan: p}\nplans:\n  p: |\n" + plan_steps;
  const std::string app = "/api/v1/applications/" + names.application;
  auto created = admin.Put(app, spec, "application/yaml");
  REQUIRE_MESSAGE(created.status == 200, created.body);
  REQUIRE(admin.Post(app + "/releases", R"({"number":"1.0"})").status == 201);
  for (int build = 1; build <= names.builds; ++build)
    REQUIRE(admin.Post(app + "/releases/1.0/builds", "{}").status == 201);
}

}  // namespace reprise::testing
