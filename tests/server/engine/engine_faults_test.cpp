// Faults around a running deployment, on a real server with real agents: an
// agent lost mid-deployment, a rejected manual step, store writes that fail,
// and previews of builds with several artifacts.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {

namespace {

// A server, one Production stage over targets `web-a` and `web-b`, each on
// its own reprise-agent (`box-a`, `box-b`) unless `local` (then both on the
// in-process local agent).
class TwoTargets {
 public:
  TwoTargets(const std::string& plan, bool remote_agents, const Clock* clock = nullptr) {
    ServerOptions options;
    options.local_agent = true;
    options.local_agent_root = scratch_.path();
    options.clock = clock;
    server_ = std::make_unique<TestServer>(options);
    auto admin = Admin();
    REQUIRE(admin.Put("/api/v1/environments/Production", "{}").status == 200);
    for (const char* target : {"web-a", "web-b"}) {
      std::string agent = remote_agents ? std::string("box-") + target[4] : "local";
      json t = {{"environment", "Production"},
                {"agent", agent},
                {"path", (scratch_.path() / agent / target).string()}};
      REQUIRE(admin.Put(std::string("/api/v1/targets/") + target, t.dump()).status == 200);
    }
    PutSpec(plan);
    REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
    if (remote_agents)
      for (const char* agent : {"box-a", "box-b"}) StartAgent(agent);
  }

  void PutSpec(const std::string& plan) {
    std::string spec =
        "pipeline:\n  - {stage: Production, environment: Production, targets: [web-a, web-b], "
        "plan: p}\nplans:\n  p: |\n" +
        plan;
    auto put = Admin().Put("/api/v1/applications/shop", spec, "application/yaml");
    REQUIRE_MESSAGE(put.status == 200, put.body);
  }

  // Creates the next build with these artifacts (name -> files).
  int AddBuild(const std::map<std::string, std::map<std::string, std::string>>& artifacts) {
    auto admin = Admin();
    auto created = admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}");
    REQUIRE(created.status == 201);
    int build = Body(created)["number"].get<int>();
    for (const auto& [name, files] : artifacts) {
      auto up = admin.Put(PipelineFixture::BuildPath(build) + "/artifacts/" + name,
                          TarGzOf(scratch_.path(), files), "application/gzip");
      REQUIRE_MESSAGE(up.status == 201, up.body);
    }
    return build;
  }

  void StartAgent(const std::string& name) {
    auto token = Admin().Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": true})");
    REQUIRE(token.status == 201);
    fs::path root = scratch_.path() / name;
    fs::create_directories(root);
    agents_[name] = std::make_unique<AgentProcess>(
        std::vector<std::string>{"--server", "127.0.0.1:" + std::to_string(server_->agent_port()),
                                 "--name", name, "--root", root.string(), "--enroll-token",
                                 Body(token)["token"].get<std::string>(), "--plain", "--no-fsync",
                                 "--heartbeat-ms", "200", "--state",
                                 (scratch_.path() / (name + "-state")).string()},
        scratch_.path() / (name + ".log"));
    REQUIRE_MESSAGE(WaitUntil([&] { return AgentOnline(name); }), agents_[name]->Log());
  }
  // SIGKILL, as a machine going away would.
  void KillAgent(const std::string& name) { agents_.at(name)->Kill(); }

  // Kills agent `name` while deployment `id` is paused at a manual step,
  // waits until the server sees it offline, then continues the plan.
  void LoseAgentThenContinue(int64_t id, const std::string& name) {
    KillAgent(name);
    REQUIRE(WaitUntil([&] { return !AgentOnline(name); }));
    auto r = Admin().Post("/api/v1/deployments/" + std::to_string(id) + "/continue", "{}");
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }

  bool AgentOnline(const std::string& name) {
    auto agents = Body(Admin().Get("/api/v1/agents"));
    for (const auto& a : agents["items"])
      if (a["name"] == name) return a["online"] == true;
    return false;
  }

  int64_t Deploy(int build) {
    auto r =
        Admin().Post(PipelineFixture::BuildPath(build) + "/deploy", R"({"stage":"Production"})");
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return Body(r)["id"].get<int64_t>();
  }
  json Get(int64_t id) { return Body(Admin().Get("/api/v1/deployments/" + std::to_string(id))); }
  json CurrentOf(const std::string& target) {
    auto admin = Admin();
    return TargetCurrent(admin, target);
  }
  static bool IsFinal(const json& d) {
    std::string s = d.value("status", "");
    return s == "succeeded" || s == "failed" || s == "cancelled" || s == "interrupted";
  }
  json WaitFinal(int64_t id) {
    json d;
    REQUIRE_MESSAGE(WaitUntil([&] { return IsFinal(d = Get(id)); }), d.dump());
    return d;
  }
  json WaitManual(int64_t id) {
    json d;
    REQUIRE_MESSAGE(WaitUntil([&] { return (d = Get(id)).contains("manual"); }), d.dump());
    return d;
  }
  bool LogHas(int64_t id, const std::string& text) {
    auto log = Body(Admin().Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
    for (const auto& l : log["lines"])
      if (l["text"].get<std::string>().find(text) != std::string::npos) return true;
    return false;
  }
  static json TargetOf(const json& d, const std::string& target) {
    for (const auto& t : d["targets"])
      if (t["target"] == target) return t;
    return json();
  }

  HttpClient Admin() const { return server_->Admin(); }
  TestServer& server() { return *server_; }
  const fs::path& scratch() const { return scratch_.path(); }

 private:
  TempDir scratch_;
  std::unique_ptr<TestServer> server_;
  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
};

const std::map<std::string, std::string> kDocs = {{"guide.md", "# guide\n"}};

}  // namespace

TEST_CASE("an agent lost mid-deployment fails its own target; the other keeps its own status") {
  TwoTargets f(
      "    - deploy-artifact: { artifact: web }\n"
      "    - manual: { message: \"check both\" }\n"
      "    - exec: { command: \"echo checked > checked.txt\", cwd: current }\n",
      /*remote_agents=*/true);
  int build = f.AddBuild({{"web", TreeOf(1)}});
  int64_t id = f.Deploy(build);
  f.WaitManual(id);
  // box-b goes away while the plan is paused; web-a's exec then runs, web-b's
  // cannot.
  f.LoseAgentThenContinue(id, "box-b");
  json d = f.WaitFinal(id);
  CHECK(d["status"] == "failed");
  json a = TwoTargets::TargetOf(d, "web-a");
  json b = TwoTargets::TargetOf(d, "web-b");
  CHECK_MESSAGE(a["status"] == "succeeded", d.dump());
  CHECK(a.value("message", "").find("web-b") == std::string::npos);
  CHECK_MESSAGE(b["status"] == "failed", d.dump());
  CHECK(b.value("message", "").find("web-b") != std::string::npos);
  CHECK(fs::exists(f.scratch() / "box-a" / "web-a" / "current" / "checked.txt"));
  CHECK(f.CurrentOf("web-a")["build"] == build);
}

TEST_CASE("a target not reached before another's agent was lost is not shown as succeeded") {
  TwoTargets f(
      "    - manual: { message: \"go\" }\n"
      "    - on-targets: { targets: [web-b], steps: [ { exec: { command: \"true\" } } ] }\n"
      "    - exec: { command: \"echo late > late.txt\" }\n",
      /*remote_agents=*/true);
  int64_t id = f.Deploy(f.AddBuild({{"web", TreeOf(1)}}));
  f.WaitManual(id);
  f.LoseAgentThenContinue(id, "box-b");
  json d = f.WaitFinal(id);
  CHECK(d["status"] == "failed");
  json a = TwoTargets::TargetOf(d, "web-a");
  CHECK_MESSAGE(a["status"] == "skipped", d.dump());
  // Its own words: what did not run there, not web-b's error.
  CHECK(a.value("message", "").find("not finished") != std::string::npos);
  CHECK(TwoTargets::TargetOf(d, "web-b")["status"] == "failed");
}

TEST_CASE("rejecting a paused manual step fails the deployment; finally still runs, audited") {
  TwoTargets f(
      "    - try:\n"
      "        steps:\n"
      "          - manual: { message: \"ship it?\", role: release-manager }\n"
      "          - write-file: { path: \"shipped.txt\", content: \"yes\" }\n"
      "        catch:\n"
      "          - log: \"caught: $Error\"\n"
      "        finally:\n"
      "          - write-file: { path: \"cleanup.txt\", content: \"done\" }\n",
      /*remote_agents=*/false);
  std::string dan = f.server().CreateUser("dan", "deployer");
  std::string rita = f.server().CreateUser("rita", "release-manager");
  int64_t id = f.Deploy(f.AddBuild({{"web", TreeOf(1)}}));
  f.WaitManual(id);
  std::string path = "/api/v1/deployments/" + std::to_string(id) + "/reject";
  // The step's role decides, as for continue.
  CHECK(f.server().As(dan).Post(path, R"({"comment":"no"})").status == 403);
  auto rejected = f.server().As(rita).Post(path, R"({"comment":"not tonight"})");
  REQUIRE_MESSAGE(rejected.status == 200, rejected.body);
  json d = f.WaitFinal(id);
  CHECK(d["status"] == "failed");
  CHECK(d.value("error", "").find("rejected by rita: not tonight") != std::string::npos);
  // A rejection is not a failure a catch turns into success; finally runs.
  CHECK_FALSE(f.LogHas(id, "caught:"));
  for (const char* target : {"web-a", "web-b"}) {
    CHECK(ReadFile(f.scratch() / "local" / target / "cleanup.txt") == "done");
    CHECK_FALSE(fs::exists(f.scratch() / "local" / target / "shipped.txt"));
  }
  auto audit = Body(f.Admin().Get("/api/v1/audit?action=deployment.reject"));
  REQUIRE(audit["items"].size() == 1);
  CHECK(audit["items"][0]["actor"] == "rita");
  CHECK(audit["items"][0]["summary"].get<std::string>().find("not tonight") != std::string::npos);
  // Answered once: nothing is paused any more.
  CHECK(f.server().As(rita).Post(path, "{}").status == 409);
}

// Makes the server's database refuse writes of what the targets hold, as a
// failing disk would, until Allow().
class RefuseTargetStates {
 public:
  explicit RefuseTargetStates(TestServer& server)
      : db_((server.data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE) {
    for (const char* op : {"INSERT", "UPDATE"})
      db_.exec(std::string("CREATE TRIGGER refuse_state_") + op + " BEFORE " + op +
               " ON target_states BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END");
  }
  void Allow() {
    for (const char* op : {"INSERT", "UPDATE"})
      db_.exec(std::string("DROP TRIGGER refuse_state_") + op);
  }

 private:
  SQLite::Database db_;
};

// A deployment of a write-file step to both targets on a fake clock, started
// while the server's database refuses to record what the targets hold.
struct RefusedResult {
  FakeClock clock{*ParseRfc3339("2026-06-01T12:00:00Z")};
  TwoTargets targets{"    - write-file: { path: \"hello.txt\", content: \"hi\" }\n",
                     /*remote_agents=*/false, &clock};
  int build = targets.AddBuild({{"web", TreeOf(1)}});
  RefuseTargetStates refuse{targets.server()};
  int64_t id = targets.Deploy(build);

  // Advances the clock until the deployment is final; the deployment.
  json WaitFinal() {
    json d;
    REQUIRE(WaitUntil([&] {
      clock.Advance(std::chrono::seconds(1));
      return TwoTargets::IsFinal(d = targets.Get(id));
    }));
    return d;
  }
};

TEST_CASE_FIXTURE(RefusedResult,
                  "a refused write of the deployment's result is retried and lands") {
  // The first refusal is said in the log; the deployment waits to retry.
  REQUIRE(WaitUntil([&] { return targets.LogHas(id, "could not record the result yet"); }));
  CHECK(targets.LogHas(id, "the disk refused the write"));
  CHECK(targets.Get(id)["status"] == "running");
  refuse.Allow();
  json d = WaitFinal();
  CHECK_MESSAGE(d["status"] == "succeeded", d.dump());
  CHECK(targets.CurrentOf("web-a")["build"] == build);
  CHECK(targets.CurrentOf("web-b")["build"] == build);
}

TEST_CASE_FIXTURE(RefusedResult,
                  "a result that cannot be written fails the deployment instead of vanishing") {
  json d = WaitFinal();
  CHECK(d["status"] == "failed");
  CHECK_MESSAGE(d["error"].get<std::string>().find("could not be recorded") != std::string::npos,
                d.dump());
  CHECK(d["error"].get<std::string>().find("the disk refused the write") != std::string::npos);
  // Each target's own result is kept.
  CHECK(TwoTargets::TargetOf(d, "web-a")["status"] == "succeeded");
  CHECK(targets.LogHas(id, "could not record the result yet"));
  CHECK(targets.CurrentOf("web-a").is_null());
}

// Makes the server's database refuse to place a stage's hold, as a failing
// disk would, until Allow().
class RefuseHolds {
 public:
  explicit RefuseHolds(TestServer& server)
      : db_((server.data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE) {
    db_.exec(
        "CREATE TRIGGER refuse_hold BEFORE UPDATE OF hold_json ON applications "
        "BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END");
  }
  void Allow() { db_.exec("DROP TRIGGER refuse_hold"); }

 private:
  SQLite::Database db_;
};

TEST_CASE("a rollback's success and the hold it places are written together") {
  FakeClock clock(*ParseRfc3339("2026-06-01T12:00:00Z"));
  TwoTargets f("    - write-file: { path: \"hello.txt\", content: \"hi\" }\n",
               /*remote_agents=*/false, &clock);
  int first = f.AddBuild({{"web", TreeOf(1)}});
  int second = f.AddBuild({{"web", TreeOf(2)}});
  for (int build : {first, second}) {
    int64_t id = f.Deploy(build);
    json d;
    REQUIRE(WaitUntil([&] {
      clock.Advance(std::chrono::seconds(1));
      return TwoTargets::IsFinal(d = f.Get(id));
    }));
    REQUIRE(d["status"] == "succeeded");
  }
  RefuseHolds refuse(f.server());
  int64_t id = f.Deploy(first);
  // The result is not recorded without its hold: it waits to retry.
  REQUIRE(WaitUntil([&] { return f.LogHas(id, "could not record the result yet"); }));
  CHECK(f.Get(id)["status"] == "running");
  refuse.Allow();
  json d;
  REQUIRE(WaitUntil([&] {
    clock.Advance(std::chrono::seconds(1));
    return TwoTargets::IsFinal(d = f.Get(id));
  }));
  CHECK_MESSAGE(d["status"] == "succeeded", d.dump());
  CHECK(d["kind"] == "rollback");
  json app = Body(f.Admin().Get("/api/v1/applications/shop")), hold;
  for (const auto& stage : app["stages"])
    if (stage["stage"] == "Production") hold = stage["hold"];
  REQUIRE_FALSE(hold.is_null());
  CHECK(hold["deployment_id"] == id);
}

TEST_CASE("a rejected manual step inside retry is not asked again") {
  TwoTargets f(
      "    - retry:\n"
      "        count: 2\n"
      "        steps:\n"
      "          - manual: { message: \"try again?\" }\n",
      /*remote_agents=*/false);
  int64_t id = f.Deploy(f.AddBuild({{"web", TreeOf(1)}}));
  f.WaitManual(id);
  auto rejected = f.Admin().Post("/api/v1/deployments/" + std::to_string(id) + "/reject",
                                 R"({"comment":"no"})");
  REQUIRE_MESSAGE(rejected.status == 200, rejected.body);
  json d = f.WaitFinal(id);
  CHECK(d["status"] == "failed");
  CHECK(d["error"].get<std::string>().find("rejected by admin: no") != std::string::npos);
  CHECK_FALSE(f.LogHas(id, "retrying"));
}

TEST_CASE("an automatic promotion the store refuses is said in the log, not dropped silently") {
  PipelineFixture f;
  SQLite::Database db((f.server().data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE);
  db.exec(
      "CREATE TRIGGER refuse_auto BEFORE INSERT ON deployments WHEN NEW.automatic = 1 "
      "BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END");
  auto admin = f.Admin();
  auto first = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(first["id"])["status"] == "succeeded");
  int64_t id = first["id"].get<int64_t>();
  REQUIRE(WaitUntil([&] {
    auto log = Body(admin.Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
    for (const auto& l : log["lines"])
      if (l["text"].get<std::string>().find("could not promote automatically to Testing") !=
          std::string::npos)
        return l["text"].get<std::string>().find("the disk refused the write") != std::string::npos;
    return false;
  }));
  CHECK(f.Newest(1, "Testing").is_null());
}

TEST_CASE("the preview compares only the artifacts the plan deploys, per destination") {
  TwoTargets f("    - deploy-artifact: { artifact: web, to: site }\n", /*remote_agents=*/false);
  int first = f.AddBuild({{"web", TreeOf(1)}, {"docs", kDocs}});
  int second = f.AddBuild({{"web", TreeOf(2)}});
  REQUIRE(f.WaitFinal(f.Deploy(first))["status"] == "succeeded");
  REQUIRE(f.WaitFinal(f.Deploy(second))["status"] == "succeeded");
  auto r =
      f.Admin().Post(PipelineFixture::BuildPath(first) + "/preview", R"({"stage":"Production"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json p = Body(r);
  CHECK(p["kind"] == "rollback");
  REQUIRE(p["targets"].size() == 2);
  for (const auto& t : p["targets"]) {
    CHECK_MESSAGE(t["added"] == json::array({"site/legacy.txt"}), p.dump());
    CHECK(t["deleted"] == json::array({"site/api/status.json"}));
    CHECK(t["overwritten"] == json::array({"site/index.html"}));
    CHECK(t["unchanged"] == 1);  // site/static/site.css
  }
}

TEST_CASE("retention says when its audit entry could not be written") {
  TwoTargets f("    - log: \"nothing to deploy\"\n", /*remote_agents=*/false);
  f.AddBuild({{"web", TreeOf(1)}});
  SQLite::Database db((f.server().data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE);
  db.exec(
      "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action = "
      "'artifact.retention' BEGIN SELECT RAISE(ABORT, 'the audit log refused the entry'); END");
  auto r = f.Admin().Post(
      "/api/v1/admin/retention",
      R"({"keep_builds": 0, "keep_days": 0, "keep_rollback_candidates": 0, "dry_run": false})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json report = Body(r);
  REQUIRE(report["deleted"].size() == 1);
  REQUIRE_MESSAGE(report["warnings"].size() == 1, report.dump());
  CHECK(report["warnings"][0].get<std::string>().find("the audit log refused the entry") !=
        std::string::npos);
  CHECK(report["warnings"][0].get<std::string>().find("shop/1.0/1") != std::string::npos);
}

}  // namespace reprise::testing
