// The local agent's targets are confined to its root: DATA/targets by
// default, --local-agent-root DIR when given. Through the real server: an
// in-process ServerApp and a reprise-server process.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/server/hub/hub_test_support.h"
#include "tests/support/seed.h"
#include "tests/support/server_process.h"
#include "tests/support/test_server.h"

namespace reprise::testing {
namespace {

using nlohmann::json;


// An application `app` with builds 1 and 2 whose stage S (one target at
// `path`) writes a file.
void Seed(HttpClient& admin, const fs::path& path) {
  SeedLocalStage(admin, path, "    - write-file: { path: hello.txt, content: \"hello\" }\n",
                 {.builds = 2});
}

struct Finished {
  std::string status;
  std::string log;  // every line's text
};

Finished Deploy(HttpClient& admin, int build = 1) {
  auto r = admin.Post(
      "/api/v1/applications/app/releases/1.0/builds/" + std::to_string(build) + "/deploy",
      R"({"stage":"S"})");
  REQUIRE_MESSAGE(r.status == 202, r.body);
  std::string id = std::to_string(Body(r)["id"].get<int64_t>());
  Finished out;
  REQUIRE(WaitUntil([&] {
    out.status = Body(admin.Get("/api/v1/deployments/" + id))["status"].get<std::string>();
    return out.status != "queued" && out.status != "running" && out.status != "waiting" &&
           out.status != "scheduled";
  }));
  json log = Body(admin.Get("/api/v1/deployments/" + id + "/log"));
  for (const auto& l : log["lines"]) out.log += l["text"].get<std::string>() + "\n";
  return out;
}

TEST_CASE("the local agent's targets must lie under DATA/targets by default") {
  ServerOptions o;
  o.local_agent = true;
  SUBCASE("inside") {
    TestServer server(o);
    auto admin = server.Admin();
    fs::path inside = server.data_dir() / "targets" / "web";
    Seed(admin, inside);
    auto d = Deploy(admin);
    CHECK_MESSAGE(d.status == "succeeded", d.log);
    CHECK(ReadFile(inside / "hello.txt") == "hello");
  }
  SUBCASE("outside") {
    TestServer server(o);
    auto admin = server.Admin();
    TempDir elsewhere;
    fs::path outside = elsewhere.path() / "web";
    Seed(admin, outside);
    auto d = Deploy(admin);
    CHECK(d.status == "failed");
    CAPTURE(d.log);
    CHECK(d.log.find("target web: target path '" + outside.string() + "' is outside") !=
          std::string::npos);
    CHECK(d.log.find("--local-agent-root") != std::string::npos);
    CHECK_FALSE(fs::exists(outside));
  }
  SUBCASE("into the server's own data through a symlink") {
    TestServer server(o);
    auto admin = server.Admin();
    fs::create_directories(server.data_dir() / "targets");
    fs::create_directory_symlink(server.data_dir(), server.data_dir() / "targets" / "sneaky");
    Seed(admin, server.data_dir() / "targets" / "sneaky");
    auto d = Deploy(admin);
    CHECK(d.status == "failed");
    CHECK_FALSE(fs::exists(server.data_dir() / "hello.txt"));
  }
}

TEST_CASE("reprise-server --local-agent-root DIR moves the local agent's root") {
  TempDir tmp;
  fs::path data = tmp.path() / "data";
  fs::path root = tmp.path() / "srv";
  const std::vector<std::string> base =
      ServerArgs(data, {"--agent-port", "0", "--agent-plain", "--local-agent"});
  {
    auto args = base;
    args.push_back("--local-agent-root");
    ServerProcess missing(args, tmp.path() / "usage.log", ServerProcess::Until::kSpawned);
    CHECK(missing.Wait() == 2);
    CHECK(missing.Log().find("--local-agent-root needs a value") != std::string::npos);
  }
  auto args = base;
  args.insert(args.end(), {"--local-agent-root", root.string()});
  ServerProcess server(args, tmp.path() / "server.log");
  HttpClient admin = server.Admin();

  Seed(admin, root / "web");
  auto d = Deploy(admin);
  CHECK_MESSAGE(d.status == "succeeded", d.log);
  CHECK(ReadFile(root / "web" / "hello.txt") == "hello");

  // DATA/targets is not the root any more.
  json t = {{"environment", "Integration"},
            {"agent", "local"},
            {"path", (data / "targets" / "web").string()}};
  REQUIRE(admin.Put("/api/v1/targets/web", t.dump()).status == 200);
  d = Deploy(admin, 2);
  CHECK(d.status == "failed");
  CHECK(d.log.find("target web: target path '" + (data / "targets" / "web").string() +
                   "' is outside this agent's root " + fs::canonical(root).string()) !=
        std::string::npos);
}

}  // namespace
}  // namespace reprise::testing
