// AgentClient: the remote agent's side of the channel (what reprise-agent
// runs). Connects out to the server, enrolls or authenticates with its
// Ed25519 key, keeps the connection alive with heartbeats, reconnects with
// exponential backoff and jitter, and runs the operations the server sends
// through an AgentRunner (one thread per running operation).
//
// Thread-safety: Run() blocks the calling thread; Stop() may be called from
// any thread (or a signal handler thread) and makes Run() return.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"

namespace reprise {

struct AgentClientOptions {
  std::string host;
  int port = 0;
  std::string name;
  std::string enroll_token;    // needed until the server knows this agent
  std::filesystem::path root;  // target roots must be inside it
  std::filesystem::path
      state_dir;            // agent.key (0600), server.fingerprint; default ROOT/.reprise/agent
  bool tls = true;          // plain TCP is refused unless the host is loopback
  std::string fingerprint;  // pinned server certificate SHA-256; "" : trust on first use
  std::chrono::milliseconds heartbeat{10000};
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{30000};
  bool fsync = true;
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
