// AgentHub: the server's end of the agent channel. It listens for agents
// (TLS with a self-signed certificate made on first start; plain TCP only on
// loopback), enrolls and authenticates them, tracks who is online, routes
// operations to the agent of each target (or to the in-process local agent),
// streams artifacts from the BlobStore, and reads target state back.
//
// All connections share one io_context thread: an idle agent costs a socket
// and a few hundred bytes, not a thread.
//
// Thread-safety: every public method may be called from any thread, and
// operations() accepts concurrent Run calls (one per target at a time is the
// engine's rule, not the hub's). Start/Stop from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent/runner.h"
#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/status.h"
#include "planner/execution_context.h"
#include "planner/operations.h"
#include "server/artifacts/blob_store.h"
#include "server/engine/agent_port.h"
#include "server/http/http_types.h"
#include "server/store/store.h"

namespace reprise {

class EventBus;
class FileIndex;

struct AgentHubOptions {
  Store* store = nullptr;            // required
  const BlobStore* blobs = nullptr;  // required for deploy-artifact
  // Builds' file indexes (derived from `blobs`): agents that have most of a
  // build fetch only the files they lack. Null: whole archives only.
  FileIndex* files = nullptr;
  const Clock* clock = nullptr;  // null: the system clock
  std::string host = "127.0.0.1";
  int port = 0;                    // 0: any free port; -1: no listener (local agent only)
  std::filesystem::path data_dir;  // the TLS certificate and key live here
  bool tls = true;                 // false is refused unless host is loopback
  bool local_agent = false;        // run targets whose agent is "local" in-process
  // Targets of the local agent must lie under this directory ("" : any
  // absolute path).
  std::filesystem::path local_agent_root;
  bool fsync = true;  // the local agent's extraction (tests turn it off)
  // The server's archive limits, sent with each deploy-artifact so agents
  // extract what the server accepted; unset: each agent's defaults.
  std::optional<ArchiveLimits> archive_limits;
  // Deploy progress (bytes transferred, files extracted), per target name.
  // Called from hub threads; must be quick and thread-safe.
  std::function<void(const std::string& target, const TransferProgress&)> on_progress;
  EventBus* events = nullptr;  // agent.offline is published here (may be null)
  // An agent silent for this long is offline (agents send heartbeats every
  // 10 s by default).
  std::chrono::milliseconds heartbeat_timeout{30000};
  // Time to finish TLS + hello + auth after connecting.
  std::chrono::milliseconds handshake_timeout{10000};
  // Connections that have not finished the handshake yet, at most: more are
  // closed as soon as they are accepted (the agents retry with backoff), so
  // unauthenticated peers cannot hold more than this many TLS sessions and
  // handshake-sized frame buffers.
  size_t max_unauthenticated = 128;
  // Where the hub reports problems (a burst of refused connections, a failed
  // audit write), one formatted event line each (common/log.h, without the
  // timestamp); null: the log on standard error. Called from hub threads.
  std::function<void(const std::string&)> log;
  // How long GetTargetState/Validate wait for an agent's answer.
  std::chrono::milliseconds request_timeout{120000};
  // How long a probe (test connection) waits for an agent's answer: it only
  // writes one byte, and a deployment waits for it before it starts.
  std::chrono::milliseconds probe_timeout{10000};
};

// The engine's AgentPort over the agent channel and the local agent.
class AgentHub : public AgentPort {
 public:
  [[nodiscard]] static Result<std::unique_ptr<AgentHub>> Start(AgentHubOptions options);
  ~AgentHub() override;
  AgentHub(const AgentHub&) = delete;
  AgentHub& operator=(const AgentHub&) = delete;

  int port() const;
  // SHA-256 of the TLS certificate (what agents pin); "" with plain TCP.
  std::string cert_fingerprint() const;
  void Stop();

  // Runs each operation on the target's agent (TargetInfo.agent, else the
  // store's target record): in-process when the agent is "local" and the
  // local agent is on. kError/kUnavailable when the agent is offline, not
  // approved, or disconnects during the operation. Release directories are
  // named "<artifact>-<sha12>" here (no build is known): prefer OperationsFor.
  Operations& operations();
  // The same, for one deployment: release directories are named
  // "<release>-<build>-<sha12>" from the context. Must not outlive the hub.
  std::unique_ptr<Operations> OperationsFor(const ExecutionContext& context) override;

  // The target's current release (asked from its agent when online; the
  // last known state, online=false, when not).
  [[nodiscard]] Result<TargetState> GetTargetState(const std::string& target) override;
  // Re-hashes the target's `current` tree on its agent against `manifest`.
  [[nodiscard]] Result<ValidationReport> Validate(const std::string& target,
                                                  const Manifest& manifest) override;

  // Whether the target's agent is connected and approved, without asking it.
  // kNotFound for an unknown target.
  [[nodiscard]] Result<TargetAgentLink> TargetAgent(const std::string& target) override;
  // Asks the target's agent whether it can write the target root and how much
  // room is left (a probe_request; the local agent answers in-process). An
  // agent that cannot be asked is the probe's `problem`, not an error;
  // kNotFound for an unknown target.
  [[nodiscard]] Result<TargetProbe> Probe(const std::string& target) override;

  std::vector<AgentStatus> Agents() override;
  // Approves a pending agent (audited as `actor`); it may then receive work.
  [[nodiscard]] Status Approve(const std::string& name, const std::string& actor);
  // Issues an enrollment token (shown once; stored hashed).
  [[nodiscard]] Result<std::string> CreateEnrollToken(bool pre_approved,
                                                      std::chrono::seconds expires_in,
                                                      const std::string& actor);

  // GET /api/v1/agents (viewer), POST /api/v1/agents/{name}/approve (admin,
  // audited), POST /api/v1/agents/enrollment-tokens (admin):
  // {"pre_approved": bool, "expires_in_seconds": int} -> {"token", "expires_at"};
  // GET /api/v1/agents/enrollment-info (admin): address, tls, fingerprint.
  std::vector<Route> Routes();

 private:
  AgentHub();
  void AddAgentListRoutes(std::vector<Route>& r);
  void AddEnrollmentRoutes(std::vector<Route>& r);
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace reprise
