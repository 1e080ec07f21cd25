// Several real servers on one store with real agents: a deployment requested
// on one server runs on the other's agent; kill -9 of the server running a
// deployment is taken over by the other; scheduled deployments fire once.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>

#include "tests/server/multi/multi_support.h"

namespace reprise::testing {

namespace {

// Lines of `path` (0 when it does not exist).
int LineCount(const fs::path& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

std::string StatusOf(HttpClient& admin, const std::string& id) {
  return Body(admin.Get("/api/v1/deployments/" + id))["status"].get<std::string>();
}

bool LogHas(HttpClient& admin, const std::string& id, const std::string& text) {
  auto log = Body(admin.Get("/api/v1/deployments/" + id + "/log"));
  for (const auto& l : log["lines"])
    if (l["text"].get<std::string>().find(text) != std::string::npos) return true;
  return false;
}

// Production on target prod-web of agent `agent` at `root`/prod-web; the
// plan deploys artifact web, then runs `then` (plan lines) if given.
void PutShop(HttpClient& admin, const fs::path& scratch, const std::string& agent,
             const fs::path& root, const std::string& then, int builds) {
  REQUIRE(admin.Put("/api/v1/environments/Production", "{}").status == 200);
  json t = {
      {"environment", "Production"}, {"agent", agent}, {"path", (root / "prod-web").string()}};
  REQUIRE(admin.Put("/api/v1/targets/prod-web", t.dump()).status == 200);
  auto put = admin.Put("/api/v1/applications/shop",
                       "pipeline:\n  - {stage: Production, environment: Production, targets: "
                       "[prod-web], plan: p}\nplans:\n  p: |\n    - deploy-artifact: { artifact: "
                       "web }\n" +
                           then,
                       "application/yaml");
  REQUIRE_MESSAGE(put.status == 200, put.body);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  for (int build = 1; build <= builds; ++build) {
    std::string path = "/api/v1/applications/shop/releases/1.0/builds";
    REQUIRE(admin.Post(path, "{}").status == 201);
    auto up = admin.Put(path + "/" + std::to_string(build) + "/artifacts/web",
                        TarGzOf(scratch, TreeOf(build)), "application/gzip");
    REQUIRE_MESSAGE(up.status == 201, up.body);
  }
}

std::string Deploy(HttpClient& admin, int build, const std::string& extra = "") {
  auto r = admin.Post(
      "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(build) + "/deploy",
      R"({"stage":"Production")" + extra + "}");
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return std::to_string(Body(r)["id"].get<int64_t>());
}

// Two servers, alpha and beta, and application shop with build 1 on
// target prod-web of agent "box" (not started) under `root`.
struct TwoServersOneShop {
  Cluster cluster{{"alpha", "beta"}, 1500};
  fs::path root = cluster.scratch() / "box";
  HttpClient alpha = cluster[0].Admin();
  HttpClient beta = cluster[1].Admin();
  TwoServersOneShop() {
    fs::create_directories(root);
    PutShop(alpha, cluster.scratch(), "box", root, "", 1);
  }
};

}  // namespace

TEST_CASE_FIXTURE(
    TwoServersOneShop,
    "a deployment requested on one server runs on the agent connected only to the other") {
  auto agent = cluster.StartAgent("box", root, {1});  // beta only
  REQUIRE_FALSE(cluster.Online(0, "box"));

  std::string id = Deploy(alpha, 1);
  REQUIRE_MESSAGE(WaitUntil([&] { return StatusOf(alpha, id) == "succeeded"; }),
                  StatusOf(alpha, id), "\n", Body(alpha.Get("/api/v1/deployments/" + id + "/log")),
                  cluster[0].process->Log(), cluster[1].process->Log());
  CHECK(fs::read_symlink(root / "prod-web" / "current").string().find("1.0-1") !=
        std::string::npos);
  CHECK(TargetCurrent(beta, "prod-web")["build"] == 1);
  CHECK(TargetCurrent(alpha, "prod-web")["build"] == 1);
  // Its lease was given up when it ended.
  auto store = cluster.OpenStore();
  auto lease = store->GetDeploymentLease(std::stoll(id));
  REQUIRE(lease.ok());
  CHECK(lease->owner == "");
}

TEST_CASE("kill -9 of the server running a deployment: the other takes over, nothing runs twice") {
  Cluster cluster({"alpha", "beta"}, 1500);
  fs::path root = cluster.scratch() / "box";
  fs::create_directories(root);
  const fs::path runs = cluster.scratch() / "runs";
  const fs::path again = cluster.scratch() / "again";
  auto alpha = cluster[0].Admin();
  // Each run of the step is counted; only the first takes long.
  PutShop(alpha, cluster.scratch(), "box", root,
          "    - exec: { command: \"echo run >> " + runs.string() + "; [ -f " + again.string() +
              " ] || { touch " + again.string() + "; sleep 60; }\", timeout: 120 }\n",
          2);
  auto agent = cluster.StartAgent("box", root, {0, 1});
  { std::ofstream(again.string()); }  // the first deployment is quick
  std::string first = Deploy(alpha, 1);
  REQUIRE(WaitUntil([&] { return StatusOf(alpha, first) == "succeeded"; }));
  REQUIRE(LineCount(runs) == 1);
  fs::remove(again);  // the second takes long

  std::string id = Deploy(alpha, 2);
  REQUIRE(WaitUntil([&] { return LineCount(runs) == 2 && LogHas(alpha, id, "sleep 60"); }));
  auto store = cluster.OpenStore();
  auto lease = store->GetDeploymentLease(std::stoll(id));
  REQUIRE(lease.ok());
  size_t owner = lease->owner == "alpha" ? 0 : 1;
  REQUIRE_MESSAGE(cluster[owner].id == lease->owner, "owner '", lease->owner, "'");
  size_t other = 1 - owner;
  auto survivor = cluster[other].Admin();
  // The switch to build 2 happened before the exec step.
  REQUIRE(fs::read_symlink(root / "prod-web" / "current").string().find("1.0-2") !=
          std::string::npos);
  cluster[owner].process->KillHard();

  // Taken over within 30 s (the lease is 1.5 s), by the survivor.
  REQUIRE_MESSAGE(WaitUntil([&] { return StatusOf(survivor, id) == "interrupted"; }),
                  cluster[other].process->Log());
  CHECK(WaitUntil([&] {
    return LogHas(survivor, id,
                  "server " + cluster[owner].id + " stopped while this deployment was running");
  }));
  auto d = Body(survivor.Get("/api/v1/deployments/" + id));
  CHECK(d["targets"][0]["status"] == "interrupted");
  // Nothing lost: what the dead server logged before it died is there.
  CHECK(LogHas(survivor, id, "sleep 60"));
  // The target's real state is read back from its agent (connected to the
  // survivor): build 2, switched before the server died.
  CHECK(WaitUntil([&] { return TargetCurrent(survivor, "prod-web")["build"] == 2; }));
  CHECK(
      WaitUntil([&] { return LogHas(survivor, id, "the agent reports 1.0 build 2 as current"); }));
  auto audit = Body(survivor.Get("/api/v1/audit?action=deployment.interrupt"));
  bool audited = false;
  for (const auto& e : audit["items"])
    audited = audited || e["summary"].get<std::string>().find(
                             "taken over by server " + cluster[other].id) != std::string::npos;
  CHECK(audited);

  // Nothing runs twice: the next deployment is the only one to run the step
  // again (the interrupted one never resumes).
  std::string next = Deploy(survivor, 2);
  REQUIRE_MESSAGE(WaitUntil([&] { return StatusOf(survivor, next) == "succeeded"; }),
                  Body(survivor.Get("/api/v1/deployments/" + next + "/log")));
  CHECK(LineCount(runs) == 3);
  CHECK(StatusOf(survivor, id) == "interrupted");
}

TEST_CASE("100 scheduled deployments across two servers fire exactly once each") {
  Cluster cluster({"alpha", "beta"}, 1500);
  auto alpha = cluster[0].Admin();
  auto beta = cluster[1].Admin();
  // A plan that needs no agent: either server may run each one.
  REQUIRE(alpha.Put("/api/v1/environments/Production", "{}").status == 200);
  json t = {{"environment", "Production"},
            {"agent", "box"},
            {"path", (cluster.scratch() / "box" / "prod-web").string()}};
  REQUIRE(alpha.Put("/api/v1/targets/prod-web", t.dump()).status == 200);
  REQUIRE(alpha
              .Put("/api/v1/applications/shop",
                   "pipeline:\n  - {stage: Production, environment: Production, targets: "
                   "[prod-web], plan: p}\nplans:\n  p: |\n    - log: \"fired\"\n",
                   "application/yaml")
              .status == 200);
  REQUIRE(alpha.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(alpha.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  // Due a few seconds from now, requested alternately on both servers.
  std::string at = FormatRfc3339Utc(std::chrono::system_clock::now() + std::chrono::seconds(4));
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    HttpClient& via = i % 2 ? beta : alpha;
    ids.push_back(Deploy(via, 1, R"(,"at":")" + at + "\""));
  }
  for (const auto& id : ids)
    REQUIRE_MESSAGE(
        WaitUntil([&] { return StatusOf(alpha, id) == "succeeded"; }, std::chrono::seconds(60)), id,
        " is ", StatusOf(alpha, id));
  for (const auto& id : ids) {
    auto lines = Body(alpha.Get("/api/v1/deployments/" + id + "/log"))["lines"];
    int fired = 0, ran = 0, logged = 0;
    for (const auto& l : lines) {
      std::string text = l["text"].get<std::string>();
      fired += text.find("scheduled time") != std::string::npos;
      ran += text.rfind("running ", 0) == 0;
      logged += text == "fired";
    }
    CHECK_MESSAGE(fired == 1, id);
    CHECK_MESSAGE(ran == 1, id);
    CHECK_MESSAGE(logged == 1, id);
  }
}

TEST_CASE_FIXTURE(TwoServersOneShop,
                  "an agent approved on one server may take work from the other") {
  auto token = alpha.Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": false})");
  REQUIRE(token.status / 100 == 2);
  AgentProcess agent(
      {"--server", cluster[0].Agents() + "," + cluster[1].Agents(), "--name", "box", "--root",
       root.string(), "--enroll-token", Body(token)["token"].get<std::string>(), "--plain",
       "--no-fsync", "--heartbeat-ms", "200", "--state", (cluster.scratch() / "state").string()},
      cluster.scratch() / "agent.log");
  auto pending_on = [&](HttpClient& admin) {
    auto agents = Body(admin.Get("/api/v1/agents"));
    for (const auto& a : agents["items"])
      if (a["name"] == "box") return a["status"] == "pending";
    return false;
  };
  REQUIRE_MESSAGE(WaitUntil([&] { return pending_on(alpha) && cluster.Online(1, "box"); }),
                  agent.Log());
  REQUIRE(alpha.Post("/api/v1/agents/box/approve", "{}").status / 100 == 2);
  cluster[0].process->KillHard();  // only beta can run it now
  std::string id = Deploy(beta, 1);
  CHECK_MESSAGE(WaitUntil([&] { return StatusOf(beta, id) == "succeeded"; }), StatusOf(beta, id),
                Body(beta.Get("/api/v1/deployments/" + id + "/log")));
}

TEST_CASE("the agent's server list refuses a bad entry, naming it") {
  TempDir tmp;
  int n = 0;
  for (auto [list, named] : {std::pair{"127.0.0.1:1,beta", "--server entry 2"},
                             {"127.0.0.1:1,,127.0.0.1:2", "--server entry 2 is empty"},
                             {"127.0.0.1:1,127.0.0.1:1", "'127.0.0.1:1' is listed twice"},
                             {"a:0,b:1", "--server entry 1"}}) {
    AgentProcess agent(
        {"--server", list, "--name", "box", "--root", (tmp.path() / "r").string(), "--plain"},
        tmp.path() / ("agent" + std::to_string(++n) + ".log"));
    CHECK(agent.Wait() == 2);
    CHECK_MESSAGE(agent.Log().find(named) != std::string::npos, agent.Log());
  }
}

}  // namespace reprise::testing
