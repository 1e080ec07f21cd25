// DeploymentEngine: the heart of Reprise. It turns deploy requests into
// deployments (promote, re-deploy, rollback), keeps them moving through
// scheduled -> waiting (while gates do not hold) -> queued -> running -> a
// final status, runs one deployment at a time per target (FIFO, targets taken
// in a fixed order), and recovers after a crash: what was running becomes
// `interrupted`, scheduled deployments are re-armed or expired, and targets'
// real state is read back.
//
// Scheduling: a Boost.Asio system_timer on the engine's own thread is armed
// for the earliest scheduled deployment (re-armed when one is scheduled,
// moved, cancelled or fired, and on start). With a FakeClock the timer
// follows the clock: setting it fires what became due.
//
// Every transition is a compare-and-set in the store (one IMMEDIATE
// transaction; a scheduled deployment whose gates hold goes straight to
// queued), so a scheduled deployment fires exactly once even when the
// scheduler and a user race.
//
// Thread-safety: all public methods are thread-safe. Start/Stop from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent/runner.h"
#include "common/clock.h"
#include "common/status.h"
#include "planner/variables.h"
#include "server/store/store.h"

namespace reprise {

class Metrics;
class EventBus;

class AgentPort;

struct Actor {
  std::string user;
  Role role = Role::kViewer;
};

struct EngineOptions {
  Store* store = nullptr;        // required
  AgentPort* agents = nullptr;   // required to run deployments (the AgentHub)
  const Clock* clock = nullptr;  // null: the system clock
  int workers = 4;               // deployments running at once (on different targets)
  // How often waiting deployments are re-checked (deployment windows).
  std::chrono::milliseconds gate_recheck{5000};
  // How often targets whose agent has not yet reported what they hold are
  // asked again (after a restart for interrupted deployments, and after an
  // agent connects), and agents are checked for new connections.
  std::chrono::milliseconds read_back_retry{1000};
  // false: no scheduler thread and nothing runs; Tick() fires and queues.
  bool start_threads = true;
  Metrics* metrics = nullptr;  // the scheduler's lateness (may be null)
  EventBus* events = nullptr;  // where status changes are published (may be null)
  // Several servers on one store: this server's id, the owner of its leases
  // ("" : a random one, made at start). A server restarted with the same id
  // takes back at once what it left running; with another id, it waits for
  // the lease to lapse like any other server.
  std::string server_id;
  // A deployment this server claims or runs is held for `lease` past the
  // last renewal; renewed every `lease_renew` (wall time; lease times are
  // the engine clock's). A running deployment whose lease lapsed (its
  // server died) is taken over by any server: `interrupted`, its targets
  // read back. A server that cannot renew within `lease` cancels its own.
  std::chrono::milliseconds lease{15000};
  std::chrono::milliseconds lease_renew{5000};
};

struct DeployRequest {
  std::string stage;
  std::optional<TimePoint> at;  // none: now
  bool force = false;
  std::string context_choice;  // "", "as-deployed", "current"
  VariableMap variables;       // deployment scope
  std::string comment;
  std::chrono::milliseconds expires_after{std::chrono::hours(1)};
  // Needed to go back across irreversible steps that ran since the build was
  // last current on the stage (Preview::irreversible).
  bool acknowledge_irreversible = false;
};

struct GateState {
  std::string gate;  // "previous-stage", "approvals", "window", "hold", "force"
  bool holds = false;
  std::string detail;  // e.g. "1 of 2 approvals from release-manager"
};

struct FileChanges {
  std::string target;
  std::string current;  // "1.0.0 build 2", "" when nothing is deployed
  std::vector<std::string> added;
  std::vector<std::string> overwritten;
  std::vector<std::string> deleted;
  int64_t unchanged = 0;
};

struct VariableDifference {
  std::string name;
  std::string scope;
  std::string target;
  std::string change;       // added | removed | changed
  std::string as_deployed;  // masked
  std::string current;      // masked
};

struct Preview {
  std::string kind;     // promote | redeploy | rollback
  std::string summary;  // "Rollback: Production currently runs 1.0.0 build 2"
  std::string context_choice;
  std::vector<FileChanges> targets;
  std::vector<VariableDifference> variables;
  std::vector<GateState> gates;
  std::vector<std::pair<std::string, std::vector<std::string>>> operations;  // per target
  std::vector<std::string> problems;
  // Irreversible steps that ran on the stage since this build was last
  // current there, oldest first: deploying needs acknowledge_irreversible.
  std::vector<IrreversibleStepRecord> irreversible;
};

struct StageView {
  std::string stage;
  std::string environment;
  bool is_protected = false;
  bool auto_promote = false;
  std::string hold_json;               // "" when no hold
  std::vector<TargetCurrent> targets;  // one per target of the stage (build 0: nothing yet)
  std::vector<StageBuild> rollback_candidates;
};

// A `manual` step waiting for someone to continue it.
struct PendingManual {
  std::string message;
  std::string role;
  std::string step_id;
};

class DeploymentEngine {
 public:
  [[nodiscard]] static Result<std::unique_ptr<DeploymentEngine>> Start(EngineOptions options);
  ~DeploymentEngine();
  DeploymentEngine(const DeploymentEngine&) = delete;
  DeploymentEngine& operator=(const DeploymentEngine&) = delete;
  void Stop();
  // Ends live log waits at once (before the HTTP server stops, so streaming
  // clients do not hold it open).
  void BeginShutdown();
  bool ShuttingDown() const;

  [[nodiscard]] Result<DeploymentRecord> Request(const Actor& actor, const std::string& app,
                                                 const std::string& release, int64_t build,
                                                 const DeployRequest& request);
  [[nodiscard]] Result<Preview> PreviewDeployment(const std::string& app,
                                                  const std::string& release, int64_t build,
                                                  const std::string& stage,
                                                  const std::string& context_choice);

  // Selective rollback records (rollback_records_run.cpp). Whether `actor`
  // may do what re-deploying a build on `stage` needs (deployer; on a
  // protected stage release-manager or the `redeploy` grant).
  [[nodiscard]] Status MayRedeploy(const Actor& actor, const std::string& app,
                                   const std::string& stage);
  // Stores `execution` (kind selective-rollback; scheduled or queued, no
  // gates but its agents) in one transaction with what `with_it` writes (the
  // record's transition and audit), then arms the timer or wakes the
  // dispatcher. Its run sends compose-release to each target of the record.
  [[nodiscard]] Result<DeploymentRecord> RequestSelectiveRollback(
      const DeploymentRecord& execution,
      const std::function<Status(const DeploymentRecord&)>& with_it);

  [[nodiscard]] Status Approve(const Actor& actor, int64_t id, const std::string& comment);
  [[nodiscard]] Status Reject(const Actor& actor, int64_t id, const std::string& comment);
  [[nodiscard]] Status RevokeApproval(const Actor& actor, int64_t id);
  [[nodiscard]] Status Cancel(const Actor& actor, int64_t id, const std::string& comment);
  [[nodiscard]] Status Reschedule(const Actor& actor, int64_t id, TimePoint at);
  [[nodiscard]] Status Continue(const Actor& actor, int64_t id, const std::string& comment);
  // `comment` (why) is the audit entry's summary.
  [[nodiscard]] Status ClearHold(const Actor& actor, const std::string& app,
                                 const std::string& stage, const std::string& comment = "");
  // Per-user permissions on an environment beside the role (admin only).
  // "redeploy": re-deploying (and rolling back to) a build that succeeded
  // before on the environment's protected stages, and moving or cancelling
  // such deployments, without the role release-manager. `changed` tells
  // whether anything changed (a grant held already is not an error).
  [[nodiscard]] Status SetGrant(const Actor& actor, const std::string& environment,
                                const std::string& user, const std::string& permission,
                                bool granted, bool* changed);
  [[nodiscard]] Result<std::vector<GrantRecord>> Grants(const std::string& environment);

  // The gates of a deployment as they stand now.
  [[nodiscard]] Result<std::vector<GateState>> Gates(const DeploymentRecord& deployment);
  // What is deployed where, per stage of the application's current spec.
  [[nodiscard]] Result<std::vector<StageView>> DeployedWhere(const std::string& app);
  std::optional<PendingManual> Manual(int64_t id) const;
  std::optional<TransferProgress> Progress(int64_t id, const std::string& target) const;

  // Blocks until the deployment's log has a line after `after_seq`, it
  // finished, or `timeout` passed. Returns true when there may be news.
  bool WaitForLog(int64_t id, int64_t after_seq, std::chrono::milliseconds timeout) const;
  // Registers `listener`, called on the engine's threads after every change
  // that ends a WaitForLog (new log lines, a status change, shutdown): a
  // live log stream waits without a thread. It must be quick and must not
  // call back into the engine. Returns the handle for RemoveLogListener;
  // once that returns the listener is never called again.
  int64_t AddLogListener(std::function<void()> listener);
  void RemoveLogListener(int64_t handle);
  // Progress from the hub (bytes transferred, files extracted).
  void ReportProgress(const std::string& target, const TransferProgress& progress);

  // This server's id (EngineOptions::server_id, or the one made at start).
  const std::string& ServerId() const;

  // Runs one scheduler and dispatcher pass now, on the scheduler's thread.
  void Tick();
  // Blocks until no deployment is queued or running, or the timeout passes.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  DeploymentEngine();
  Store* engine_store() const;
  const Clock& engine_clock() const;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Release numbers compare as dotted numbers ("1.10" > "1.9"); then builds.
int CompareVersions(const std::string& release_a, int64_t build_a, const std::string& release_b,
                    int64_t build_b);

}  // namespace reprise
