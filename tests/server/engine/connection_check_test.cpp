// Test Connection before touching anything: a real server, real
// reprise-agent processes on loopback. A stage whose targets live on two
// agents, "near" and "far"; the tests start and stop them.
#include <doctest/doctest.h>

#include "server/engine/manifest_summary.h"
#include "tests/server/engine/engine_test_support.h"
#include "tests/support/spawn.h"

namespace reprise::testing {

namespace {

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class TwoAgentFixture {
 public:
  // `far_root_under_a_file`: web-far's root is below a regular file, so it
  // can never be created.
  explicit TwoAgentFixture(bool far_root_under_a_file = false)
      : clock_(FromUnixMillis(1'800'000'000'000)) {
    ServerOptions options;
    options.clock = &clock_;
    server_ = std::make_unique<TestServer>(options);
    auto admin = Admin();
    for (const char* agent : {"near", "far"}) fs::create_directories(RootOf(agent));
    std::string far_path = (RootOf("far") / "web").string();
    if (far_root_under_a_file) {
      REQUIRE(WriteFileAtomic(RootOf("far") / "blocker", "a file, not a directory\n").ok());
      far_path = (RootOf("far") / "blocker" / "web").string();
    }
    REQUIRE(admin.Put("/api/v1/environments/Integration", R"({"variables":{}})").status == 200);
    for (auto [target, agent, path] :
         {std::tuple{"near-web", "near", (RootOf("near") / "web").string()},
          std::tuple{"web-far", "far", far_path}}) {
      json t = {{"environment", "Integration"}, {"agent", agent}, {"path", path}};
      REQUIRE(admin.Put(std::string("/api/v1/targets/") + target, t.dump()).status == 200);
    }
    PutOneStageShop(admin, scratch_.path(), "Integration", "Integration", {"near-web", "web-far"},
                    1);
    viewer_ = server_->CreateUser("vic", "viewer");
    deployer_ = server_->CreateUser("dan", "deployer");
  }

  fs::path RootOf(const std::string& agent) const { return scratch_.path() / ("box-" + agent); }

  void StartAgent(const std::string& name) {
    auto token = Admin().Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": true})");
    REQUIRE_MESSAGE(token.status / 100 == 2, token.body);
    agents_[name] = std::make_unique<AgentProcess>(
        std::vector<std::string>{"--server", "127.0.0.1:" + std::to_string(server_->agent_port()),
                                 "--name", name, "--root", RootOf(name).string(), "--enroll-token",
                                 Body(token)["token"].get<std::string>(), "--plain", "--no-fsync",
                                 "--heartbeat-ms", "200", "--state",
                                 (scratch_.path() / ("state-" + name)).string()},
        scratch_.path() / (name + ".log"));
    REQUIRE_MESSAGE(WaitUntil([&] {
                      const json agents = Body(Admin().Get("/api/v1/agents"));
                      for (const auto& a : agents["items"])
                        if (a["name"] == name && a["online"] == true) return true;
                      return false;
                    }),
                    "agent ", name, " did not come online: ", agents_[name]->Log());
  }

  HttpClient Admin() const { return server_->Admin(); }
  // Requests build 1 on Integration; returns the deployment's id.
  int64_t RequestDeploy() {
    auto req =
        Admin().Post(PipelineFixture::BuildPath(1) + "/deploy", R"({"stage":"Integration"})");
    REQUIRE_MESSAGE(req.status == 202, req.body);
    return Body(req)["id"];
  }
  HttpClient Viewer() const { return server_->As(viewer_); }
  HttpClient Deployer() const { return server_->As(deployer_); }
  TestServer& server() { return *server_; }
  FakeClock& clock() { return clock_; }
  const fs::path& scratch() const { return scratch_.path(); }

  json Get(int64_t id) { return Body(Admin().Get("/api/v1/deployments/" + std::to_string(id))); }
  std::string LogText(int64_t id) {
    std::string out;
    auto r = Body(Admin().Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
    for (const auto& l : r["lines"]) out += l["text"].get<std::string>() + "\n";
    return out;
  }
  json WaitStatus(int64_t id, const std::string& status) {
    json d;
    bool reached = WaitUntil([&] {
      d = Get(id);
      return d.value("status", "") == status;
    });
    REQUIRE_MESSAGE(reached, "deployment ", id, " is not ", status, ": ", d.dump(), "\n",
                    LogText(id));
    return d;
  }

 private:
  FakeClock clock_;
  TempDir scratch_;
  std::unique_ptr<TestServer> server_;
  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
  std::string viewer_, deployer_;
};

constexpr const char* kTestConnection =
    "/api/v1/applications/shop/stages/Integration/test-connection";

json TargetIn(const json& report, const std::string& target) {
  for (const auto& t : report["targets"])
    if (t["target"] == target) return t;
  return json();
}

// Nothing was deployed under a target root: no `current`, no release.
bool Untouched(const fs::path& root) {
  std::error_code ec;
  if (fs::exists(root / "current", ec)) return false;
  const fs::path releases = root / ".reprise" / "releases";
  return !fs::exists(releases, ec) || fs::is_empty(releases, ec);
}

// The `reprise` CLI as a process; its exit code and standard output.
std::pair<int, std::string> RunCli(const fs::path& scratch, int port, const std::string& token,
                                   std::vector<std::string> args) {
  const char* bin_dir = std::getenv("REPRISE_BIN_DIR");
  REQUIRE(bin_dir != nullptr);
  fs::path out = scratch / ("cli-" + RandomHex(4));
  std::vector<std::string> argv = {std::string(bin_dir) + "/reprise", "--server",
                                   "http://127.0.0.1:" + std::to_string(port), "--token", token};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = Spawn({.argv = argv, .out = out});
  REQUIRE(pid > 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out)};
}

}  // namespace

TEST_CASE("test-connection names the target whose agent is not connected") {
  TwoAgentFixture f;
  f.StartAgent("near");
  auto dan = f.Deployer();
  auto r = dan.Post(kTestConnection, "");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  json report = Body(r);
  CHECK(report["ok"] == false);
  REQUIRE(report["targets"].size() == 2);
  json near = TargetIn(report, "near-web");
  CHECK(near["agent"] == "near");
  CHECK(near["connected"] == true);
  CHECK(near["approved"] == true);
  CHECK_FALSE(near["version"].get<std::string>().empty());
  CHECK(near["latency_ms"].get<int64_t>() >= 0);
  CHECK(near["writable"] == true);
  CHECK(near["free_bytes"].get<uint64_t>() > 0);
  CHECK(near["needed_bytes"] == 0);
  CHECK(near["problem"] == "");
  json far = TargetIn(report, "web-far");
  CHECK(far["agent"] == "far");
  CHECK(far["connected"] == false);
  CHECK(far["writable"] == false);
  CHECK(far["problem"] == "agent 'far' of target 'web-far' is not connected");
  // The probe leaves nothing behind in the root it wrote to.
  for (const auto& e : fs::directory_iterator(f.RootOf("near") / "web"))
    CHECK_MESSAGE(e.path().filename().string().rfind(".reprise-probe", 0) != 0, e.path());

  SUBCASE("against a build: the room its artifacts need") {
    auto with_build = Body(dan.Post(kTestConnection, R"({"release":"1.0","build":1})"));
    json n = TargetIn(with_build, "near-web");
    CHECK(n["needed_bytes"].get<uint64_t>() > 0);
    CHECK(n["needed_bytes"].get<uint64_t>() < n["free_bytes"].get<uint64_t>());
  }
  SUBCASE("bad requests are refused with what was wrong") {
    auto viewer = f.Viewer();
    CHECK(viewer.Post(kTestConnection, "").status == 403);
    auto unknown = dan.Post("/api/v1/applications/shop/stages/Nowhere/test-connection", "");
    CHECK(unknown.status == 404);
    CHECK(Has(unknown.body, "no stage 'Nowhere'"));
    auto half = dan.Post(kTestConnection, R"({"release":"1.0"})");
    CHECK(half.status == 400);
    CHECK(Has(half.body, "'release' and 'build'"));
    auto extra = dan.Post(kTestConnection, R"({"colour":"red"})");
    CHECK(extra.status == 400);
    CHECK(Has(extra.body, "colour"));
    CHECK(dan.Post(kTestConnection, R"({"release":"1.0","build":9})").status == 404);
  }
  SUBCASE("the CLI: exit 1 and the problem named, then 0 once every agent is there") {
    auto [code, out] = RunCli(f.scratch(), f.server().port(), kAdminToken,
                              {"test-connection", "shop", "Integration"});
    CHECK_MESSAGE(code == 1, out);
    CHECK(Has(out, "near-web"));
    CHECK(Has(out, "agent 'far' of target 'web-far' is not connected"));
    f.StartAgent("far");
    auto [ok_code, ok_out] = RunCli(f.scratch(), f.server().port(), kAdminToken,
                                    {"test-connection", "shop", "Integration"});
    CHECK_MESSAGE(ok_code == 0, ok_out);
    CHECK(Has(ok_out, "ok: every target of shop Integration can be deployed to"));
    auto [gone, gone_out] =
        RunCli(f.scratch(), f.server().port(), kAdminToken, {"test-connection", "shop", "Nowhere"});
    CHECK_MESSAGE(gone == 2, gone_out);
    CHECK(Has(gone_out, "no stage 'Nowhere'"));
  }
}

TEST_CASE("a deployment waits for a disconnected agent with gate `agents`, then runs") {
  TwoAgentFixture f;
  f.StartAgent("near");
  const int64_t id = f.RequestDeploy();
  json d = f.WaitStatus(id, "waiting");
  bool gate_seen = false;
  for (const auto& g : d["gates"])
    if (g["gate"] == "agents") {
      gate_seen = true;
      CHECK(g["holds"] == false);
      CHECK(g["detail"] == "agent 'far' of target 'web-far' is not connected");
    }
  CHECK(gate_seen);
  REQUIRE(WaitUntil([&] { return Has(f.LogText(id), "waiting for gates: agents: agent 'far'"); }));
  // Re-checked on the clock's next tick: still waiting, nothing deployed.
  f.clock().Advance(std::chrono::minutes(10));
  REQUIRE(WaitUntil([&] { return f.Get(id)["status"] == "waiting"; }));
  CHECK(Untouched(f.RootOf("near") / "web"));

  f.StartAgent("far");
  f.WaitStatus(id, "succeeded");
  for (const char* agent : {"near", "far"})
    CHECK(ReadFile(f.RootOf(agent) / "web" / "current" / "index.html") == TreeOf(1)["index.html"]);
}

TEST_CASE("a deployment waiting for an agent expires after its expiry window") {
  TwoAgentFixture f;
  f.StartAgent("near");
  const int64_t id = f.RequestDeploy();
  f.WaitStatus(id, "waiting");
  f.clock().Advance(std::chrono::hours(2));  // past the default hour
  json d = f.WaitStatus(id, "expired");
  CHECK(Has(d["error"].get<std::string>(), "agent 'far' of target 'web-far' is not connected"));
  CHECK(Untouched(f.RootOf("near") / "web"));
}

TEST_CASE("a target root that cannot be written fails the deployment before any target changes") {
  // web-far's root lies under a regular file: no directory can be made there
  // (not even by root, whom permissions would not stop).
  TwoAgentFixture f(/*far_root_under_a_file=*/true);
  f.StartAgent("near");
  f.StartAgent("far");
  auto report = Body(f.Deployer().Post(kTestConnection, ""));
  CHECK(report["ok"] == false);
  json far = TargetIn(report, "web-far");
  CHECK(far["connected"] == true);
  CHECK(far["writable"] == false);
  CHECK(
      Has(far["problem"].get<std::string>(), "target 'web-far' cannot be written by agent 'far'"));
  CHECK(TargetIn(report, "near-web")["problem"] == "");

  const int64_t id = f.RequestDeploy();
  json d = f.WaitStatus(id, "failed");
  CHECK(Has(d["error"].get<std::string>(), "nothing was changed"));
  CHECK(Has(d["error"].get<std::string>(), "target 'web-far' cannot be written by agent 'far'"));
  CHECK(Has(f.LogText(id), "is not a directory"));
  CHECK(d["started_at"].is_null());  // no step ran
  CHECK(Untouched(f.RootOf("near") / "web"));
  CHECK(fs::is_regular_file(f.RootOf("far") / "blocker"));
}

TEST_CASE("a manifest's hash and size are read once per artifact, never mixed up") {
  const std::string sha(64, 'a');
  const std::string one = R"({"manifest_hash":"h1","total_bytes":10,"entries":[]})";
  ManifestSummary first = ManifestSummaryOf(sha, one);
  CHECK(first.manifest_hash == "h1");
  CHECK(first.total_bytes == 10);
  CHECK(ManifestSummaryOf(sha, one).manifest_hash == "h1");
  // Another artifact, and another manifest text for the same bytes: their own.
  CHECK(ManifestSummaryOf(std::string(64, 'b'), R"({"manifest_hash":"h2","total_bytes":7})")
            .manifest_hash == "h2");
  CHECK(ManifestSummaryOf(sha, R"({"manifest_hash":"h3", "total_bytes":10})").manifest_hash ==
        "h3");
  // Unreadable or without the fields: nothing claimed.
  ManifestSummary bad = ManifestSummaryOf(std::string(64, 'c'), "not json");
  CHECK(bad.manifest_hash.empty());
  CHECK(bad.total_bytes == 0);
  CHECK(ManifestSummaryOf("", R"({"manifest_hash":"h4"})").manifest_hash == "h4");
  // Read where they stand at the top: after the entries too, never from inside one.
  ManifestSummary late = ManifestSummaryOf(
      "", R"({"entries":[{"manifest_hash":"inner","total_bytes":1}],"manifest_hash":"h5",)"
          R"("total_bytes":12})");
  CHECK(late.manifest_hash == "h5");
  CHECK(late.total_bytes == 12);
  CHECK(ManifestSummaryOf("", R"([{"manifest_hash":"h6","total_bytes":1}])").manifest_hash.empty());
}

}  // namespace reprise::testing
