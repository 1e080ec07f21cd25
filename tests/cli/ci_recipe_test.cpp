// The curl-only CI recipe of docs/ci.md (scripts/ci/reprise-deploy.sh) run
// as a CI job would run it, against a real server on port 0 with the demo
// application and the local agent: a deployment that succeeds exits 0, one
// that fails exits 1. The script shown in docs/ci.md is the tested one.
#include "tests/cli/cli_support.h"

namespace reprise::testing {

namespace {

fs::path SourceDir() {
  const char* dir = std::getenv("REPRISE_SOURCE_DIR");
  REQUIRE_MESSAGE(dir != nullptr, "REPRISE_SOURCE_DIR is not set");
  return dir;
}

RunResult RunRecipe(CliFixture& f, const std::vector<std::string>& args, const std::string& token) {
  std::vector<std::string> argv = {"/bin/sh",
                                   (SourceDir() / "scripts/ci/reprise-deploy.sh").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env;
  for (std::string_view v : InheritedEnvironment())
    if (!v.starts_with("REPRISE_")) env.emplace_back(v);
  env.push_back("REPRISE_SERVER=http://127.0.0.1:" + std::to_string(f.server().port()));
  env.push_back("REPRISE_TOKEN=" + token);
  env.push_back("REPRISE_POLL=0.2");
  env.push_back("REPRISE_TIMEOUT=300");
  const std::string id = RandomHex(4);
  const fs::path out = f.scratch() / ("recipe-out-" + id), err = f.scratch() / ("recipe-err-" + id);
  pid_t pid = Spawn({.argv = argv, .env = env, .out = out, .err = err});
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);  // the script bounds its own wait
  RunResult r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ReadFile(out),
              ReadFile(err)};
  INFO("stdout: ", r.out, " stderr: ", r.err);
  return r;
}

}  // namespace

TEST_CASE("docs/ci.md shows scripts/ci/reprise-deploy.sh verbatim") {
  const std::string docs = ReadFile(SourceDir() / "docs/ci.md");
  const std::string script = ReadFile(SourceDir() / "scripts/ci/reprise-deploy.sh");
  REQUIRE(!script.empty());
  const std::string open = "<!-- scripts/ci/reprise-deploy.sh -->\n```sh\n";
  size_t start = docs.find(open);
  REQUIRE(start != std::string::npos);
  start += open.size();
  size_t end = docs.find("```\n", start);
  REQUIRE(end != std::string::npos);
  CHECK(docs.substr(start, end - start) == script);
}

TEST_CASE("the curl-only recipe deploys a new build to Integration, and fails when it fails") {
  CliFixture f;
  const std::string deployer = f.server().CreateUser("ci", "deployer");
  fs::path good = f.Archive({{"index.html", "<h1>shop 5.0.0</h1>\n"}});
  auto ok = RunRecipe(f, {"shop", "5.0.0", "web", good.string(), "Integration"}, deployer);
  CHECK(ok.code == 0);
  CHECK(Contains(ok.out, "reprise-deploy: shop 5.0.0 build 1\n"));
  CHECK(Contains(ok.out, "Deploying shop 5.0.0 build 1 to Integration\n"));
  CHECK(Contains(ok.out, " succeeded\n"));
  CHECK(ReadFile(f.Current("int-web") / "index.html") == "<h1>shop 5.0.0</h1>\n");
  auto list = json::parse(
      f.server().Admin().Get("/api/v1/deployments?application=shop&stage=Integration").body);
  REQUIRE(!list["items"].empty());
  CHECK(list["items"][0]["release"] == "5.0.0");
  CHECK(list["items"][0]["status"] == "succeeded");

  // The release exists now: a second build of it. Its migration fails, so does the job.
  fs::path tree = f.scratch() / "bad-tree";
  fs::create_directories(tree);
  REQUIRE(WriteFileAtomic(tree / "index.html", "broken\n").ok());
  REQUIRE(
      WriteFileAtomic(tree / "migrate.sh", "#!/bin/sh\necho migration failed >&2\nexit 1\n").ok());
  fs::permissions(tree / "migrate.sh", fs::perms::owner_all);
  fs::path bad = f.scratch() / "bad.tar.gz";
  REQUIRE(CreateTarGz(tree, bad).ok());
  auto failed = RunRecipe(f, {"shop", "5.0.0", "web", bad.string(), "Integration"}, deployer);
  CHECK(failed.code == 1);
  CHECK(Contains(failed.out, "reprise-deploy: shop 5.0.0 build 2\n"));
  CHECK(Contains(failed.out, " failed\n"));

  // A token the server refuses, and bad usage.
  auto refused = RunRecipe(f, {"shop", "5.0.0", "web", good.string(), "Integration"}, "wrong");
  CHECK(refused.code == 1);
  CHECK(Contains(refused.err, "answered HTTP 401"));
  auto usage = RunRecipe(f, {"shop", "5.0.0"}, deployer);
  CHECK(usage.code == 2);
  CHECK(Contains(usage.err, "usage: reprise-deploy.sh APP RELEASE ARTIFACT_NAME FILE STAGE"));
}

}  // namespace reprise::testing
