// The `reprise` CLI run as a process in tests: CliProcess (the real binary,
// REPRISE_BIN_DIR, with its output in files) and CliFixture (a real server on
// port 0 with the demo application and the local agent). One per test; not
// thread-safe.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "tests/support/spawn.h"
#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

namespace fs = std::filesystem;
using nlohmann::json;

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// How a CLI process runs beside its arguments.
struct CliRun {
  int port = 0;
  std::string token = "";             // REPRISE_TOKEN; none when empty
  bool server_env = true;             // set REPRISE_SERVER to the server
  std::vector<std::string> env = {};  // more NAME=VALUE
  std::string stdin_text = "";        // given on stdin (else stdin is /dev/null)
};

// A `reprise` process with its stdout and stderr in files.
class CliProcess {
 public:
  CliProcess(const fs::path& scratch, const std::vector<std::string>& args, int port,
             const std::string& token)
      : CliProcess(scratch, args, CliRun{.port = port, .token = token}) {}

  CliProcess(const fs::path& scratch, const std::vector<std::string>& args, const CliRun& run) {
    const char* bin_dir = std::getenv("REPRISE_BIN_DIR");
    REQUIRE_MESSAGE(bin_dir != nullptr, "REPRISE_BIN_DIR is not set");
    std::string id = RandomHex(4);
    out_path_ = scratch / ("out-" + id);
    err_path_ = scratch / ("err-" + id);
    fs::path in_path = scratch / ("in-" + id);
    REQUIRE(WriteFileAtomic(in_path, run.stdin_text).ok());
    // sh gives the CLI its stdin from a file; "$@" keeps the arguments as they are.
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" < \"$CLI_TEST_STDIN\"",
                                     std::string(bin_dir) + "/reprise"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env;
    for (std::string_view v : InheritedEnvironment())
      if (!v.starts_with("REPRISE_SERVER=") && !v.starts_with("REPRISE_TOKEN=") &&
          !v.starts_with("XDG_CONFIG_HOME=") && !v.starts_with("HOME="))
        env.emplace_back(v);
    // Never the real user's configuration file.
    env.push_back("HOME=" + (scratch / "home").string());
    env.push_back("CLI_TEST_STDIN=" + in_path.string());
    if (run.server_env)
      env.push_back("REPRISE_SERVER=http://127.0.0.1:" + std::to_string(run.port));
    if (!run.token.empty()) env.push_back("REPRISE_TOKEN=" + run.token);
    env.insert(env.end(), run.env.begin(), run.env.end());
    pid_ = Spawn({.argv = argv, .env = env, .out = out_path_, .err = err_path_});
    REQUIRE(pid_ > 0);
  }
  ~CliProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  RunResult Wait(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    RunResult r;
    int status = 0;
    if (!WaitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      FAIL_CHECK("reprise did not exit in time");
    }
    pid_ = -1;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(out_path_);
    r.err = ReadFile(err_path_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  fs::path out_path_, err_path_;
};

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class CliFixture {
 public:
  CliFixture() : server_(Options()) {}
  explicit CliFixture(const ServerOptions& options) : server_(options) {}

  static ServerOptions Options() {
    ServerOptions o;
    o.demo = true;
    o.local_agent = true;
    return o;
  }

  RunResult Run(const std::vector<std::string>& args, const std::string& token = kAdminToken) {
    return Run(args, CliRun{.port = server_.port(), .token = token});
  }
  RunResult Run(const std::vector<std::string>& args, CliRun run) {
    run.port = server_.port();
    CliProcess p(scratch_.path(), args, run);
    RunResult r = p.Wait();
    INFO("reprise ", args.empty() ? "" : args[0], " stdout: ", r.out, " stderr: ", r.err);
    return r;
  }
  std::unique_ptr<CliProcess> Start(const std::vector<std::string>& args) {
    return std::make_unique<CliProcess>(scratch_.path(), args, server_.port(), kAdminToken);
  }

  // A tar.gz of `files` (relative path -> content).
  fs::path Archive(const std::map<std::string, std::string>& files) {
    fs::path tree = scratch_.path() / ("tree-" + RandomHex(4));
    for (const auto& [rel, content] : files) {
      fs::create_directories((tree / rel).parent_path());
      REQUIRE(WriteFileAtomic(tree / rel, content).ok());
    }
    fs::path out = scratch_.path() / ("build-" + RandomHex(4) + ".tar.gz");
    REQUIRE(CreateTarGz(tree, out).ok());
    return out;
  }

  TestServer& server() { return server_; }
  // The live release directory of `target` on the server's local agent.
  fs::path Current(const std::string& target) {
    return server_.data_dir() / "targets" / target / "current";
  }
  const fs::path& scratch() const { return scratch_.path(); }

 private:
  TempDir scratch_;
  TestServer server_;
};

inline int64_t WaitingDeployment(TestServer& server) {
  int64_t id = 0;
  WaitUntil([&] {
    auto list = json::parse(server.Admin().Get("/api/v1/deployments?status=waiting").body);
    if (!list["items"].empty()) id = list["items"][0]["id"].get<int64_t>();
    return id != 0;
  });
  return id;
}

}  // namespace reprise::testing
