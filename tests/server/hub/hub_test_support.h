// Test support for the hub: a real hub on loopback with a real SQLite store
// and BlobStore in a temporary directory, and real reprise-agent processes
// started from $REPRISE_BIN_DIR.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/crypto.h"
#include "planner/operations.h"
#include "server/artifacts/blob_store.h"
#include "server/hub/agent_hub.h"
#include "server/store/store.h"
#include "tests/support/server_process.h"
#include "tests/support/spawn.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

extern char** environ;

namespace reprise::testing {

namespace fs = std::filesystem;

// A reprise-agent child process; killed (SIGKILL) on destruction.
class AgentProcess {
 public:
  AgentProcess(std::vector<std::string> args, fs::path log) : log_(std::move(log)) {
    std::vector<std::string> argv = {(BinDir() / "reprise-agent").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = Spawn({.argv = argv, .out = log_, .append = true});
    REQUIRE_MESSAGE(pid_ > 0, "cannot start ", argv[0]);
  }
  ~AgentProcess() { Kill(); }
  pid_t pid() const { return pid_; }
  void Signal(int sig) {
    if (pid_ > 0 && !exited_) ::kill(pid_, sig);
  }
  void Kill() {
    if (pid_ <= 0 || exited_) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }
  // Exit status (or -signal); blocks.
  int Wait() {
    if (!exited_) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      exited_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    }
    return code_;
  }
  // True once the process has ended (does not block).
  bool Exited() {
    if (exited_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    }
    return exited_;
  }
  std::string Log() const { return ReadFile(log_); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = 0;
};

// A hub with a store and blob store in a temporary directory.
struct HubFixture {
  TempDir tmp;
  std::unique_ptr<Store> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<AgentHub> hub;
  std::mutex progress_mu;
  std::function<void(const std::string&, const TransferProgress&)> progress_hook;

  // `adjust` may change the hub's options before it starts.
  explicit HubFixture(bool tls = false, bool local_agent = false,
                      const std::function<void(AgentHubOptions&)>& adjust = nullptr) {
    auto s = OpenSqliteStore({(tmp.path() / "reprise.db").string()});
    REQUIRE(s.ok());
    store = std::move(s).value();
    auto b = BlobStore::Open(tmp.path() / "blobs", BlobStoreOptions{0, false});
    REQUIRE(b.ok());
    blobs = std::move(b).value();
    REQUIRE(store->PutEnvironment({"Integration", "{}", 0}).ok());
    AgentHubOptions o;
    o.store = store.get();
    o.blobs = blobs.get();
    o.data_dir = tmp.path() / "data";
    o.tls = tls;
    o.local_agent = local_agent;
    o.local_agent_root = tmp.path();
    o.fsync = false;
    o.heartbeat_timeout = std::chrono::milliseconds(1500);
    o.on_progress = [this](const std::string& target, const TransferProgress& p) {
      std::function<void(const std::string&, const TransferProgress&)> hook;
      {
        std::lock_guard<std::mutex> g(progress_mu);
        hook = progress_hook;
      }
      if (hook) hook(target, p);
    };
    if (adjust) adjust(o);
    auto h = AgentHub::Start(o);
    REQUIRE_MESSAGE(h.ok(), h.status().ToString());
    hub = std::move(h).value();
  }

  std::string Token(bool pre_approved) {
    auto t = hub->CreateEnrollToken(pre_approved, std::chrono::seconds(3600), "admin");
    REQUIRE(t.ok());
    return *t;
  }

  void AddTarget(const std::string& name, const std::string& agent, const fs::path& path) {
    REQUIRE(store->PutTarget({name, "Integration", agent, path.string(), "{}", 0}).ok());
  }

  std::unique_ptr<AgentProcess> StartAgent(const std::string& name, const fs::path& root,
                                           const std::string& token,
                                           std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--server",       "127.0.0.1:" + std::to_string(hub->port()),
                                     "--name",         name,
                                     "--root",         root.string(),
                                     "--heartbeat-ms", "200",
                                     "--no-fsync"};
    if (!token.empty()) {
      args.push_back("--enroll-token");
      args.push_back(token);
    }
    if (extra.empty()) extra = {"--plain"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<AgentProcess>(args, tmp.path() / (name + "-" + RandomHex(3) + ".log"));
  }

  std::string StatusOf(const std::string& agent) {
    for (const auto& a : hub->Agents()) {
      if (a.name == agent) return a.status;
    }
    return "";
  }
  bool WaitStatus(const std::string& agent, const std::string& status) {
    return WaitUntil([&] { return StatusOf(agent) == status; });
  }

  // Records `target` at `root` on `agent`, starts that agent pre-approved and
  // waits until it is online.
  std::unique_ptr<AgentProcess> StartOnlineAgent(const std::string& agent,
                                                 const std::string& target, const fs::path& root) {
    AddTarget(target, agent, root);
    auto process = StartAgent(agent, root, Token(true));
    REQUIRE_MESSAGE(WaitStatus(agent, "online"), process->Log());
    return process;
  }

  // A fresh directory for an artifact's tree.
  fs::path NewTreeDir() { return tmp.path() / ("tree-" + RandomHex(4)); }

  // Stores an artifact made of `files` and returns its sha256.
  std::string AddArtifact(const std::map<std::string, std::string>& files,
                          Manifest* manifest = nullptr) {
    fs::path tree = NewTreeDir();
    for (const auto& [p, c] : files) {
      fs::create_directories((tree / p).parent_path());
      std::ofstream(tree / p, std::ios::binary) << c;
    }
    return AddTreeArtifact(tree, manifest);
  }

  // Stores the directory `tree` as an artifact and returns its sha256.
  std::string AddTreeArtifact(const fs::path& tree, Manifest* manifest = nullptr) {
    fs::path archive = tree.string() + ".tar.gz";
    REQUIRE(CreateTarGz(tree, archive).ok());
    if (manifest) {
      auto m = ScanArchive(archive);
      REQUIRE(m.ok());
      *manifest = *m;
    }
    auto sha = blobs->Put(ReadFile(archive));
    REQUIRE(sha.ok());
    return *sha;
  }
};

// Collects the lines an operation logs.
struct LogCollector {
  FakeClock clock{TimePoint{}};
  Masker masker;
  std::mutex mu;
  std::vector<LogLine> lines;
  std::unique_ptr<StepLog> log;
  explicit LogCollector(const std::string& target = "t") {
    log = std::make_unique<StepLog>(clock, masker, "s1", SourcePosition{}, target,
                                    [this](const LogLine& l) {
                                      std::lock_guard<std::mutex> g(mu);
                                      lines.push_back(l);
                                    });
  }
  bool Contains(const std::string& text) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& l : lines) {
      if (l.text.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

inline ExecutionContext Context(const std::string& build) {
  ExecutionContext c;
  c.release = "1.0";
  c.build = build;
  return c;
}

// Runs `op` on `t` through the hub as build 1.0 `build`; its lines go to
// `logs` when given.
inline OperationOutcome RunOn(AgentHub& hub, const TargetInfo& t, const ResolvedOperation& op,
                              const std::string& build = "1", LogCollector* logs = nullptr) {
  auto ops = hub.OperationsFor(Context(build));
  LogCollector own;
  LogCollector& l = logs ? *logs : own;
  CancelToken cancel;
  return ops->Run(t, op, *l.log, cancel);
}

}  // namespace reprise::testing
