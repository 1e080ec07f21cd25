// What the processes of exec steps inherit: nothing but stdin, stdout and
// stderr. A real reprise-server with --local-agent whose plan leaves a daemon
// behind can be restarted on the same ports; every fd above 2 of a running
// server and of a running reprise-agent is close-on-exec.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/server/hub/hub_test_support.h"
#include "tests/support/seed.h"
#include "tests/support/server_process.h"
#include "tests/support/test_server.h"

namespace reprise::testing {
namespace {

using nlohmann::json;


// The inode -> local port of every TCP socket in `pid`'s network namespace.
std::map<std::string, int> TcpSocketPorts(pid_t pid) {
  std::map<std::string, int> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + table);
    std::string line;
    std::getline(in, line);  // the heading
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      size_t colon = local.rfind(':');
      if (colon == std::string::npos || inode.empty()) continue;
      ports[inode] = static_cast<int>(std::strtol(local.c_str() + colon + 1, nullptr, 16));
    }
  }
  return ports;
}

// The fds above 2 of `pid` without O_CLOEXEC, each as "fd N -> what it is".
// TCP sockets whose local port is in `exempt_ports` are left out.
std::vector<std::string> FdsWithoutCloseOnExec(pid_t pid, const std::set<int>& exempt_ports = {}) {
  const fs::path proc = "/proc/" + std::to_string(pid);
  const auto ports = TcpSocketPorts(pid);
  std::vector<std::string> leaks;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(proc / "fdinfo", ec)) {
    const std::string name = entry.path().filename().string();
    if (std::stoi(name) <= 2) continue;
    std::ifstream info(entry.path());
    std::string line;
    long flags = -1;
    while (std::getline(info, line)) {
      if (line.rfind("flags:", 0) == 0) flags = std::strtol(line.c_str() + 6, nullptr, 8);
    }
    if (flags < 0 || (flags & 02000000) != 0) continue;  // gone meanwhile, or close-on-exec
    std::error_code link_ec;
    std::string target = fs::read_symlink(proc / "fd" / name, link_ec).string();
    std::smatch m;
    if (std::regex_match(target, m, std::regex(R"(socket:\[(\d+)\])"))) {
      auto port = ports.find(m[1]);
      if (port != ports.end()) {
        if (exempt_ports.count(port->second)) continue;
        target += " (tcp port " + std::to_string(port->second) + ")";
      }
    }
    leaks.push_back("fd " + name + " -> " + target);
  }
  return leaks;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// An application `app` with build 1 whose stage S runs `plan` on target `web`
// of the local agent at `path`.
void Seed(HttpClient& admin, const fs::path& path, const std::string& plan) {
  SeedLocalStage(admin, path, plan);
}

// Deploys build 1 to S and waits until it has finished; its status.
std::string DeployAndWait(HttpClient& admin) {
  auto r = admin.Post("/api/v1/applications/app/releases/1.0/builds/1/deploy", R"({"stage":"S"})");
  REQUIRE_MESSAGE(r.status == 202, r.body);
  std::string id = std::to_string(Body(r)["id"].get<int64_t>());
  std::string status;
  REQUIRE(WaitUntil([&] {
    status = Body(admin.Get("/api/v1/deployments/" + id))["status"].get<std::string>();
    return status != "queued" && status != "running" && status != "waiting" &&
           status != "scheduled";
  }));
  return status;
}

// Kills the daemon whose pid a plan wrote to `pid_file`, when the test ends
// however it ends. Only a `sleep` is killed: the pid may have been reused.
class DaemonReaper {
 public:
  explicit DaemonReaper(fs::path pid_file) : pid_file_(std::move(pid_file)) {}
  ~DaemonReaper() {
    std::error_code ec;
    if (!fs::exists(pid_file_, ec)) return;
    const pid_t pid = static_cast<pid_t>(std::atol(ReadFile(pid_file_).c_str()));
    if (pid <= 1) return;
    const fs::path proc = "/proc/" + std::to_string(pid);
    if (ReadFile(proc / "cmdline").rfind("sleep", 0) != 0) return;
    ::kill(pid, SIGKILL);
    // Not our child: gone, or a zombie waiting for its new parent.
    WaitUntil(
        [&] {
          std::string stat = ReadFile(proc / "stat");
          size_t paren = stat.rfind(')');
          return stat.empty() ||
                 (paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z');
        },
        std::chrono::seconds(10));
  }

 private:
  fs::path pid_file_;
};

TEST_CASE("a daemon left behind by a local exec step does not keep the server's ports") {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  const fs::path target = data / "targets" / "web";
  DaemonReaper reaper(target / "daemon.pid");
  int http_port = 0;
  int agent_port = 0;
  {
    ServerProcess first(ServerArgs(data, {"--local-agent", "--agent-port", "0"}),
                        tmp.path() / "first.log");
    http_port = first.port();
    agent_port = first.agent_port();
    REQUIRE_MESSAGE(agent_port > 0, first.Log());
    auto admin = first.Admin();
    Seed(admin, target, "    - exec: \"sleep 600 & echo $$! > daemon.pid\"\n");
    REQUIRE(DeployAndWait(admin) == "succeeded");
    REQUIRE(WaitUntil([&] { return !ReadFile(target / "daemon.pid").empty(); }));
    first.KillHard();
  }
  // The daemon still runs; a new server gets the same two ports all the same.
  ServerProcess second(
      {"--data", data.string(), "--http", "127.0.0.1:" + std::to_string(http_port), "--agent-host",
       "127.0.0.1", "--agent-port", std::to_string(agent_port), "--local-agent"},
      tmp.path() / "second.log", ServerProcess::Until::kSpawned);
  REQUIRE_MESSAGE(second.WaitForPort() == http_port, second.Log());
  CHECK(second.agent_port() == agent_port);
}

TEST_CASE("every fd of a running server is close-on-exec, after start and after a deployment") {
  TempDir tmp;
  const fs::path data = tmp.path() / "data";
  ServerProcess server(ServerArgs(data, {"--local-agent", "--agent-port", "0"}),
                       tmp.path() / "server.log");
  const std::set<int> http;  // the HTTP server's sockets too: no exemption
  auto admin = server.Admin();
  CHECK_MESSAGE(FdsWithoutCloseOnExec(server.pid(), http).empty(),
                Join(FdsWithoutCloseOnExec(server.pid(), http)));
  Seed(admin, data / "targets" / "web",
       "    - write-file: { path: hello.txt, content: \"hello\" }\n"
       "    - exec: \"cat hello.txt\"\n");
  REQUIRE(DeployAndWait(admin) == "succeeded");
  CHECK_MESSAGE(FdsWithoutCloseOnExec(server.pid(), http).empty(),
                Join(FdsWithoutCloseOnExec(server.pid(), http)));
}

TEST_CASE("every fd of a running reprise-agent is close-on-exec, after start and after a deploy") {
  HubFixture f;
  const fs::path root = f.tmp.path() / "a1";
  TargetInfo t{"t1", "", "", {}};
  auto agent = f.StartOnlineAgent("a1", "t1", root);
  CHECK_MESSAGE(FdsWithoutCloseOnExec(agent->pid()).empty(),
                Join(FdsWithoutCloseOnExec(agent->pid())));

  const std::string sha = f.AddArtifact({{"index.html", "v1"}});
  auto ops = f.hub->OperationsFor([] {
    ExecutionContext c;
    c.release = "1.0";
    c.build = "1";
    return c;
  }());
  LogCollector logs;
  CancelToken cancel;
  auto out =
      ops->Run(t, DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, 3}, *logs.log, cancel);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  ExecOp e;
  e.command = "cat current/index.html";
  REQUIRE(ops->Run(t, e, *logs.log, cancel).succeeded());
  CHECK_MESSAGE(FdsWithoutCloseOnExec(agent->pid()).empty(),
                Join(FdsWithoutCloseOnExec(agent->pid())));
}

}  // namespace
}  // namespace reprise::testing
