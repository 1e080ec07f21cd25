// A server with a three-stage pipeline whose targets live on one real
// reprise-agent process on loopback, and helpers to drive deployments
// through the HTTP API.
#pragma once

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "agents/deployer/archive.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "tests/server/hub/hub_test_support.h"
#include "tests/support/test_server.h"
#include "tests/support/seed.h"

namespace reprise::testing {

using nlohmann::json;


// Build N's tree: index.html names the build; build 2 adds and drops a file.
inline std::map<std::string, std::string> TreeOf(int build) {
  std::map<std::string, std::string> files = {
      {"index.html", "<h1>build " + std::to_string(build) + "</h1>\n"},
      {"static/site.css", "body{}\n"},
  };
  if (build == 1) files["legacy.txt"] = "old\n";
  if (build >= 2) files["api/status.json"] = "{\"build\": " + std::to_string(build) + "}\n";
  return files;
}

inline std::string TarGzOf(const fs::path& scratch,
                           const std::map<std::string, std::string>& files) {
  fs::path tree = scratch / ("tree-" + RandomHex(4));
  for (const auto& [rel, content] : files) {
    fs::create_directories((tree / rel).parent_path());
    REQUIRE(WriteFileAtomic(tree / rel, content).ok());
  }
  fs::path out = scratch / ("a-" + RandomHex(4) + ".tar.gz");
  REQUIRE(CreateTarGz(tree, out).ok());
  return ReadFile(out);
}

// Puts application "shop" with one stage `stage` in `environment` on
// `targets`, whose plan deploys artifact "web"; then release 1.0 and builds
// 1..N, build n carrying TarGzOf(TreeOf(n)) as "web" (N = `builds`).
inline void PutOneStageShop(HttpClient& admin, const fs::path& scratch, const std::string& stage,
                            const std::string& environment, const std::vector<std::string>& targets,
                            int builds) {
  std::string list;
  for (const auto& t : targets) list += (list.empty() ? "" : ", ") + t;
  auto put = admin.Put("/api/v1/applications/shop",
                       "pipeline:\n  - stage: " + stage + "\n    environment: " + environment +
                           "\n    targets: [" + list +
                           "]\n    plan: deploy\nplans:\n  deploy: |\n"
                           "    - deploy-artifact: { artifact: web }\n",
                       "application/yaml");
  REQUIRE_MESSAGE(put.status == 200, put.body);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  for (int build = 1; build <= builds; ++build) {
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
    auto up = admin.Put(
        "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(build) + "/artifacts/web",
        TarGzOf(scratch, TreeOf(build)), "application/gzip");
    REQUIRE_MESSAGE(up.status == 201, up.body);
  }
}

struct PipelineOptions {
  std::string integration_plan = "deploy";
  std::string testing_plan = "deploy";
  std::string production_gates = "{ approvals: { count: 1, role: release-manager } }";
  bool start_agent = true;
  ServerOptions server;
};

// Starts reprise-agent "box" on `root` against `server` with a fresh
// pre-approved enrollment token (its identity kept in `scratch`/agent-state,
// its output in `scratch`/agent.log) and waits until it is online.
inline std::unique_ptr<AgentProcess> StartBoxAgent(TestServer& server, const fs::path& root,
                                                   const fs::path& scratch) {
  auto admin = server.Admin();
  auto token = admin.Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": true})");
  REQUIRE_MESSAGE(token.status / 100 == 2, token.body);
  auto agent = std::make_unique<AgentProcess>(
      std::vector<std::string>{
          "--server", "127.0.0.1:" + std::to_string(server.agent_port()), "--name", "box", "--root",
          root.string(), "--enroll-token", Body(token)["token"].get<std::string>(), "--plain",
          "--no-fsync", "--heartbeat-ms", "200", "--state", (scratch / "agent-state").string()},
      scratch / "agent.log");
  REQUIRE_MESSAGE(WaitUntil([&] {
                    auto agents = Body(admin.Get("/api/v1/agents"));
                    for (const auto& a : agents["items"])
                      if (a["name"] == "box" && a["online"] == true) return true;
                    return false;
                  }),
                  "the agent did not come online: ", agent->Log());
  return agent;
}

class PipelineFixture {
 public:
  explicit PipelineFixture(PipelineOptions options = {}) : options_(options) {
    server_ = std::make_unique<TestServer>(options.server);
    auto admin = Admin();
    root_ = scratch_.path() / "box";
    fs::create_directories(root_);
    for (const char* env : {"Integration", "Testing", "Production"})
      REQUIRE(admin
                  .Put(std::string("/api/v1/environments/") + env,
                       R"({"variables":{"Greeting":"hello"}})")
                  .status == 200);
    for (auto [target, env] : {std::pair{"int-web", "Integration"},
                               {"test-web", "Testing"},
                               {"prod-web", "Production"}}) {
      json t = {{"environment", env}, {"agent", "box"}, {"path", (root_ / target).string()}};
      REQUIRE(admin.Put(std::string("/api/v1/targets/") + target, t.dump()).status == 200);
    }
    std::string spec = R"(
variables:
  Port: "8080"
pipeline:
  - stage: Integration
    environment: Integration
    targets: [int-web]
    plan: )" + options.integration_plan +
                       R"(
    auto_promote: true
  - stage: Testing
    environment: Testing
    targets: [test-web]
    plan: )" + options.testing_plan +
                       R"(
  - stage: Production
    environment: Production
    targets: [prod-web]
    plan: deploy
    protected: true
    gates: )" + options.production_gates +
                       R"(
plans:
  deploy: |
    - deploy-artifact: { artifact: web }
    - if:
        condition: "!$IsRollback"
        then:
          - exec: { command: "echo $BuildNumber >> $TargetPath/migrations.log", cwd: current }
  quick: |
    - log: "quick deploy of build $BuildNumber"
  slow: |
    - exec: { command: "sleep 30", timeout: 60 }
  pause-on-rollback: |
    - if:
        condition: "$IsRollback"
        then:
          - manual: { message: "check before rolling back" }
    - deploy-artifact: { artifact: web }
)";
    auto put = admin.Put("/api/v1/applications/shop", spec, "application/yaml");
    REQUIRE_MESSAGE(put.status == 200, put.body);
    REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
    for (int build = 1; build <= 2; ++build) {
      REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
      auto up = admin.Put(BuildPath(build) + "/artifacts/web",
                          TarGzOf(scratch_.path(), TreeOf(build)), "application/gzip");
      REQUIRE_MESSAGE(up.status == 201, up.body);
    }
    release_manager_token_ = server_->CreateUser("rita", "release-manager");
    second_manager_token_ = server_->CreateUser("rob", "release-manager");
    deployer_token_ = server_->CreateUser("dan", "deployer");
    viewer_token_ = server_->CreateUser("vic", "viewer");
    if (options.start_agent) StartAgent();
  }

  void StartAgent() {
    agent_.reset();
    agent_ = StartBoxAgent(*server_, root_, scratch_.path());
  }

  // Kills the agent process (SIGKILL), as a machine going away would.
  void StopAgent() { agent_.reset(); }

  static std::string BuildPath(int build) {
    return "/api/v1/applications/shop/releases/1.0/builds/" + std::to_string(build);
  }

  HttpClient Admin() const { return server_->Admin(); }
  HttpClient ReleaseManager() const { return server_->As(release_manager_token_); }
  HttpClient SecondManager() const { return server_->As(second_manager_token_); }
  HttpClient Deployer() const { return server_->As(deployer_token_); }
  HttpClient Viewer() const { return server_->As(viewer_token_); }
  TestServer& server() { return *server_; }
  const fs::path& root() const { return root_; }
  const fs::path& scratch() const { return scratch_.path(); }

  // Requests a deployment and returns its JSON (REQUIREs 202).
  json Deploy(HttpClient& as, int build, const json& request) {
    auto r = as.Post(BuildPath(build) + "/deploy", request.dump());
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return Body(r);
  }

  json Get(int64_t id) { return Body(Admin().Get("/api/v1/deployments/" + std::to_string(id))); }

  // Waits until the deployment reaches a final status and returns it.
  json WaitFinal(int64_t id, std::chrono::seconds limit = std::chrono::seconds(60)) {
    json d;
    bool done = WaitUntil(
        [&] {
          d = Get(id);
          std::string s = d.value("status", "");
          return s == "succeeded" || s == "failed" || s == "cancelled" || s == "interrupted" ||
                 s == "expired";
        },
        limit);
    REQUIRE_MESSAGE(done, "deployment ", id, " did not finish: ", d.dump());
    return d;
  }

  // The deployment of (build, stage) that is newest.
  json Newest(int build, const std::string& stage) {
    auto list = Body(Admin().Get("/api/v1/deployments?application=shop&stage=" + stage));
    for (const auto& d : list["items"])
      if (d["build"] == build) return d;
    return json();
  }

  // Deploys `build` to Integration as `as` and waits for it to succeed and
  // for the automatic promotion to Testing to be requested; returns that.
  json DeployUntilTestingRequested(HttpClient& as, int build) {
    auto first = Deploy(as, build, {{"stage", "Integration"}});
    REQUIRE(WaitFinal(first["id"])["status"] == "succeeded");
    json testing;
    REQUIRE(WaitUntil([&] {
      testing = Newest(build, "Testing");
      return !testing.is_null();
    }));
    return testing;
  }

  // Deploys `build` to Integration as `as` and waits for it and for the
  // automatic promotion to Testing to succeed.
  void DeployToTesting(HttpClient& as, int build) {
    REQUIRE(WaitFinal(DeployUntilTestingRequested(as, build)["id"])["status"] == "succeeded");
  }

  // Promotes `build` Integration -> (auto) Testing -> Production (approved by rob).
  void PromoteThroughAll(int build) {
    auto admin = Admin();
    DeployToTesting(admin, build);
    auto rita = ReleaseManager();
    auto prod = Deploy(rita, build, {{"stage", "Production"}});
    CHECK(prod["status"] == "waiting");
    auto rob = SecondManager();
    auto approved =
        rob.Post("/api/v1/deployments/" + std::to_string(prod["id"].get<int64_t>()) + "/approve",
                 R"({"comment":"looks good"})");
    REQUIRE_MESSAGE(approved.status == 200, approved.body);
    REQUIRE(WaitFinal(prod["id"])["status"] == "succeeded");
  }

 private:
  PipelineOptions options_;
  TempDir scratch_;
  fs::path root_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<AgentProcess> agent_;
  std::string release_manager_token_, second_manager_token_, deployer_token_, viewer_token_;
};

// sha256 of every regular file under dir, by relative path.
inline std::map<std::string, std::string> HashTree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it)
    if (it->is_regular_file())
      out[fs::relative(it->path(), dir).string()] = *Sha256File(it->path());
  return out;
}

}  // namespace reprise::testing
