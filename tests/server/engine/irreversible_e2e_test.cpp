// Irreversible steps end to end, with a real reprise-agent on loopback:
// release 1.0's plan has none; release 1.1's plan runs two irreversible
// steps with undo steps. Rolling back from 1.1 to 1.0 lists them in the
// preview, needs an acknowledgement, and runs 1.1's undo steps, newest
// first, before the switch; a failing undo fails the rollback with 1.1 live.
#include <doctest/doctest.h>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {
namespace {

constexpr const char* kSpecHead = R"(
pipeline:
  - stage: Live
    environment: Live
    targets: [web]
    plan: deploy
plans:
  deploy: |
    - deploy-artifact: { artifact: web }
)";

// Release 1.1's steps: each irreversible step appends to db.log; its undo
// appends what `current` held when it ran (proving it ran before the switch)
// and $ReleaseNumber (proving it ran with 1.1's context).
constexpr const char* kIrreversibleSteps =
    R"(    - exec: { command: "echo up-a >> $TargetPath/db.log", cwd: current }
      irreversible: true
      note: "schema v2: drops column legacy"
      undo:
        - exec: { command: "echo down-a $ReleaseNumber $$(cat VERSION) >> $TargetPath/db.log", cwd: current }
    - exec: { command: "echo up-b >> $TargetPath/db.log" }
      irreversible: true
      note: "search index rebuilt"
      undo:
        - exec: { command: "echo down-b $$(cat VERSION) >> $TargetPath/db.log; test ! -f $TargetPath/fail-undo", cwd: current }
)";

class IrreversibleFixture {
 public:
  IrreversibleFixture() {
    auto admin = server_.Admin();
    root_ = scratch_.path() / "box";
    fs::create_directories(root_);
    REQUIRE(admin.Put("/api/v1/environments/Live", R"({"variables":{}})").status == 200);
    json t = {{"environment", "Live"}, {"agent", "box"}, {"path", (root_ / "web").string()}};
    REQUIRE(admin.Put("/api/v1/targets/web", t.dump()).status == 200);
    AddRelease("1.0", kSpecHead);
    AddRelease("1.1", std::string(kSpecHead) + kIrreversibleSteps);
    agent_ = StartBoxAgent(server_, root_, scratch_.path());
  }

  static std::string BuildPath(const std::string& release) {
    return "/api/v1/applications/shop/releases/" + release + "/builds/1";
  }

  HttpResult Request(const std::string& release, const json& body) {
    return server_.Admin().Post(BuildPath(release) + "/deploy", body.dump());
  }

  json DeployAndWait(const std::string& release, const json& body) {
    auto r = Request(release, body);
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return WaitFinal(Body(r)["id"].get<int64_t>());
  }

  json WaitFinal(int64_t id) {
    json d;
    bool done = WaitUntil(
        [&] {
          d = Body(server_.Admin().Get("/api/v1/deployments/" + std::to_string(id)));
          std::string s = d.value("status", "");
          return s == "succeeded" || s == "failed" || s == "cancelled" || s == "interrupted";
        },
        std::chrono::seconds(60));
    REQUIRE_MESSAGE(done, "deployment ", id, " did not finish: ", d.dump());
    return d;
  }

  std::string LogText(int64_t id) {
    std::string out;
    auto log = Body(server_.Admin().Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
    for (const auto& line : log["lines"]) out += line.value("text", "") + "\n";
    return out;
  }

  json Preview(const std::string& release) {
    auto r = server_.Admin().Post(BuildPath(release) + "/preview", R"({"stage":"Live"})");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return Body(r);
  }

  fs::path target() const { return root_ / "web"; }
  TestServer& server() { return server_; }
  std::string Live() const { return ReadFile(target() / "current" / "VERSION"); }

 private:
  void AddRelease(const std::string& release, const std::string& spec) {
    auto admin = server_.Admin();
    auto put = admin.Put("/api/v1/applications/shop", spec, "application/yaml");
    REQUIRE_MESSAGE(put.status == 200, put.body);
    json rel = {{"number", release}};
    REQUIRE(admin.Post("/api/v1/applications/shop/releases", rel.dump()).status == 201);
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/" + release + "/builds", "{}").status ==
            201);
    auto up = admin.Put(BuildPath(release) + "/artifacts/web",
                        TarGzOf(scratch_.path(), {{"VERSION", release}}), "application/gzip");
    REQUIRE_MESSAGE(up.status == 201, up.body);
  }

  TempDir scratch_;
  TestServer server_;
  fs::path root_;
  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace

TEST_CASE(
    "a rollback across irreversible steps: preview, acknowledgement, undo before the switch") {
  IrreversibleFixture f;
  REQUIRE(f.DeployAndWait("1.0", {{"stage", "Live"}})["status"] == "succeeded");
  CHECK(f.Preview("1.0")["irreversible"].empty());
  json forward = f.DeployAndWait("1.1", {{"stage", "Live"}});
  REQUIRE(forward["status"] == "succeeded");
  CHECK(f.Live() == "1.1");
  CHECK(ReadFile(f.target() / "db.log") == "up-a\nup-b\n");

  // The preview of the rollback lists both steps, oldest first.
  json p = f.Preview("1.0");
  CHECK(p["kind"] == "rollback");
  REQUIRE_MESSAGE(p["irreversible"].size() == 2, f.LogText(forward["id"].get<int64_t>()));
  json a = p["irreversible"][0];
  CHECK(a["release"] == "1.1");
  CHECK(a["build"] == 1);
  CHECK(a["step_id"] == "2");
  CHECK(a["target"] == "web");
  CHECK(a["note"] == "schema v2: drops column legacy");
  CHECK(a["has_undo"] == true);
  CHECK(a["outcome"] == "succeeded");
  CHECK(a["step"].get<std::string>().find("echo up-a") != std::string::npos);
  CHECK(a["position"] == "plan deploy:2:3");
  CHECK_FALSE(a["ran_at"].get<std::string>().empty());
  CHECK(p["irreversible"][1]["step_id"] == "3");
  CHECK(p["irreversible"][1]["note"] == "search index rebuilt");
  // Re-deploying 1.1 itself crosses nothing: its own steps are its plan's.
  CHECK(f.Preview("1.1")["irreversible"].empty());

  // Without the acknowledgement: 400 naming the steps; nothing is created.
  for (const json& body :
       {json{{"stage", "Live"}}, json{{"stage", "Live"}, {"acknowledge_irreversible", false}}}) {
    auto refused = f.Request("1.0", body);
    CHECK(refused.status == 400);
    std::string message = Body(refused)["error"]["message"];
    CHECK(message.find("2 irreversible step(s)") != std::string::npos);
    CHECK(message.find("1.1 build 1, step 2") != std::string::npos);
    CHECK(message.find("schema v2: drops column legacy") != std::string::npos);
    CHECK(message.find("search index rebuilt") != std::string::npos);
    CHECK(message.find("\"acknowledge_irreversible\": true") != std::string::npos);
  }
  CHECK(f.Request("1.0", {{"stage", "Live"}, {"acknowledge_irreversible", "yes"}}).status == 400);

  // A failing undo step fails the rollback before anything is switched.
  REQUIRE(WriteFileAtomic(f.target() / "fail-undo", "").ok());
  json failed = f.DeployAndWait("1.0", {{"stage", "Live"}, {"acknowledge_irreversible", true}});
  CHECK(failed["status"] == "failed");
  CHECK(failed["error"].get<std::string>().find("the undo of step 3") != std::string::npos);
  CHECK(failed["error"].get<std::string>().find("nothing was switched") != std::string::npos);
  CHECK(f.Live() == "1.1");
  CHECK(ReadFile(f.target() / "db.log") == "up-a\nup-b\ndown-b 1.1\n");  // step 2's undo never ran
  json again = f.Preview("1.0");
  CHECK(again["kind"] == "rollback");  // 1.1 is still what the stage runs
  CHECK(again["irreversible"].size() == 2);

  // With it: the undo steps run from 1.1's plan, newest first, then 1.0 goes live.
  fs::remove(f.target() / "fail-undo");
  json done = f.DeployAndWait("1.0", {{"stage", "Live"}, {"acknowledge_irreversible", true}});
  REQUIRE_MESSAGE(done["status"] == "succeeded", done.dump());
  CHECK(f.Live() == "1.0");
  CHECK(ReadFile(f.target() / "db.log") == "up-a\nup-b\ndown-b 1.1\ndown-b 1.1\ndown-a 1.1 1.1\n");
  std::string log = f.LogText(done["id"].get<int64_t>());
  CHECK(log.find("irreversible step this deployment cannot undo: 1.1 build 1, step 2") !=
        std::string::npos);
  CHECK(log.find("undo of step 3 (") != std::string::npos);
  CHECK(log.find(") from build 1: ") != std::string::npos);
  CHECK(log.find("undo of step 3") < log.find("undo of step 2"));
  // 1.0 is current again: nothing is left to acknowledge.
  CHECK(f.Preview("1.0")["irreversible"].empty());
}

TEST_CASE("a rollback record across irreversible steps lists them and executes only acknowledged") {
  IrreversibleFixture f;
  REQUIRE(f.DeployAndWait("1.0", {{"stage", "Live"}})["status"] == "succeeded");
  json forward = f.DeployAndWait("1.1", {{"stage", "Live"}});
  REQUIRE(forward["status"] == "succeeded");
  auto admin = f.server().Admin();
  auto rob = f.server().As(f.server().CreateUser("rob", "release-manager"));

  auto created = admin.Post(
      "/api/v1/deployments/" + std::to_string(forward["id"].get<int64_t>()) + "/rollback-records",
      "{}");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  const std::string path =
      "/api/v1/rollback-records/" + std::to_string(Body(created)["id"].get<int64_t>());
  json record = Body(admin.Get(path));
  REQUIRE(record["irreversible"].size() == 2);
  CHECK(record["irreversible"][0]["note"] == "schema v2: drops column legacy");
  CHECK(record["irreversible"][1]["note"] == "search index rebuilt");
  CHECK(record["warnings"].dump().find("not undone by this record") != std::string::npos);

  REQUIRE(admin.Post(path + "/submit", "{}").status == 200);
  auto approved = rob.Post(path + "/approve", "{}");
  REQUIRE_MESSAGE(approved.status == 200, approved.body);
  for (const std::string& body :
       {std::string("{}"), std::string(R"({"acknowledge_irreversible": false})")}) {
    auto refused = rob.Post(path + "/execute", body);
    CHECK(refused.status == 400);
    std::string message = Body(refused)["error"]["message"];
    CHECK(message.find("2 irreversible step(s)") != std::string::npos);
    CHECK(message.find("search index rebuilt") != std::string::npos);
  }
  CHECK(rob.Post(path + "/execute", R"({"acknowledge_irreversible": "yes"})").status == 400);
  CHECK(Body(admin.Get(path))["status"] == "approved");  // nothing was requested

  auto executed = rob.Post(path + "/execute", R"({"acknowledge_irreversible": true})");
  REQUIRE_MESSAGE(executed.status == 200, executed.body);
  json done;
  REQUIRE_MESSAGE(WaitUntil([&] {
                    done = Body(admin.Get(path));
                    return done["status"] == "executed" || done["status"] == "failed";
                  }),
                  done.dump());
  CHECK(done["status"] == "executed");
  CHECK(f.Live() == "1.0");  // VERSION, the one component, reverted to 1.0's
  // A record does not undo: the steps' undo never ran.
  CHECK(ReadFile(f.target() / "db.log") == "up-a\nup-b\n");
}

}  // namespace reprise::testing
