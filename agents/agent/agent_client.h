// AgentClient: the remote agent's side of the channel (what reprise-agent
// runs). Connects out to every server it is given (one connection each, each
// with its own reconnect loop), enrolls or authenticates with its Ed25519
// key, keeps the connections alive with heartbeats, reconnects with
// exponential backoff and jitter, and runs the operations any server sends
// through one AgentRunner (one thread per running operation; operations on
// the same target root are serialised by the runner's per-root lock, whichever
// server sent them).
//
// Thread-safety: Run() blocks the calling thread; Stop() may be called from
// any thread (or a signal handler thread) and makes Run() return.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace reprise {

// One server the agent connects to.
struct AgentServerAddress {
  std::string host;
  int port = 0;
};

struct AgentClientOptions {
  // The servers to connect to, each on its own connection; empty: the one
  // at host:port.
  std::vector<AgentServerAddress> servers;
  std::string host;
  int port = 0;
  std::string name;
  std::string enroll_token;    // needed until the server knows this agent
  std::filesystem::path root;  // target roots must be inside it
  // agent.key (0600) and the pinned server certificates: server.fingerprint
  // with one server, server-HOST-PORT.fingerprint each with several;
  // default ROOT/.reprise/agent.
  std::filesystem::path state_dir;
  bool tls = true;  // plain TCP is refused unless every host is loopback
  // Pinned server certificate SHA-256 (every server's, when several share
  // one certificate); "" : trust on first use, per server.
  std::string fingerprint;
  std::chrono::milliseconds heartbeat{10000};
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{30000};
  bool fsync = true;
  // Keep "unchanged since verified" current with inotify (RunnerOptions).
  bool watch_releases = true;
  bool verbose = true;  // log connection events to stderr
};

class AgentClient {
 public:
  explicit AgentClient(AgentClientOptions options);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Runs until Stop(), or until the server refuses this agent for good
  // (wrong key for the name, bad enrollment token, protocol mismatch), which
  // is returned as kPermissionDenied / kUnauthenticated / kFailedPrecondition.
  Status Run();
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace reprise
