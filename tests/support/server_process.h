// ServerProcess: the real reprise-server binary ($REPRISE_BIN_DIR) as a child
// process, for tests that kill, restart or start it with bad flags. Its
// environment holds only PATH and the test admin token; stdout and stderr go
// to `log`. SIGKILLed on destruction. Not thread-safe; one owner.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/bin_dir.h"
#include "tests/support/http_client.h"
#include "tests/support/spawn.h"
#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

// The flags most tests start a server with: `data`, HTTP on a free port of
// 127.0.0.1, agents on 127.0.0.1; then `extra` (e.g. the agent port).
inline std::vector<std::string> ServerArgs(const std::filesystem::path& data,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--data",      data.string(),  "--http",
                                   "127.0.0.1:0", "--agent-host", "127.0.0.1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class ServerProcess {
 public:
  enum class Until { kListening, kSpawned };

  // Starts `reprise-server ARGS`. With kListening (the default) it also waits
  // until the server says where it listens, failing the test with its log if
  // it does not.
  ServerProcess(std::vector<std::string> args, std::filesystem::path log,
                Until until = Until::kListening)
      : log_(std::move(log)) {
    std::vector<std::string> argv = {(BinDir() / "reprise-server").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = Spawn({.argv = argv,
                  .env = {"REPRISE_ADMIN_TOKEN=" + std::string(kAdminToken), "PATH=/usr/bin:/bin"},
                  .out = log_});
    REQUIRE_MESSAGE(pid_ > 0, "cannot start ", argv[0]);
    if (until == Until::kListening)
      REQUIRE_MESSAGE(WaitForPort() > 0, "the server did not start: ", Log());
  }
  ~ServerProcess() { KillHard(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // The HTTP port once the server has printed its banner (its last line names
  // the server id); 0 when it does not within 30 s. The agent port, when the
  // server listens for agents, is read from the same banner.
  int WaitForPort() {
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    const std::regex agents(R"(agents connect to port (\d+))");
    WaitUntil([&] {
      std::smatch m;
      const std::string text = Log();
      if (text.find("server id: ") == std::string::npos) return false;
      if (!std::regex_search(text, m, listening)) return false;
      port_ = std::stoi(m[1]);
      if (std::regex_search(text, m, agents)) agent_port_ = std::stoi(m[1]);
      return true;
    });
    return port_;
  }
  // Its exit code (-1 when killed by a signal); blocks until it exits.
  int Wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  void KillHard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }
  int port() const { return port_; }
  int agent_port() const { return agent_port_; }
  pid_t pid() const { return pid_; }
  HttpClient Admin() const {
    HttpClient c("127.0.0.1", port_);
    c.set_token(kAdminToken);
    return c;
  }
  std::string Log() const { return ReadFile(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int agent_port_ = 0;
};

}  // namespace reprise::testing
