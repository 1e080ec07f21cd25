// Pieces of the deployment engine shared by its .cpp files (its "rooms"):
// helper functions, the Running record of a deployment in progress, and
// DeploymentEngine::Impl, the engine's state, whose methods are defined in
// the room files named at each section. Not a public API.
// Thread-safety: the free functions are as thread-safe as the Store they are
// given; Impl's locks and which thread calls what are listed above the struct.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "planner/app_spec.h"
#include "planner/execution_context.h"
#include "planner/executor.h"
#include "server/engine/agent_port.h"
#include "server/engine/connection_check.h"
#include "server/engine/engine.h"
#include "server/engine/engine_loop.h"
#include "server/events/event_bus.h"
#include "server/store/store.h"

namespace reprise {
struct Plan;
struct ExecutionReport;
}  // namespace reprise

namespace reprise::engine_internal {

std::vector<std::string> SplitCsv(const std::string& csv);
std::string JoinCsv(const std::vector<std::string>& items);
std::string BuildLabel(const std::string& release, int64_t build);  // "1.0.0 build 2"

// The spec the release snapshotted.
Result<AppSpec> ReleaseSpec(Store& store, const std::string& app, const std::string& release);
// Index of `stage` in the pipeline, or -1.
int StageIndex(const AppSpec& spec, const std::string& stage);

// promote | redeploy | rollback for deploying (release, build) to `stage` now.
struct KindInfo {
  std::string kind;
  bool succeeded_before = false;
  std::vector<TargetCurrent> current;  // what the stage's targets hold
  std::string current_label;           // the newest build among them, "" if none
  std::string previous_build;          // its build number, for $PreviousBuildNumber
};
Result<KindInfo> ComputeKind(Store& store, const std::string& app, const std::string& release,
                             int64_t build, const std::string& stage);

// Resolves the execution context of a deployment. `choice` is "as-deployed"
// or "current"; as-deployed reuses the variables stored with the build's last
// successful deployment to the stage (the deployment's own variables and the
// built-ins are always fresh).
Result<ExecutionContext> ResolveContext(Store& store, const DeploymentRecord& deployment,
                                        const AppSpec& spec, const StageSpec& stage,
                                        const KindInfo& kind, const std::string& choice);

// Gate states; `rejected` is set when an approver rejected it.
std::vector<GateState> EvaluateGates(Store& store, const Clock& clock,
                                     const DeploymentRecord& deployment, const AppSpec& spec,
                                     const StageSpec& stage, std::string* rejected);

// Each target's own status at the end of a deployment. When it ended early
// (a failure, or an orchestration error such as a lost agent), a target is
// `failed` only for a step of its own, `succeeded` when every step the plan
// had for it ran and succeeded, else `skipped` saying what did not run there;
// never another target's error.
struct TargetResult {
  std::string target;
  std::string status;  // succeeded | failed | cancelled | skipped
  std::string message;
};
std::vector<TargetResult> TargetResults(const Plan& plan, const ExecutionContext& context,
                                        const ExecutionReport& report);

inline constexpr int64_t kMillisPerSecond = 1000;
inline constexpr const char* kRedeployPermission = "redeploy";
// The kind of a deployment that executes a selective rollback record.
inline constexpr const char* kSelectiveRollbackKind = "selective-rollback";

inline bool IsFinal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "interrupted" || status == "expired";
}

}  // namespace reprise::engine_internal

namespace reprise {

// One deployment the engine is running right now.
struct Running {
  int64_t id = 0;
  std::vector<std::string> targets;
  CancelToken cancel;
  std::mutex mu;
  std::condition_variable manual_cv;
  std::optional<PendingManual> manual;
  enum class ManualAnswer { kNone, kContinue, kReject } answer = ManualAnswer::kNone;
  std::string answer_by;
  std::string answer_comment;
  std::map<std::string, TransferProgress> progress;
  bool holds_slot = true;  // counts against the worker limit (guarded by the engine's mu)
  // Its lease could not be renewed (another server took it, or the store
  // stayed unreachable for a whole lease): it is cancelled and ends
  // `interrupted` (if its status is still ours to write).
  std::atomic<bool> lease_lost{false};
};

// The log's condition variable, which also tells registered listeners (live
// log streams that wait without a thread) of every change it signals.
class LogSignal {
 public:
  void notify_all() {
    cv_.notify_all();
    std::lock_guard lock(mu_);
    for (const auto& [id, listener] : listeners_) listener();
  }
  template <typename Duration>
  void wait_for(std::unique_lock<std::mutex>& lock, Duration timeout) {
    cv_.wait_for(lock, timeout);
  }
  int64_t Add(std::function<void()> listener) {
    std::lock_guard lock(mu_);
    listeners_[next_] = std::move(listener);
    return next_++;
  }
  // Once it returns, the listener is not running and is never called again.
  void Remove(int64_t id) {
    std::lock_guard lock(mu_);
    listeners_.erase(id);
  }

 private:
  std::condition_variable cv_;
  std::mutex mu_;
  std::map<int64_t, std::function<void()>> listeners_;
  int64_t next_ = 1;
};

// The engine's shared state and its methods. The methods are defined in the
// room files named at each section below (server/engine/<room>.cpp).
//
// Locks: `mu` guards the dispatcher's state (busy targets, running
// deployments, their threads, worker slots, `stopping`); `pending_mu` the
// unwritten log lines and `flush_mu` their writing; `specs_mu` the spec
// cache; `read_back_mu` the targets still to read back; each Running's own
// `mu` its manual step and progress. Never take `mu` while holding another
// of these except `pending_mu` -> `mu` in LogFlushLoop.
struct DeploymentEngine::Impl : std::enable_shared_from_this<DeploymentEngine::Impl> {
  EngineOptions o;
  Store* store = nullptr;
  const Clock* clock = nullptr;

  mutable std::mutex mu;
  std::condition_variable idle_cv;
  bool stopping = false;
  std::set<std::string> busy_targets;
  std::map<int64_t, std::shared_ptr<Running>> running;
  std::map<std::string, int64_t> target_deployment;  // busy target -> deployment
  // One thread per running deployment; joined by the loop once it ended.
  std::map<int64_t, std::thread> run_threads;
  std::vector<int64_t> ended_runs;
  std::map<int64_t, std::string> gate_summaries;  // last logged, to avoid repeating
  TimePoint last_recheck{};
  // Worker slots: deployments running and not paused at a manual step, and
  // paused ones waiting to go on (they come before new ones).
  int active = 0;
  int resuming = 0;
  std::condition_variable slot_cv;

  // The scheduler: a system_timer for the next scheduled deployment and the
  // dispatcher, on one Asio thread (null when start_threads is false).
  std::unique_ptr<EngineLoop> loop;
  std::atomic<bool> dispatch_posted{false};
  std::atomic<bool> rearm_posted{false};

  mutable std::mutex log_mu;
  mutable LogSignal log_cv;
  std::atomic<bool> shutting_down{false};

  std::vector<std::thread> threads;

  int64_t Now() const { return ToUnixMillis(clock->Now()); }

  // Log lines are batched: one transaction (one fsync) per flush instead of
  // one per line. Final transitions flush first, so a finished deployment's
  // log is complete.
  std::mutex pending_mu;
  // Held from taking a batch until it is written: batches land in order.
  std::mutex flush_mu;
  std::vector<DeploymentLogRecord> pending_lines;
  std::condition_variable pending_cv;

  void Log(int64_t id, const std::string& target, const std::string& level,
           const std::string& text);

  void FlushLogs();
  int log_write_failures = 0;  // guarded by flush_mu

  void LogFlushLoop();

  AuditRecord AuditOf(const std::string& actor, const std::string& action, int64_t id,
                      const std::string& summary);
  // For what the server does by itself (expiry, recovery, automation); a
  // user's change is audited in its own transaction (Store::Atomically).
  void Audit(const std::string& actor, const std::string& action, int64_t id,
             const std::string& summary);

  // Release snapshots never change: parse each once.
  std::mutex specs_mu;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const AppSpec>> specs;

  Result<std::shared_ptr<const AppSpec>> Spec(const std::string& app, const std::string& release);

  // ---- permissions
  // Protected when the release's snapshot or the application's current spec
  // says so (protecting a stage applies to releases cut before).
  bool IsProtected(const std::string& app, const StageSpec& stage);

  // Whether `actor` may request, move or cancel a deployment of `kind` to
  // `stage`: the role deployer; on a protected stage release-manager, or for
  // a re-deploy or rollback (a build that succeeded there before) the
  // `redeploy` grant on the stage's environment.
  Status MayDeploy(const Actor& actor, const std::string& app, const StageSpec& stage,
                   const std::string& kind, const std::string& doing);

  // Moving or cancelling needs what requesting it needed.
  Status MayChange(const Actor& actor, const DeploymentRecord& d, const std::string& doing);

  // Continues or rejects the manual step a running deployment waits at. Both
  // need the step's role; a rejection fails the step (the plan's `finally`
  // blocks still run). The audit entry is written first: an answer that
  // cannot be audited is not given.
  Status AnswerManual(const Actor& actor, int64_t id, const std::string& comment, bool reject);

  std::shared_ptr<Running> FindRunning(int64_t id);

  // Asks the loop to run the dispatcher (coalesced: one pending pass).
  void Wake();

  // Re-arms the timer for the earliest scheduled deployment (after one was
  // scheduled, moved, cancelled or fired).
  void Rearm();

  void ArmNext();

  // Loop thread: the armed time was reached.
  void OnDeadline();

  // Loop thread: the clock was set by hand (a test's fake clock).
  void OnClockSet();

  // ---- gates
  // What the gates of one waiting deployment say now. Read-only: the caller
  // applies the decisions (in one transaction for a batch).
  struct GateDecision {
    enum class Kind { kGone, kQueue, kWait, kCancel, kFail, kExpire } kind = Kind::kGone;
    std::string text;  // the wait summary, or why it is cancelled / failed
    DeploymentRecord deployment;
  };

  GateDecision Decide(int64_t id);

  // For a record known to be waiting (e.g. just moved there by the scheduler).
  GateDecision Decide(const DeploymentRecord& record);

  // Applies decisions; the ones to queue move in one transaction.
  void Apply(const std::vector<GateDecision>& decisions);

  void EvaluateWaiting(int64_t id) { Apply({Decide(id)}); }

  // What the stage's plan (in the release's snapshot) asks of the targets.
  static PlanNeeds StagePlanNeeds(const AppSpec& spec, const StageSpec& stage);

  // A deployment waiting for its targets' agents expires like a scheduled one
  // that could not start: expires_after past the time it was due.
  // Only when nothing else holds it back (approvals and windows wait as long as
  // they take).
  bool AgentsWaitExpired(const DeploymentRecord& d, const std::vector<GateState>& gates) const;

  // Queued -> running, once every target's agent is connected and can take
  // the build; else back to waiting (gate `agents`) or failed, with nothing
  // changed on any target.
  bool StartIfConnected(const std::shared_ptr<Running>& r);

  // ---- final states
  // One transaction: the log lines waiting to be written, the targets'
  // results and states, the final status and its log line.
  //
  // A refused write is retried (bounded, with a backoff); the first refusal
  // is noted in the log. When the result still cannot be written, the
  // deployment ends `failed` without the targets' states (their agents are
  // asked again); when even that fails, stderr says what was lost and the
  // deployment becomes `interrupted` at the next start.
  // `with_success` (may be null) writes what a success brings in the same
  // transaction as the result (a rollback's hold), so nobody reads the one
  // without the other.
  void Finish(const DeploymentRecord& d, const std::string& status, const std::string& error,
              const std::vector<std::string>& from,
              const std::vector<DeploymentTargetRecord>& targets = {},
              const std::vector<TargetStateRecord>& target_states = {},
              const std::function<Status()>& with_success = nullptr);
  // The hold a successful rollback places on its stage (and its audit entry).
  [[nodiscard]] Status PlaceRollbackHold(const DeploymentRecord& d);

  // ---- events (events.cpp): published once the change is in the store
  // `type` about deployment `d` (its status now `status`).
  void PublishDeployment(const std::string& type, const DeploymentRecord& d,
                         const std::string& status, const std::string& reason = {},
                         const std::string& actor = {});
  // deployment.waiting for `gates` (what holds it back), and
  // approval.needed when approvals are among them.
  void PublishWaiting(const DeploymentRecord& d, const std::string& gates);
  // The event of a final status (deployment.succeeded, plus
  // deployment.rolled-back for a rollback; .failed, .cancelled, .expired).
  void PublishFinished(const DeploymentRecord& d, const std::string& status,
                       const std::string& error);

  // ---- writes that must not be lost
  static constexpr int kWriteAttempts = 4;

  // Waits before retry `n` (1, 2, ...): 100 ms, 200 ms, 400 ms on the
  // engine's clock (a test's fake clock must be moved; at most 30 s of real
  // time are spent waiting for it). False when the engine stops.
  bool Backoff(int n);
  std::condition_variable retry_cv;

  // Runs `write` until it succeeds, kWriteAttempts times at most; each
  // refusal, and giving up, is said on stderr naming `what`.
  Status Persist(const std::string& what, const std::function<Status()>& write);

  // ---- scheduler
  // Fires what is due: gates are decided first (read-only), then every due
  // deployment leaves `scheduled` for where it goes (queued when its gates
  // hold, else waiting; expired past its window) in one IMMEDIATE
  // transaction per batch. The compare-and-set on status and time makes each
  // fire exactly once, also when a user cancels or moves it meanwhile.
  void FireDue();

  static std::string FiringStatus(GateDecision::Kind kind);

  void RecheckWaiting();

  // ---- dispatcher: FIFO per target, a deployment takes all its targets at once
  void Dispatch();

  void RunThread(const std::shared_ptr<Running>& r);

  int Workers() const { return std::max(1, o.workers); }

  // A manual step started waiting: its slot is free for others.
  void PauseSlot(const std::shared_ptr<Running>& r);

  // The manual step was answered: wait for a free slot before going on
  // (ahead of queued deployments). Cancelled or stopping: go on at once, to
  // end.
  void ResumeSlot(const std::shared_ptr<Running>& r, const CancelToken& cancel);

  void JoinEndedRuns();

  void Tick();

  // ---- running one deployment
  void Run(const std::shared_ptr<Running>& r);
  // The final status and error that a plan's execution report stands for.
  std::pair<std::string, std::string> FinalStatus(const Running& r,
                                                  const Result<ExecutionReport>& report);
  // The undo steps of irreversible steps a re-deploy goes back across
  // (irreversible.h); on failure finishes the deployment and returns false.
  bool UndoIrreversible(const DeploymentRecord& d, const ExecutionContext& ctx,
                        const ExecutorOptions& base);
  // A deployment of kind `selective-rollback`: compose-release on each target
  // of its rollback record instead of a plan (rollback_records_run.cpp).
  void RunSelectiveRollback(const std::shared_ptr<Running>& r, const DeploymentRecord& d);
  std::vector<DeploymentTargetRecord> ComposeOnTargets(
      const std::shared_ptr<Running>& r, const DeploymentRecord& d, const RollbackRecord& record,
      const std::vector<RollbackRecordTarget>& targets,
      const std::vector<RollbackComponentRecord>& components, const ExecutionContext& ctx,
      std::string* status_out, std::string* error_out);

  // Reads back what each target holds now (the agent is the truth), falling
  // back on the executor's outcome when the agent cannot say (offline, or
  // nothing deployed by a plan without artifacts).
  // The states are returned to be written with the final status.
  std::vector<TargetStateRecord> RecordTargetStates(const DeploymentRecord& d,
                                                    const ExecutionContext& ctx,
                                                    const ExecutionReport* report);

  // Makes target_states say what the target's agent reports: whatever build
  // it holds, or nothing. `hint` is the deployment that last touched the
  // target, if known (it names the application and stage). Returns a line
  // describing what the agent reports.
  // With `deferred`, a new state is added there instead of written.
  std::string Reconcile(const std::string& target, const TargetState& state,
                        const DeploymentRecord* hint,
                        std::vector<TargetStateRecord>* deferred = nullptr);

  void AuditTarget(const std::string& target, const std::string& summary);

  // A target state that could not be written: the target is read back again
  // later, and the caller learns it was not recorded.
  std::string Unrecorded(const std::string& target, const DeploymentRecord* hint);
  static constexpr const char* kUnrecorded = "not recorded (the store refused the write)";

  // Automatic promotions into a stage that a rollback just put on hold were
  // requested before it: they would undo the rollback, so they do not run.
  void CancelHeldAutomatic(const DeploymentRecord& rollback);

  static std::string HoldReason(const std::string& stage, int64_t rollback_id);

  // The hold on `stage`, if any: the rollback deployment that set it (0: none).
  int64_t HoldOn(const std::string& app, const std::string& stage);

  void AfterSuccess(const DeploymentRecord& d, const AppSpec& spec, const std::string& kind);

  // ---- recovery
  // At start: what this server left running, and what other servers left
  // running with a lapsed lease, becomes interrupted.
  void Recover();
  std::vector<DeploymentRecord> interrupted;
  // Interrupts what InterruptOrphaned returned: log, audit, event, targets
  // `interrupted`; returns the records (their targets are to be read back).
  std::vector<DeploymentRecord> Interrupt(const std::vector<OrphanedDeployment>& orphans);
  static constexpr const char* kStoppedWhileRunning = "the server stopped while it was running";

  // ---- leases: several servers on one store (leases.cpp)
  std::string server_id;
  // Another server renewed its presence lease within a lease period (the
  // dispatcher then leaves deployments whose agents are elsewhere to them).
  std::atomic<bool> others_alive{false};
  // Loop thread: queued deployments this server could not run (their agents
  // are connected elsewhere), since when; after a whole lease unclaimed by
  // anyone, this server claims them anyway (to send them back to waiting).
  std::map<int64_t, TimePoint> unrunnable_since;
  // When the leases were last renewed (lease thread).
  TimePoint renewed_at{};
  std::condition_variable lease_cv;
  static constexpr const char* kPresencePrefix = "server:";

  int64_t LeaseUntil() const { return Now() + o.lease.count(); }
  // Every lease_renew: this server's presence, the leases of what it runs
  // (cancelling what it lost), and taking over what lapsed elsewhere.
  void LeaseLoop();
  void RenewLeases();
  void TakeOverLapsed();
  // Whether this server can run `d` now: every target's agent is connected
  // here (or its plan needs no agent).
  bool CanRunHere(const DeploymentRecord& d);
  // Of `candidates` (in dispatch order), those to claim now.
  std::vector<DeploymentRecord> Claimable(const std::vector<DeploymentRecord>& candidates);

  // ---- reading back what targets hold
  // Targets whose agent has not told yet what they hold: those of
  // interrupted deployments (with the deployment), and every target of an
  // agent that (re)connected. Retried until the agent answers, however late.
  std::mutex read_back_mu;
  std::condition_variable read_back_cv;
  std::map<std::string, std::optional<DeploymentRecord>> unread;
  std::map<std::string, std::string> agent_connections;  // agent -> address while online
  std::map<std::string, bool> agent_approved;

  void ReadBackLoop();

  // Agents that connected since the last look (a new address): their targets
  // are read back.
  void NoticeConnections();

  // Reading a target's state uses it like a deployment does: not while one
  // runs there, and none starts while it is read.
  bool ClaimTarget(const std::string& target);
  void ReleaseTarget(const std::string& target);
};

}  // namespace reprise
