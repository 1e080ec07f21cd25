// Test Connection: before a deployment changes any target, every target's
// agent must be connected and approved, and must be able to write the target
// root with room for the build (a probe by each agent, see
// AgentPort::Probe). The engine runs this check when a queued deployment is
// about to start; POST /applications/{app}/stages/{stage}/test-connection
// runs it on demand. An agent that is away is worth waiting for (the `agents`
// gate); a root that cannot be written or is too full fails the deployment
// before anything runs.
//
// Thread-safety: the functions are thread-safe (the AgentPort and the store are).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/engine/engine.h"

namespace reprise {

class AgentPort;
class Store;

// Room one artifact of a build takes on a target, unless its release
// directory is cached there already.
struct ReleaseSpace {
  std::string release_dir;  // as the agent names it (ReleaseDirName)
  uint64_t bytes = 0;       // the artifact's uncompressed size
};

struct TargetConnection {
  enum class Problem { kNone, kAgent, kTarget };
  std::string target;
  std::string agent;
  bool connected = false;
  bool approved = false;
  std::string version;
  int64_t latency_ms = 0;
  bool writable = false;
  uint64_t free_bytes = 0;
  uint64_t needed_bytes = 0;  // of the build's artifacts not cached on the target
  Problem kind = Problem::kNone;
  std::string problem;  // "" when all is well
};

struct ConnectionReport {
  std::vector<TargetConnection> targets;
  bool ok() const;
  // The problems of one kind, "; "-joined ("" when none).
  std::string Problems(TargetConnection::Problem kind) const;
};

// What a plan asks of its targets.
struct PlanNeeds {
  bool touches_targets = false;  // a step runs on the targets' agents
  // The artifacts its deploy-artifact steps name; `all_artifacts` when a name
  // is only known at run time (a variable).
  std::set<std::string> artifacts;
  bool all_artifacts = false;
};
// A plan that does not parse needs nothing here: running it reports why.
PlanNeeds NeedsOf(std::string_view plan_text);

// What deploying build (app, release, build) needs on each target: one entry
// per artifact of the build (`only`: those the plan deploys).
[[nodiscard]] Result<std::vector<ReleaseSpace>> SpaceForBuild(Store& store, const std::string& app,
                                                              const std::string& release,
                                                              int64_t build,
                                                              const PlanNeeds* only = nullptr);

// Probes every target (in order). `space` may be empty (nothing to compare
// free space with). kNotFound for an unknown target.
[[nodiscard]] Result<ConnectionReport> TestConnection(AgentPort& agents,
                                                      const std::vector<std::string>& targets,
                                                      const std::vector<ReleaseSpace>& space);

// Whether a queued deployment may start: kRun, kWait (an agent is away: the
// `agents` gate, `text` its detail) or kFail (a target cannot take the
// build: `text` says why). `lines` are per-target log lines (target, text).
struct StartCheck {
  enum class Verdict { kRun, kWait, kFail } verdict = Verdict::kRun;
  std::string text;
  std::vector<std::pair<std::string, std::string>> lines;
};
StartCheck CheckBeforeStart(AgentPort& agents, Store& store, const DeploymentRecord& deployment,
                            const std::vector<std::string>& targets, const PlanNeeds& needs);

// The `agents` gate from what the AgentPort knows now (no probe): holds when every
// target's agent is connected and approved.
GateState AgentsGate(AgentPort& agents, const std::vector<std::string>& targets);

// "agent 'box' of target 'web' is not connected" (or "not approved").
std::string AgentProblem(const std::string& agent, const std::string& target, bool connected);

}  // namespace reprise
