// AgentPort: everything the deployment engine asks of the agents of its
// targets, and nothing else. The engine includes this header only; the
// server's AgentHub (server/hub/) implements it over the agent channel and
// the in-process local agent, and tests implement it over an AgentRunner.
//
// Thread-safety: an implementation must accept calls from any thread at
// once (the engine calls it from deployment threads, the read-back thread
// and the engine loop), and the Operations it returns must accept
// concurrent Run calls for different targets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/agent/probe.h"
#include "agents/agent/runner.h"
#include "agents/deployer/archive.h"
#include "common/status.h"
#include "planner/execution_context.h"
#include "planner/operations.h"

namespace reprise {

// An agent as the server knows it.
struct AgentStatus {
  std::string name;
  std::string status;  // "pending", "refused", "online", "offline" (approved agents)
  bool approved = false;
  bool online = false;
  std::string version;
  int64_t last_seen = 0;  // unix millis
  std::string key_fingerprint;
  std::string address;               // remote address while online
  std::vector<std::string> targets;  // targets whose agent is this one
};

// The agent of a target as the server sees it now (no round trip).
struct TargetAgentLink {
  std::string target;
  std::string agent;
  bool connected = false;  // online now (the local agent: enabled)
  bool approved = false;
  std::string version;  // as the agent reported it ("" when never seen)
};

// A probe of a target's root by its agent (AgentRunner::Probe).
struct TargetProbe {
  TargetAgentLink link;
  bool answered = false;   // the agent answered: `report` and `latency_ms` hold
  int64_t latency_ms = 0;  // the request's round trip
  ProbeReport report;
  std::string problem;  // why the agent could not be asked ("" when it answered)
};

class AgentPort {
 public:
  virtual ~AgentPort() = default;

  // The planner's Operations for one deployment: each Run goes to the
  // target's agent, sends its log lines to the StepLog and stops when the
  // CancelToken is cancelled. Release directories are named
  // "<release>-<build>-<sha12>" from the context. Must not outlive the port.
  virtual std::unique_ptr<Operations> OperationsFor(const ExecutionContext& context) = 0;

  // The target's current release (asked from its agent when online; the last
  // known state, online=false, when not). kNotFound for an unknown target.
  [[nodiscard]] virtual Result<TargetState> GetTargetState(const std::string& target) = 0;

  // Re-hashes the target's `current` tree on its agent against `manifest`.
  [[nodiscard]] virtual Result<ValidationReport> Validate(const std::string& target,
                                                          const Manifest& manifest) = 0;

  // Whether the target's agent is connected and approved, without asking it.
  // kNotFound for an unknown target.
  [[nodiscard]] virtual Result<TargetAgentLink> TargetAgent(const std::string& target) = 0;

  // Asks the target's agent whether it can write the target root and how
  // much room is left (test connection). An agent that cannot be asked is
  // the probe's `problem`, not an error; kNotFound for an unknown target.
  [[nodiscard]] virtual Result<TargetProbe> Probe(const std::string& target) = 0;

  // Every agent with its targets, whether it is online (and from where) and
  // approved. The engine polls it to notice agents that connect, leave or
  // are approved (their targets are read back, waiting deployments
  // re-checked).
  virtual std::vector<AgentStatus> Agents() = 0;
};

}  // namespace reprise
