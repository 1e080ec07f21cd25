// GET /dashboard and GET /insights against a real server (fake clock, real
// SQLite file, plans that need no agent).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "tests/support/seed.h"
#include "tests/support/test_server.h"
#include "tests/support/wait.h"

namespace reprise::testing {

using nlohmann::json;

namespace {


// A one-stage application whose plan fails when the deployment sets Fail.
const char* kSpec = R"(
variables: { Fail: "false" }
pipeline:
  - { stage: Live, environment: Live, targets: [live-web], plan: p }
plans:
  p: |
    - log: "deploying $BuildNumber"
    - if: { condition: "$Fail == true", then: [ { fail: "asked to fail" } ] }
)";

struct InsightsServer {
  InsightsServer()
      : clock(*ParseRfc3339("2026-03-02T08:00:00Z")),
        server(Options(&clock)),
        admin(server.Admin()) {
    REQUIRE(admin.Put("/api/v1/environments/Live", "{}").status == 200);
    PutTarget(admin, "live-web", "Live", "a1", "/srv/live");
    PutApplicationWithRelease(admin, "shop", kSpec);
  }
  static ServerOptions Options(Clock* clock) {
    ServerOptions o;
    o.clock = clock;
    return o;
  }
  void NewBuild() {
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  }
  // Deploys and waits until the deployment ends; returns its status.
  std::string Deploy(int build, bool fail = false) {
    json body = {{"stage", "Live"}};
    if (fail) body["variables"] = {{"Fail", "true"}};
    auto r = admin.Post(
        "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(build) + "/deploy",
        body.dump());
    REQUIRE_MESSAGE(r.status == 202, r.body);
    const std::string path = "/api/v1/deployments/" + std::to_string(Body(r)["id"].get<int64_t>());
    std::string status;
    REQUIRE(WaitUntil([&] {
      status = Body(admin.Get(path))["status"].get<std::string>();
      return status == "succeeded" || status == "failed";
    }));
    return status;
  }
  FakeClock clock;
  TestServer server;
  HttpClient admin;
};

}  // namespace

TEST_CASE("insights: frequency, lead time, change failure rate and time to restore of a stage") {
  InsightsServer s;
  using std::chrono::minutes;
  s.NewBuild();  // build 1 at 08:00
  s.clock.Advance(minutes(60));
  CHECK(s.Deploy(1) == "succeeded");  // 09:00: lead time 1 h
  s.NewBuild();                       // build 2 at 09:00
  s.clock.Advance(minutes(60));
  CHECK(s.Deploy(2, true) == "failed");  // 10:00: a failure
  s.clock.Advance(minutes(30));
  CHECK(s.Deploy(2) == "succeeded");  // 10:30: lead time 1.5 h, rolled back below
  s.clock.Advance(minutes(60));
  CHECK(s.Deploy(1) == "succeeded");  // 11:30: the rollback restores (1.5 h after 10:00)

  auto r = s.admin.Get("/api/v1/insights?application=shop&days=30");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto j = Body(r);
  CHECK(j["stage"] == "Live");
  CHECK(j["days"] == 30);
  CHECK(j["deployments"] == 4);
  CHECK(j["failures"] == 2);
  CHECK(j["change_failure_rate"].get<double>() == doctest::Approx(0.5));
  CHECK(j["deployment_frequency_per_week"].get<double>() == doctest::Approx(3 * 7.0 / 30));
  CHECK(j["lead_time_p50_seconds"] == 3600);
  CHECK(j["time_to_restore_p50_seconds"] == 5400);
  REQUIRE(j["series"].size() == 30);
  const auto& today = j["series"].back();
  CHECK(today["deployments"] == 4);
  CHECK(today["rollbacks"] == 1);
  CHECK(j["series"].front()["deployments"] == 0);
  CHECK(j["series"].front()["lead_time_p50_seconds"].is_null());

  // A year's window is weekly.
  auto year = Body(s.admin.Get("/api/v1/insights?application=shop&stage=Live&days=365"));
  CHECK(year["bucket_seconds"] == 7 * 86400);
  CHECK(year["deployments"] == 4);
}

TEST_CASE("insights: an application without deployments has no rates, only zeros") {
  InsightsServer s;
  auto j = Body(s.admin.Get("/api/v1/insights?application=shop&days=90"));
  CHECK(j["deployments"] == 0);
  CHECK(j["change_failure_rate"].is_null());
  CHECK(j["lead_time_p50_seconds"].is_null());
  CHECK(j["series"].size() == 13);
}

TEST_CASE("insights: bad queries are refused naming what is wrong") {
  InsightsServer s;
  struct Case {
    std::string query;
    int status;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", 400, "missing query parameter 'application'"},
           {"application=shop&days=0", 400, "'days' must be between 1 and 3650"},
           {"application=shop&days=abc", 400, "days"},
           {"application=shop&stage=Nope", 404, "has no stage 'Nope'"},
           {"application=nope", 404, "nope"},
           {"application=shop&colour=red", 400, "unknown query parameter 'colour'"},
           {"application=shop&days=30&days=90", 400, "'days' is given more than once"},
       }) {
    CAPTURE(c.query);
    auto r = s.admin.Get("/api/v1/insights?" + c.query);
    CHECK(r.status == c.status);
    CHECK(Body(r)["error"]["message"].get<std::string>().find(c.message) != std::string::npos);
  }
  CHECK(s.server.Anonymous().Get("/api/v1/insights?application=shop").status == 401);
}

TEST_CASE(
    "dashboard: every application's stages with the build there, its last deployment and hold") {
  InsightsServer s;
  s.NewBuild();
  s.NewBuild();
  CHECK(s.Deploy(1) == "succeeded");
  CHECK(s.Deploy(2, true) == "failed");
  // A scheduled deployment cancelled before it started is not the stage's last.
  auto scheduled = s.admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                                R"({"stage":"Live","at":"2026-03-03T08:00:00Z"})");
  REQUIRE_MESSAGE(scheduled.status == 202, scheduled.body);
  REQUIRE(s.admin
              .Post("/api/v1/deployments/" + std::to_string(Body(scheduled)["id"].get<int64_t>()) +
                        "/cancel",
                    "{}")
              .status == 200);
  const std::string viewer = s.server.CreateUser("vera", "viewer");
  auto r = s.server.As(viewer).Get("/api/v1/dashboard");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto j = Body(r);
  CHECK(j["environments"] == json::array({"Live"}));
  REQUIRE(j["applications"].size() == 1);
  const auto& stage = j["applications"][0]["stages"][0];
  CHECK(stage["stage"] == "Live");
  CHECK(stage["last_deployment"]["status"] == "failed");
  CHECK(stage["last_deployment"]["build"] == 2);
  CHECK(stage["hold"].is_null());
  CHECK(stage["drift"].is_null());
  CHECK(s.admin.Get("/api/v1/dashboard?x=1").status == 400);
}

TEST_CASE("clear-hold keeps the reason given in its audit entry; other fields are refused") {
  InsightsServer s;
  s.NewBuild();
  s.NewBuild();
  CHECK(s.Deploy(1) == "succeeded");
  CHECK(s.Deploy(2) == "succeeded");
  CHECK(s.Deploy(1) == "succeeded");  // a rollback: Live holds automatic promotion
  const std::string path = "/api/v1/applications/shop/stages/Live/clear-hold";
  auto bad = s.admin.Post(path, R"({"reason":"x"})");
  CHECK(bad.status == 400);
  CHECK(Body(bad)["error"]["message"].get<std::string>().find("'reason'") != std::string::npos);
  auto r = s.admin.Post(path, R"({"comment":"build 1 verified"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto audit = Body(s.admin.Get("/api/v1/audit?action=stage.clear-hold"));
  REQUIRE(audit["items"].size() == 1);
  CHECK(audit["items"][0]["summary"] == "build 1 verified");
}

}  // namespace reprise::testing
