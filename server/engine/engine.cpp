#include "server/engine/engine.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "planner/executor.h"
#include "planner/plan.h"
#include "server/catalog/catalog.h"
#include "server/engine/connection_check.h"
#include "server/engine/engine_internal.h"
#include "server/engine/engine_loop.h"
#include "server/hub/agent_hub.h"

namespace reprise {

using namespace engine_internal;
using nlohmann::json;

namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr const char* kRedeployPermission = "redeploy";
// An `at` this far in the past still means "now" (clocks of clients differ a
// little); further back it is refused rather than quietly run now.
constexpr std::chrono::seconds kPastAtTolerance{60};

Status CheckNotPast(TimePoint at, TimePoint now) {
  if (at >= now - kPastAtTolerance) return Status::Ok();
  auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - at).count();
  return InvalidArgument("field 'at' (" + FormatRfc3339Utc(at) + ") is " + std::to_string(ago) +
                         " s in the past (now " + FormatRfc3339Utc(now) +
                         "); give a time in the future, or leave 'at' out to deploy now");
}

bool IsFinal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "interrupted" || status == "expired";
}

}  // namespace

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
};

// The `manual` step of one running deployment. While it waits, the
// deployment gives up its worker slot (its thread only sleeps), so paused
// deployments never keep others from starting; it takes a slot again before
// going on.
class ManualGate final : public ManualContinuation {
 public:
  ManualGate(std::shared_ptr<Running> running, std::function<void()> pause,
             std::function<void(const CancelToken&)> resume)
      : running_(std::move(running)), pause_(std::move(pause)), resume_(std::move(resume)) {}

  OperationOutcome WaitForContinue(const ManualRequest& request,
                                   const CancelToken& cancel) override {
    {
      std::lock_guard lock(running_->mu);
      running_->manual = PendingManual{request.message, request.role, request.step_id};
      running_->answer = Running::ManualAnswer::kNone;
    }
    pause_();
    {
      std::unique_lock lock(running_->mu);
      while (running_->answer == Running::ManualAnswer::kNone && !cancel.IsCancelled())
        running_->manual_cv.wait_for(lock, std::chrono::milliseconds(200));
      running_->manual.reset();
    }
    resume_(cancel);
    std::lock_guard lock(running_->mu);
    if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("cancelled while waiting"));
    if (running_->answer == Running::ManualAnswer::kReject)
      return OperationOutcome::Failed(
          "rejected by " + running_->answer_by +
          (running_->answer_comment.empty() ? "" : ": " + running_->answer_comment));
    return OperationOutcome::Succeeded();
  }

 private:
  std::shared_ptr<Running> running_;
  std::function<void()> pause_;
  std::function<void(const CancelToken&)> resume_;
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
           const std::string& text) {
    {
      std::lock_guard lock(pending_mu);
      pending_lines.push_back({id, 0, Now(), target, level, text});
    }
    pending_cv.notify_one();
  }

  void FlushLogs() {
    std::lock_guard flushing(flush_mu);
    std::vector<DeploymentLogRecord> batch;
    {
      std::lock_guard lock(pending_mu);
      batch.swap(pending_lines);
    }
    if (batch.empty()) return;
    Status st = store->AppendDeploymentLogs(batch);
    if (!st.ok()) {
      // Kept for the next flush (one every 50 ms), a few times at most.
      bool keep = ++log_write_failures < kWriteAttempts;
      std::fprintf(stderr, "store: writing %zu deployment log lines failed%s: %s\n", batch.size(),
                   keep ? "; retrying" : "; they are lost", st.ToString().c_str());
      if (keep) {
        std::lock_guard lock(pending_mu);
        pending_lines.insert(pending_lines.begin(), batch.begin(), batch.end());
        return;
      }
    }
    log_write_failures = 0;
    log_cv.notify_all();
  }
  int log_write_failures = 0;  // guarded by flush_mu

  void LogFlushLoop() {
    std::unique_lock lock(pending_mu);
    while (true) {
      pending_cv.wait_for(lock, std::chrono::milliseconds(50));
      bool stop;
      {
        std::lock_guard l(mu);
        stop = stopping;
      }
      lock.unlock();
      FlushLogs();
      lock.lock();
      if (stop && pending_lines.empty()) return;
    }
  }

  AuditRecord AuditOf(const std::string& actor, const std::string& action, int64_t id,
                      const std::string& summary) {
    return {0, Now(), actor, action, "deployment " + std::to_string(id), summary};
  }
  // For what the server does by itself (expiry, recovery, automation); a
  // user's change is audited in its own transaction (Store::Atomically).
  void Audit(const std::string& actor, const std::string& action, int64_t id,
             const std::string& summary) {
    AuditRecord entry = AuditOf(actor, action, id, summary);
    Status st = Persist("the audit entry '" + action + "' of deployment " + std::to_string(id),
                        [&] { return store->AppendAudit(entry); });
    if (!st.ok())
      Log(id, "", "error", "the audit entry '" + action + "' was lost: " + st.message());
  }

  // Release snapshots never change: parse each once.
  std::mutex specs_mu;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const AppSpec>> specs;

  Result<std::shared_ptr<const AppSpec>> Spec(const std::string& app, const std::string& release) {
    {
      std::lock_guard lock(specs_mu);
      auto it = specs.find({app, release});
      if (it != specs.end()) return it->second;
    }
    auto spec = ReleaseSpec(*store, app, release);
    if (!spec.ok()) return spec.status();
    auto shared = std::make_shared<const AppSpec>(std::move(spec).value());
    std::lock_guard lock(specs_mu);
    if (specs.size() > 1000) specs.clear();
    specs[{app, release}] = shared;
    return shared;
  }

  // ---- permissions
  // Protected when the release's snapshot or the application's current spec
  // says so (protecting a stage applies to releases cut before).
  bool IsProtected(const std::string& app, const StageSpec& stage) {
    if (stage.is_protected) return true;
    auto a = store->GetApplication(app);
    if (!a.ok()) return false;
    auto now = ParseAppSpec(a->spec_json, "application spec");
    if (!now.ok()) return false;
    const StageSpec* current = now->FindStage(stage.stage);
    return current != nullptr && current->is_protected;
  }

  // Whether `actor` may request, move or cancel a deployment of `kind` to
  // `stage`: the role deployer; on a protected stage release-manager, or for
  // a re-deploy or rollback (a build that succeeded there before) the
  // `redeploy` grant on the stage's environment.
  Status MayDeploy(const Actor& actor, const std::string& app, const StageSpec& stage,
                   const std::string& kind, const std::string& doing) {
    if (actor.role < Role::kDeployer)
      return PermissionDenied(doing + " needs the role deployer; '" + actor.user + "' is " +
                              RoleName(actor.role));
    if (actor.role >= Role::kReleaseManager || !IsProtected(app, stage)) return Status::Ok();
    bool redeploy = kind == "redeploy" || kind == "rollback";
    if (redeploy) {
      auto has = store->HasGrant(stage.environment, actor.user, kRedeployPermission);
      if (!has.ok()) return has.status();
      if (*has) return Status::Ok();
    }
    return PermissionDenied(
        "stage '" + stage.stage + "' is protected: " + doing + " needs the role release-manager" +
        (redeploy ? " or the 'redeploy' grant on environment '" + stage.environment + "'"
                  : std::string()) +
        "; '" + actor.user + "' is " + RoleName(actor.role));
  }

  // Moving or cancelling needs what requesting it needed.
  Status MayChange(const Actor& actor, const DeploymentRecord& d, const std::string& doing) {
    auto spec = Spec(d.application, d.release);
    if (!spec.ok()) return spec.status();
    const StageSpec* stage = (*spec)->FindStage(d.stage);
    if (stage == nullptr) {
      if (actor.role >= Role::kReleaseManager) return Status::Ok();
      return PermissionDenied(doing + " needs the role release-manager: stage '" + d.stage +
                              "' is not in the release's pipeline");
    }
    return MayDeploy(
        actor, d.application, *stage, d.kind,
        doing + " (" + (d.kind.empty() ? "a deployment" : "a " + d.kind) + " to " + d.stage + ")");
  }

  // Continues or rejects the manual step a running deployment waits at. Both
  // need the step's role; a rejection fails the step (the plan's `finally`
  // blocks still run). The audit entry is written first: an answer that
  // cannot be audited is not given.
  Status AnswerManual(const Actor& actor, int64_t id, const std::string& comment, bool reject) {
    std::shared_ptr<Running> r = FindRunning(id);
    if (!r) return FailedPrecondition("deployment " + std::to_string(id) + " is not running");
    std::unique_lock lock(r->mu);
    if (!r->manual)
      return FailedPrecondition("deployment " + std::to_string(id) +
                                " is not waiting at a manual step");
    if (r->answer != Running::ManualAnswer::kNone)
      return FailedPrecondition("the manual step of deployment " + std::to_string(id) +
                                " was answered already by " + r->answer_by);
    const std::string doing = reject ? "rejecting" : "continuing";
    std::optional<Role> needed =
        r->manual->role.empty() ? Role::kDeployer : ParseRole(r->manual->role);
    // Plans are checked when stored; an older snapshot may still name a role
    // that does not exist: then only an admin may answer.
    if (!needed && actor.role < Role::kAdmin)
      return PermissionDenied("this step names the unknown role '" + r->manual->role +
                              "'; only an admin can " + (reject ? "reject" : "continue") + " it");
    if (needed && actor.role < *needed)
      return PermissionDenied(doing + " this step needs the role " +
                              std::string(RoleName(*needed)) + "; '" + actor.user + "' is " +
                              RoleName(actor.role));
    std::string action = reject ? "deployment.reject" : "deployment.continue";
    std::string summary = (reject ? "rejected the manual step: " : "") + r->manual->message +
                          (comment.empty() ? "" : " (" + comment + ")");
    REPRISE_RETURN_IF_ERROR(store->AppendAudit(AuditOf(actor.user, action, id, summary)));
    r->answer = reject ? Running::ManualAnswer::kReject : Running::ManualAnswer::kContinue;
    r->answer_by = actor.user;
    r->answer_comment = comment;
    lock.unlock();
    r->manual_cv.notify_all();
    Log(id, "", reject ? "warning" : "info",
        std::string(reject ? "rejected" : "continued") + " by " + actor.user +
            (comment.empty() ? "" : ": " + comment));
    return Status::Ok();
  }

  std::shared_ptr<Running> FindRunning(int64_t id) {
    std::lock_guard lock(mu);
    auto it = running.find(id);
    return it == running.end() ? nullptr : it->second;
  }

  // Asks the loop to run the dispatcher (coalesced: one pending pass).
  void Wake() {
    if (!loop || dispatch_posted.exchange(true)) return;
    loop->Post([this] {
      dispatch_posted = false;
      Dispatch();
    });
  }

  // Re-arms the timer for the earliest scheduled deployment (after one was
  // scheduled, moved, cancelled or fired).
  void Rearm() {
    if (!loop || rearm_posted.exchange(true)) return;
    loop->Post([this] {
      rearm_posted = false;
      ArmNext();
    });
  }

  void ArmNext() {
    auto next = store->NextScheduledAt();
    if (!next.ok()) {
      std::fprintf(stderr, "scheduler: %s\n", next.status().ToString().c_str());
      return;
    }
    loop->ArmDeadline(*next == 0 ? std::nullopt : std::optional<TimePoint>(FromUnixMillis(*next)));
  }

  // Loop thread: the armed time was reached.
  void OnDeadline() {
    FireDue();
    Dispatch();
    ArmNext();
  }

  // Loop thread: the clock was set by hand (a test's fake clock).
  void OnClockSet() {
    FireDue();
    last_recheck = clock->Now();
    RecheckWaiting();
    Dispatch();
    ArmNext();
  }

  // ---- gates
  // What the gates of one waiting deployment say now. Read-only: the caller
  // applies the decisions (in one transaction for a batch).
  struct GateDecision {
    enum class Kind { kGone, kQueue, kWait, kCancel, kFail, kExpire } kind = Kind::kGone;
    std::string text;  // the wait summary, or why it is cancelled / failed
    DeploymentRecord deployment;
  };

  GateDecision Decide(int64_t id) {
    auto d = store->GetDeployment(id);
    if (!d.ok() || d->status != "waiting") return GateDecision{};
    return Decide(*d);
  }

  // For a record known to be waiting (e.g. just moved there by the scheduler).
  GateDecision Decide(const DeploymentRecord& record) {
    GateDecision out;
    out.deployment = record;
    out.deployment.status = "waiting";
    const DeploymentRecord* d = &out.deployment;
    auto shared_spec = Spec(d->application, d->release);
    if (!shared_spec.ok()) {
      out.kind = GateDecision::Kind::kFail;
      out.text = shared_spec.status().message();
      return out;
    }
    const AppSpec* spec = shared_spec->get();
    const StageSpec* stage = spec->FindStage(d->stage);
    if (stage == nullptr) {
      out.kind = GateDecision::Kind::kFail;
      out.text = "stage '" + d->stage + "' is not in the release's pipeline";
      return out;
    }
    if (d->automatic) {
      if (int64_t hold = HoldOn(d->application, d->stage); hold != 0) {
        out.kind = GateDecision::Kind::kCancel;
        out.text = HoldReason(d->stage, hold);
        return out;
      }
    }
    std::string rejected;
    auto gates = EvaluateGates(*store, *clock, *d, *spec, *stage, &rejected);
    if (!rejected.empty()) {
      out.kind = GateDecision::Kind::kCancel;
      out.text = "rejected by " + rejected;
      return out;
    }
    if (o.hub != nullptr && StagePlanNeeds(*spec, *stage).touches_targets) {
      gates.push_back(AgentsGate(*o.hub, SplitCsv(d->targets_csv)));
      if (AgentsWaitExpired(*d, gates)) {
        out.kind = GateDecision::Kind::kExpire;
        out.text = "its targets' agents were not back within its expiry window of " +
                   std::to_string(d->expires_after_ms / kMillisPerSecond) +
                   " s: " + gates.back().detail;
        return out;
      }
    }
    for (const auto& g : gates)
      if (!g.holds) out.text += (out.text.empty() ? "" : "; ") + g.gate + ": " + g.detail;
    out.kind = out.text.empty() ? GateDecision::Kind::kQueue : GateDecision::Kind::kWait;
    if (out.kind == GateDecision::Kind::kQueue && !gates.empty()) out.text = "gates hold";
    return out;
  }

  // Applies decisions; the ones to queue move in one transaction.
  void Apply(const std::vector<GateDecision>& decisions) {
    std::vector<int64_t> to_queue;
    for (const auto& g : decisions) {
      switch (g.kind) {
        case GateDecision::Kind::kGone:
          break;
        case GateDecision::Kind::kExpire:
          Finish(g.deployment, "expired", g.text, {"waiting"});
          Audit("scheduler", "deployment.expire", g.deployment.id, g.text);
          break;
        case GateDecision::Kind::kQueue:
          to_queue.push_back(g.deployment.id);
          break;
        case GateDecision::Kind::kFail:
          Finish(g.deployment, "failed", g.text, {"waiting"});
          break;
        case GateDecision::Kind::kCancel:
          Finish(g.deployment, "cancelled", g.text, {"waiting"});
          break;
        case GateDecision::Kind::kWait: {
          bool changed;
          {
            std::lock_guard lock(mu);
            changed = gate_summaries[g.deployment.id] != g.text;
            gate_summaries[g.deployment.id] = g.text;
          }
          if (changed) Log(g.deployment.id, "", "info", "waiting for gates: " + g.text);
          break;
        }
      }
    }
    if (to_queue.empty()) return;
    auto moved = store->TransitionDeployments(to_queue, {"waiting"}, "queued");
    if (!moved.ok()) {  // they stay waiting: the next re-check queues them
      std::fprintf(stderr, "store: queueing %zu waiting deployments failed (retried): %s\n",
                   to_queue.size(), moved.status().ToString().c_str());
      return;
    }
    for (const auto& g : decisions) {
      if (std::find(moved->begin(), moved->end(), g.deployment.id) == moved->end()) continue;
      Log(g.deployment.id, "", "info", g.text.empty() ? "queued" : g.text + "; queued");
      std::lock_guard lock(mu);
      gate_summaries.erase(g.deployment.id);
    }
    Wake();
  }

  void EvaluateWaiting(int64_t id) { Apply({Decide(id)}); }

  // What the stage's plan (in the release's snapshot) asks of the targets.
  static PlanNeeds StagePlanNeeds(const AppSpec& spec, const StageSpec& stage) {
    auto plan = spec.plans.find(stage.plan);
    return plan == spec.plans.end() ? PlanNeeds{} : NeedsOf(plan->second);
  }

  // A deployment waiting for its targets' agents expires like a scheduled one
  // that could not start: expires_after past the time it was due.
  // Only when nothing else holds it back (approvals and windows wait as long as
  // they take).
  bool AgentsWaitExpired(const DeploymentRecord& d, const std::vector<GateState>& gates) const {
    const GateState& agents = gates.back();
    if (agents.holds || d.expires_after_ms <= 0) return false;
    for (size_t i = 0; i + 1 < gates.size(); ++i)
      if (!gates[i].holds) return false;
    int64_t due = d.scheduled_at != 0 ? d.scheduled_at : d.created_at;
    return Now() - due > d.expires_after_ms;
  }

  // Queued -> running, once every target's agent is connected and can take
  // the build; else back to waiting (gate `agents`) or failed, with nothing
  // changed on any target.
  bool StartIfConnected(const std::shared_ptr<Running>& r) {
    auto d = store->GetDeployment(r->id);
    if (!d.ok() || d->status != "queued") return false;
    auto spec = Spec(d->application, d->release);
    const StageSpec* stage = spec.ok() ? (*spec)->FindStage(d->stage) : nullptr;
    if (o.hub != nullptr && stage != nullptr) {  // else running it says what is wrong
      StartCheck check =
          CheckBeforeStart(*o.hub, *store, *d, r->targets, StagePlanNeeds(**spec, *stage));
      for (const auto& [target, text] : check.lines)
        Log(d->id, target, check.verdict == StartCheck::Verdict::kRun ? "info" : "warning", text);
      if (check.verdict == StartCheck::Verdict::kFail) {
        Finish(*d, "failed", "nothing was changed: " + check.text, {"queued"});
        return false;
      }
      if (check.verdict == StartCheck::Verdict::kWait) {
        auto moved = store->TransitionDeployment(d->id, {"queued"}, "waiting");
        if (moved.ok() && *moved) {
          std::string summary = "agents: " + check.text;
          {
            std::lock_guard lock(mu);
            gate_summaries[d->id] = summary;
          }
          Log(d->id, "", "info", "waiting for gates: " + summary);
        }
        return false;
      }
    }
    {
      std::lock_guard lock(mu);  // the server began stopping meanwhile: it stays queued
      if (stopping) return false;
    }
    auto moved = store->TransitionDeployment(d->id, {"queued"}, "running", Now());
    return moved.ok() && *moved;
  }

  // ---- final states
  // One transaction: the log lines waiting to be written, the targets'
  // results and states, the final status and its log line.
  //
  // A refused write is retried (bounded, with a backoff); the first refusal
  // is noted in the log. When the result still cannot be written, the
  // deployment ends `failed` without the targets' states (their agents are
  // asked again); when even that fails, stderr says what was lost and the
  // deployment becomes `interrupted` at the next start.
  void Finish(const DeploymentRecord& d, const std::string& status, const std::string& error,
              const std::vector<std::string>& from,
              const std::vector<DeploymentTargetRecord>& targets = {},
              const std::vector<TargetStateRecord>& target_states = {}) {
    std::lock_guard flushing(flush_mu);
    std::vector<DeploymentLogRecord> batch;
    {
      std::lock_guard lock(pending_mu);
      batch.swap(pending_lines);
    }
    auto line = [&](const std::string& level, const std::string& text) {
      return std::vector<DeploymentLogRecord>{{d.id, 0, Now(), "", level, text}};
    };
    auto finish = [&](const std::string& st, const std::string& why,
                      const std::vector<TargetStateRecord>& states) {
      auto final_line =
          line(st == "succeeded" ? "info" : "error", st + (why.empty() ? "" : ": " + why));
      return store->FinishDeployment(d.id, from, st, Now(), why, targets, states, batch,
                                     final_line);
    };
    std::string what = "the result (" + status + ") of deployment " + std::to_string(d.id);
    Result<bool> moved = finish(status, error, target_states);
    for (int attempt = 2; !moved.ok() && attempt <= kWriteAttempts; ++attempt) {
      std::fprintf(stderr, "store: writing %s failed (attempt %d of %d): %s\n", what.c_str(),
                   attempt - 1, kWriteAttempts, moved.status().ToString().c_str());
      if (attempt == 2) {
        // Say so in the log now; the lines so far go first, in order.
        auto notice = line("warning", "could not record the result yet (" +
                                          moved.status().message() + "); retrying");
        batch.insert(batch.end(), notice.begin(), notice.end());
        if (store->AppendDeploymentLogs(batch).ok()) batch.clear();
        log_cv.notify_all();
      }
      if (!Backoff(attempt - 1)) break;
      moved = finish(status, error, target_states);
    }
    if (!moved.ok()) {
      std::string why = "the result could not be recorded: " + moved.status().message();
      std::fprintf(stderr, "store: gave up writing %s: %s\n", what.c_str(),
                   moved.status().ToString().c_str());
      moved = finish("failed", error.empty() ? why : error + "; " + why, {});
      if (moved.ok()) {
        std::lock_guard lock(read_back_mu);  // what the targets hold is read back
        for (const auto& state : target_states) unread[state.current.target] = d;
      }
    }
    if (!moved.ok()) {
      std::fprintf(stderr,
                   "store: lost the end of deployment %lld (%s, %zu log lines): %s; it becomes "
                   "interrupted at the next start\n",
                   static_cast<long long>(d.id), status.c_str(), batch.size(),
                   moved.status().ToString().c_str());
      std::lock_guard lock(pending_mu);  // the lines are written with the next flush
      pending_lines.insert(pending_lines.begin(), batch.begin(), batch.end());
    }
    log_cv.notify_all();
  }

  // ---- writes that must not be lost
  static constexpr int kWriteAttempts = 4;

  // Waits before retry `n` (1, 2, ...): 100 ms, 200 ms, 400 ms on the
  // engine's clock (a test's fake clock must be moved; at most 30 s of real
  // time are spent waiting for it). False when the engine stops.
  bool Backoff(int n) {
    auto delay = std::chrono::milliseconds(100) * (1 << std::min(n - 1, 4));
    TimePoint until = clock->Now() + delay;
    auto give_up = std::chrono::steady_clock::now() +
                   std::max<std::chrono::milliseconds>(delay, std::chrono::seconds(30));
    std::unique_lock lock(mu);
    while (!stopping && clock->Now() < until && std::chrono::steady_clock::now() < give_up)
      retry_cv.wait_for(lock, std::chrono::milliseconds(10));
    return !stopping;
  }
  std::condition_variable retry_cv;

  // Runs `write` until it succeeds, kWriteAttempts times at most; each
  // refusal, and giving up, is said on stderr naming `what`.
  Status Persist(const std::string& what, const std::function<Status()>& write) {
    Status st = write();
    for (int attempt = 2; !st.ok() && attempt <= kWriteAttempts; ++attempt) {
      std::fprintf(stderr, "store: writing %s failed (attempt %d of %d): %s\n", what.c_str(),
                   attempt - 1, kWriteAttempts, st.ToString().c_str());
      if (!Backoff(attempt - 1)) break;
      st = write();
    }
    if (!st.ok())
      std::fprintf(stderr, "store: gave up writing %s; it is lost: %s\n", what.c_str(),
                   st.ToString().c_str());
    return st;
  }

  // ---- scheduler
  // Fires what is due: gates are decided first (read-only), then every due
  // deployment leaves `scheduled` for where it goes (queued when its gates
  // hold, else waiting; expired past its window) in one IMMEDIATE
  // transaction per batch. The compare-and-set on status and time makes each
  // fire exactly once, also when a user cancels or moves it meanwhile.
  void FireDue() {
    for (;;) {
      int64_t now = Now();
      auto due = store->DueScheduled(now, 500);
      if (!due.ok() || due->empty()) return;
      std::vector<ScheduledFiring> firings;
      std::vector<GateDecision> decisions;
      for (const auto& d : *due) {
        GateDecision g;
        g.deployment = d;
        int64_t late = now - d.scheduled_at;
        if (late > d.expires_after_ms) {
          g.kind = GateDecision::Kind::kExpire;
          g.text = "fell due at " + FormatRfc3339Utc(FromUnixMillis(d.scheduled_at)) +
                   " but did not start within its expiry window of " +
                   std::to_string(d.expires_after_ms / kMillisPerSecond) + " s";
        } else {
          g = Decide(d);
        }
        firings.push_back({d.id, FiringStatus(g.kind), g.text});
        decisions.push_back(std::move(g));
      }
      auto moved = store->FireScheduled(firings, now, Now());
      if (!moved.ok()) {
        std::fprintf(stderr, "scheduler: %s\n", moved.status().ToString().c_str());
        return;
      }
      std::set<int64_t> fired(moved->begin(), moved->end());
      bool queued = false;
      for (const auto& g : decisions) {
        int64_t id = g.deployment.id;
        if (!fired.count(id)) continue;
        if (g.kind == GateDecision::Kind::kExpire) {
          Log(id, "", "warning", "expired: " + g.text);
          Audit("scheduler", "deployment.expire", id, g.text);
          continue;
        }
        Log(id, "", "info",
            "scheduled time " + FormatRfc3339Utc(FromUnixMillis(g.deployment.scheduled_at)) +
                " reached");
        switch (g.kind) {
          case GateDecision::Kind::kQueue:
            Log(id, "", "info", g.text.empty() ? "queued" : g.text + "; queued");
            queued = true;
            break;
          case GateDecision::Kind::kWait: {
            std::lock_guard lock(mu);
            gate_summaries[id] = g.text;
          }
            Log(id, "", "info", "waiting for gates: " + g.text);
            break;
          case GateDecision::Kind::kCancel:
          case GateDecision::Kind::kFail: {
            std::string status = g.kind == GateDecision::Kind::kCancel ? "cancelled" : "failed";
            Log(id, "", "error", status + ": " + g.text);
            break;
          }
          default:
            break;
        }
      }
      if (queued) Wake();
      log_cv.notify_all();
      if (due->size() < 500) return;
    }
  }

  static std::string FiringStatus(GateDecision::Kind kind) {
    switch (kind) {
      case GateDecision::Kind::kQueue:
        return "queued";
      case GateDecision::Kind::kWait:
        return "waiting";
      case GateDecision::Kind::kCancel:
        return "cancelled";
      case GateDecision::Kind::kExpire:
        return "expired";
      default:
        return "failed";
    }
  }

  void RecheckWaiting() {
    // Oldest first, every page: the oldest waiting ones must not starve.
    for (int64_t offset = 0;; offset += 1000) {
      auto waiting = store->ListDeployments({"", "", {"waiting"}, true}, {1000, offset});
      if (!waiting.ok()) return;
      std::vector<GateDecision> decisions;
      for (const auto& d : *waiting) decisions.push_back(Decide(d));
      Apply(decisions);
      if (waiting->size() < 1000) return;
    }
  }

  // ---- dispatcher: FIFO per target, a deployment takes all its targets at once
  void Dispatch() {
    JoinEndedRuns();
    if (!o.start_threads) return;  // nothing runs without threads
    // Oldest first: FIFO per target. Later pages can only start once the
    // first 1000 have made room, which keeps the order.
    auto queued = store->ListDeployments({"", "", {"queued"}, true}, {1000, 0});
    if (!queued.ok()) return;
    std::lock_guard lock(mu);
    if (stopping) return;
    std::set<std::string> claimed = busy_targets;
    for (const auto& d : *queued) {
      auto targets = SplitCsv(d.targets_csv);
      bool free = std::none_of(targets.begin(), targets.end(),
                               [&](const std::string& t) { return claimed.count(t) > 0; });
      for (const auto& t : targets) claimed.insert(t);  // later ones wait behind this one
      if (!free || running.count(d.id)) continue;       // (its connection is being checked)
      if (active + resuming >= Workers()) break;
      // The run thread checks the targets' agents, then moves it to running.
      ++active;
      auto r = std::make_shared<Running>();
      r->id = d.id;
      r->targets = targets;
      running[d.id] = r;
      for (const auto& t : targets) {
        busy_targets.insert(t);
        target_deployment[t] = d.id;
      }
      run_threads[d.id] = std::thread([this, r] { RunThread(r); });
    }
  }

  void RunThread(const std::shared_ptr<Running>& r) {
    bool stop;
    {
      std::lock_guard lock(mu);
      stop = stopping;
    }
    // Dispatched but stopping: it stays queued for the next start.
    if (!stop && StartIfConnected(r)) Run(r);
    {
      std::lock_guard lock(mu);
      running.erase(r->id);
      for (const auto& t : r->targets) {
        busy_targets.erase(t);
        target_deployment.erase(t);
      }
      ended_runs.push_back(r->id);
      if (r->holds_slot) --active;
      r->holds_slot = false;
    }
    slot_cv.notify_all();
    idle_cv.notify_all();
    Wake();
  }

  int Workers() const { return std::max(1, o.workers); }

  // A manual step started waiting: its slot is free for others.
  void PauseSlot(const std::shared_ptr<Running>& r) {
    {
      std::lock_guard lock(mu);
      if (!r->holds_slot) return;
      r->holds_slot = false;
      --active;
    }
    slot_cv.notify_all();
    Wake();
  }

  // The manual step was answered: wait for a free slot before going on
  // (ahead of queued deployments). Cancelled or stopping: go on at once, to
  // end.
  void ResumeSlot(const std::shared_ptr<Running>& r, const CancelToken& cancel) {
    std::unique_lock lock(mu);
    if (r->holds_slot) return;
    ++resuming;
    while (active >= Workers() && !stopping && !cancel.IsCancelled())
      slot_cv.wait_for(lock, std::chrono::milliseconds(200));
    --resuming;
    if (stopping || cancel.IsCancelled()) return;
    ++active;
    r->holds_slot = true;
  }

  void JoinEndedRuns() {
    std::vector<std::thread> ended;
    {
      std::lock_guard lock(mu);
      for (int64_t id : ended_runs) {
        auto it = run_threads.find(id);
        if (it == run_threads.end()) continue;
        ended.push_back(std::move(it->second));
        run_threads.erase(it);
      }
      ended_runs.clear();
    }
    for (auto& t : ended) t.join();
  }

  void Tick() {
    FireDue();
    TimePoint now = clock->Now();
    if (now - last_recheck >= o.gate_recheck || now < last_recheck) {
      last_recheck = now;
      RecheckWaiting();
    }
    Dispatch();
  }

  // ---- running one deployment
  void Run(const std::shared_ptr<Running>& r) {
    auto d = store->GetDeployment(r->id);
    if (!d.ok()) return;
    auto fail = [&](const std::string& why) { Finish(*d, "failed", why, {"running"}); };
    auto shared_spec = Spec(d->application, d->release);
    if (!shared_spec.ok()) return fail(shared_spec.status().message());
    const AppSpec* spec = shared_spec->get();
    const StageSpec* stage = spec->FindStage(d->stage);
    if (stage == nullptr) return fail("stage '" + d->stage + "' is not in the release's pipeline");
    auto kind = ComputeKind(*store, d->application, d->release, d->build, d->stage);
    if (!kind.ok()) return fail(kind.status().message());
    std::string choice = d->context_choice;
    if (choice == "as-deployed" && !kind->succeeded_before) choice = "current";
    auto ctx = ResolveContext(*store, *d, *spec, *stage, *kind, choice);
    if (!ctx.ok()) return fail("cannot resolve the execution context: " + ctx.status().message());
    auto plan = ParsePlan(ctx->plan_text, "plan " + ctx->plan_name);
    std::vector<DeploymentTargetRecord> starting;
    if (plan.ok())
      for (const auto& t : r->targets)
        starting.push_back({d->id, t, "running", "", "", "", Now(), 0});
    Status saved = store->StartDeployment(d->id, ContextToJson(*ctx), kind->kind, starting);
    if (!saved.ok()) return fail(saved.message());
    Log(d->id, "", "info",
        "running " + kind->kind + " of " + BuildLabel(d->release, d->build) + " to " + d->stage +
            " (variables " + (choice == "as-deployed" ? "as deployed" : "current settings") +
            (kind->current_label.empty() ? "" : "; the stage had " + kind->current_label) + ")");
    if (!plan.ok()) return fail(plan.status().message());
    if (o.hub == nullptr) return fail("no agent hub is configured");
    auto operations = o.hub->OperationsFor(*ctx);
    // The executor logs the waiting line (with the step's position).
    ManualGate manual(
        r, [this, r] { PauseSlot(r); }, [this, r](const CancelToken& c) { ResumeSlot(r, c); });
    ExecutorOptions eo;
    eo.clock = clock;
    eo.operations = operations.get();
    eo.manual = &manual;
    eo.cancel = &r->cancel;
    eo.log_sink = [this, id = d->id](const LogLine& line) {
      Log(id, line.target, std::string(LogLevelName(line.level)), line.text);
    };
    Executor executor(eo);
    auto report = executor.Execute(*plan, *ctx);
    std::string status = "failed";
    std::string error;
    std::vector<DeploymentTargetRecord> results;
    if (!report.ok()) {
      error = "orchestration error: " + report.status().message();
    } else {
      switch (report->outcome) {
        case Outcome::kSucceeded:
          status = "succeeded";
          break;
        case Outcome::kFailed:
          error = report->message;
          break;
        case Outcome::kCancelled: {
          std::lock_guard lock(mu);
          if (stopping) {
            status = "interrupted";
            error = "the server stopped while it was running";
          } else {
            status = "cancelled";
            error = "cancelled";
          }
          break;
        }
        case Outcome::kError:
          error = "orchestration error: " + report->error.message();
          break;
      }
      for (const auto& t : TargetResults(*plan, *ctx, *report))
        results.push_back({d->id, t.target, t.status, t.message, "", "", d->started_at, Now()});
    }
    auto states = RecordTargetStates(*d, *ctx, report.ok() ? &*report : nullptr);
    Finish(*d, status, error, {"running"}, results, states);
    if (status == "succeeded") AfterSuccess(*d, *spec, kind->kind);
  }

  // Reads back what each target holds now (the agent is the truth), falling
  // back on the executor's outcome when the agent cannot say (offline, or
  // nothing deployed by a plan without artifacts).
  // The states are returned to be written with the final status.
  std::vector<TargetStateRecord> RecordTargetStates(const DeploymentRecord& d,
                                                    const ExecutionContext& ctx,
                                                    const ExecutionReport* report) {
    std::vector<TargetStateRecord> out;
    for (const auto& t : ctx.targets) {
      if (o.hub != nullptr) {
        auto state = o.hub->GetTargetState(t.name);
        bool answered = state.ok() && state->online;
        {
          // An agent lost during the deployment may have switched before it
          // went: read the target back when it returns, for this deployment.
          std::lock_guard lock(read_back_mu);
          if (answered)
            unread.erase(t.name);
          else
            unread[t.name] = d;
        }
        if (answered && !state->current_release.empty()) {
          Reconcile(t.name, *state, &d, &out);
          continue;
        }
      }
      if (report == nullptr) continue;
      for (const auto& outcome : report->targets)
        if (outcome.target == t.name && outcome.kind == TargetOutcome::Kind::kSucceeded)
          out.push_back({d.application, d.stage,
                         TargetCurrent{t.name, d.release, d.build, d.id, Now(), d.requested_by},
                         ""});
    }
    return out;
  }

  // Makes target_states say what the target's agent reports: whatever build
  // it holds, or nothing. `hint` is the deployment that last touched the
  // target, if known (it names the application and stage). Returns a line
  // describing what the agent reports.
  // With `deferred`, a new state is added there instead of written.
  std::string Reconcile(const std::string& target, const TargetState& state,
                        const DeploymentRecord* hint,
                        std::vector<TargetStateRecord>* deferred = nullptr) {
    auto recorded = store->GetTargetState(target);
    bool has_recorded = recorded.ok();
    std::string app = hint ? hint->application : has_recorded ? recorded->application : "";
    std::string stage = hint ? hint->stage : has_recorded ? recorded->stage : "";
    std::string was = has_recorded ? BuildLabel(recorded->current.release, recorded->current.build)
                                   : std::string("nothing");
    if (state.current_release.empty()) {
      // Only forget what an agent reported before: a plan without artifacts
      // leaves nothing on the target and still deployed its build.
      if (has_recorded && !recorded->release_dir.empty()) {
        Status st = Persist("the cleared state of target " + target,
                            [&] { return store->ClearTargetState(target); });
        if (!st.ok()) return Unrecorded(target, hint);
        AuditTarget(target, "its agent reports nothing deployed (was " + was + ")");
      }
      return "nothing deployed";
    }
    int64_t build = std::atoll(state.build.c_str());
    std::string label = state.release.empty() || build <= 0 ? state.current_release
                                                            : BuildLabel(state.release, build);
    if (app.empty() || state.release.empty() || build <= 0) return label;
    if (has_recorded && recorded->application == app && recorded->stage == stage &&
        recorded->current.release == state.release && recorded->current.build == build &&
        recorded->release_dir == state.current_release)
      return label;  // as recorded
    TargetCurrent c{target, state.release, build, 0, Now(), ""};
    if (hint && hint->release == state.release && hint->build == build) {
      c.deployment_id = hint->id;
      c.by = hint->requested_by;
    } else if (auto last = store->LastSuccess(app, state.release, build, stage); last.ok()) {
      c.deployment_id = last->id;
      c.at = last->finished_at;
      c.by = last->requested_by;
    } else if (has_recorded && recorded->current.release == state.release &&
               recorded->current.build == build) {
      c = recorded->current;
    }
    if (deferred != nullptr) {
      deferred->push_back({app, stage, c, state.current_release});
    } else {
      Status st = Persist("the state of target " + target + " (" + label + ")", [&] {
        return store->PutTargetState(app, stage, c, state.current_release);
      });
      if (!st.ok()) return Unrecorded(target, hint);
    }
    bool changed = !has_recorded || recorded->current.release != c.release ||
                   recorded->current.build != c.build;
    // A deployment recording its own build is no news; anything else is.
    bool own = hint && c.deployment_id == hint->id;
    if (changed && !own) AuditTarget(target, "its agent reports " + label + " (was " + was + ")");
    return label;
  }

  void AuditTarget(const std::string& target, const std::string& summary) {
    AuditRecord entry{0, Now(), "server", "target.read-back", target, summary};
    Status st = Persist("the audit entry 'target.read-back' of target " + target,
                        [&] { return store->AppendAudit(entry); });
    (void)st;  // said on stderr
  }

  // A target state that could not be written: the target is read back again
  // later, and the caller learns it was not recorded.
  std::string Unrecorded(const std::string& target, const DeploymentRecord* hint) {
    std::lock_guard lock(read_back_mu);
    if (hint != nullptr)
      unread[target] = *hint;
    else
      unread.emplace(target, std::nullopt);
    return kUnrecorded;
  }
  static constexpr const char* kUnrecorded = "not recorded (the store refused the write)";

  // Automatic promotions into a stage that a rollback just put on hold were
  // requested before it: they would undo the rollback, so they do not run.
  void CancelHeldAutomatic(const DeploymentRecord& rollback) {
    const std::vector<std::string> pending = {"scheduled", "waiting", "queued"};
    for (int64_t offset = 0;; offset += 1000) {
      auto list =
          store->ListDeployments({rollback.application, rollback.stage, pending}, {1000, offset});
      if (!list.ok()) return;
      for (const auto& p : *list) {
        if (!p.automatic) continue;
        std::string why = HoldReason(rollback.stage, rollback.id);
        bool moved = false;
        Status st =
            Persist("the cancellation of automatic deployment " + std::to_string(p.id), [&] {
              auto m = store->TransitionDeployment(p.id, pending, "cancelled", 0, Now(), why);
              if (m.ok()) moved = *m;
              return m.status();
            });
        if (!st.ok()) {
          Log(rollback.id, "", "error",
              "could not cancel automatic deployment " + std::to_string(p.id) + ": " +
                  st.message() + "; the hold still stops it at its gates");
          continue;
        }
        if (!moved) continue;
        Log(p.id, "", "warning", "cancelled: " + why);
        Audit("automation", "deployment.cancel", p.id, why);
      }
      if (list->size() < 1000) break;
    }
    log_cv.notify_all();
  }

  static std::string HoldReason(const std::string& stage, int64_t rollback_id) {
    return "stage " + stage + " is on hold after the rollback in deployment " +
           std::to_string(rollback_id) +
           "; automatic promotion into it waits until someone clears the hold";
  }

  // The hold on `stage`, if any: the rollback deployment that set it (0: none).
  int64_t HoldOn(const std::string& app, const std::string& stage) {
    auto a = store->GetApplication(app);
    if (!a.ok()) return 0;
    json holds = json::parse(a->hold_json, nullptr, false);
    if (!holds.is_object() || !holds.contains(stage)) return 0;
    return holds[stage].value("deployment_id", int64_t{-1});
  }

  void AfterSuccess(const DeploymentRecord& d, const AppSpec& spec, const std::string& kind) {
    if (kind == "rollback") {
      json hold = {{"since", FormatRfc3339Utc(clock->Now())},
                   {"by", d.requested_by},
                   {"deployment_id", d.id},
                   {"reason", "rolled back to " + BuildLabel(d.release, d.build)}};
      Status st = store->Atomically([&] {
        REPRISE_RETURN_IF_ERROR(store->PlaceHold(d.application, d.stage, hold.dump()));
        return store->AppendAudit(
            AuditOf(d.requested_by, "stage.hold", d.id, d.application + "/" + d.stage));
      });
      if (!st.ok()) {
        Log(d.id, "", "error",
            "could not hold automatic promotion into " + d.stage + ": " + st.message());
        return;
      }
      Log(d.id, "", "info",
          "stage " + d.stage + " now holds automatic promotion until someone clears the hold");
      CancelHeldAutomatic(d);
    }
    int index = StageIndex(spec, d.stage);
    const StageSpec& stage = spec.pipeline[static_cast<size_t>(index)];
    if (!stage.auto_promote || index + 1 >= static_cast<int>(spec.pipeline.size())) return;
    const StageSpec& next = spec.pipeline[static_cast<size_t>(index + 1)];
    if (HoldOn(d.application, next.stage) != 0) {
      Log(d.id, "", "info",
          "automatic promotion to " + next.stage + " skipped: the stage is on hold");
      return;
    }
    // Nothing to do when the build is already there or on its way.
    if (store->LastSuccess(d.application, d.release, d.build, next.stage).ok()) return;
    auto pending = store->ListDeployments(
        {d.application, next.stage, {"scheduled", "waiting", "queued", "running"}}, {1000, 0});
    if (pending.ok())
      for (const auto& p : *pending)
        if (p.release == d.release && p.build == d.build) return;
    DeploymentRecord auto_d;
    auto_d.application = d.application;
    auto_d.release = d.release;
    auto_d.build = d.build;
    auto_d.stage = next.stage;
    auto_d.kind = "promote";
    auto_d.status = "waiting";
    auto_d.context_choice = "current";
    auto_d.comment = "automatic promotion after deployment " + std::to_string(d.id);
    auto_d.requested_by = d.requested_by;
    auto_d.created_at = Now();
    std::vector<std::string> targets = next.targets;
    std::sort(targets.begin(), targets.end());
    auto_d.targets_csv = JoinCsv(targets);
    auto_d.automatic = true;
    auto created = store->CreateDeployment(auto_d);
    if (!created.ok()) {
      std::fprintf(stderr, "store: the automatic promotion after deployment %lld is lost: %s\n",
                   static_cast<long long>(d.id), created.status().ToString().c_str());
      Log(d.id, "", "error",
          "could not promote automatically to " + next.stage + ": " + created.status().message());
      return;
    }
    Log(d.id, "", "info",
        "promoting automatically to " + next.stage + ": deployment " + std::to_string(created->id));
    Log(created->id, "", "info", "automatic promotion after deployment " + std::to_string(d.id));
    Audit("automation", "deployment.request", created->id,
          "automatic promotion of " + BuildLabel(d.release, d.build) + " to " + next.stage);
    EvaluateWaiting(created->id);
  }

  // ---- recovery
  void Recover() {
    for (;;) {
      auto stuck = store->ListDeployments({"", "", {"running"}}, {1000, 0});
      if (!stuck.ok() || stuck->empty()) break;
      for (const auto& d : *stuck) {
        auto moved = store->TransitionDeployment(d.id, {"running"}, "interrupted", 0, Now(),
                                                 "the server stopped while it was running");
        if (!moved.ok() || !*moved) continue;
        Log(d.id, "", "error",
            "interrupted: the server stopped while this deployment was running; the targets' "
            "real state is read back from their agents");
        Audit("server", "deployment.interrupt", d.id, "running at restart");
        auto targets = store->ListDeploymentTargets(d.id);
        if (targets.ok())
          for (auto t : *targets)
            if (t.status == "running" || t.status == "pending") {
              t.status = "interrupted";
              t.finished_at = Now();
              Status st = Persist("the interrupted state of target " + t.target +
                                      " in deployment " + std::to_string(d.id),
                                  [&] { return store->PutDeploymentTarget(t); });
              (void)st;  // said on stderr
            }
        interrupted.push_back(d);
      }
    }
  }
  std::vector<DeploymentRecord> interrupted;

  // ---- reading back what targets hold
  // Targets whose agent has not told yet what they hold: those of
  // interrupted deployments (with the deployment), and every target of an
  // agent that (re)connected. Retried until the agent answers, however late.
  std::mutex read_back_mu;
  std::condition_variable read_back_cv;
  std::map<std::string, std::optional<DeploymentRecord>> unread;
  std::map<std::string, std::string> agent_connections;  // agent -> address while online
  std::map<std::string, bool> agent_approved;

  void ReadBackLoop() {
    if (o.hub == nullptr) return;
    {
      std::lock_guard lock(read_back_mu);
      for (const auto& d : interrupted)
        for (const auto& target : SplitCsv(d.targets_csv)) unread.emplace(target, d);
    }
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (stopping) return;
      }
      NoticeConnections();
      std::map<std::string, std::optional<DeploymentRecord>> todo;
      {
        std::lock_guard lock(read_back_mu);
        todo = unread;
      }
      for (const auto& [target, d] : todo) {
        if (!ClaimTarget(target)) continue;  // a deployment runs there: later
        auto state = o.hub->GetTargetState(target);
        bool answered = state.ok() && state->online;
        std::string label;
        if (answered) {
          label = Reconcile(target, *state, d ? &*d : nullptr);
          if (d) {
            bool switched = label == BuildLabel(d->release, d->build);
            Log(d->id, target, switched ? "warning" : "info",
                "the agent reports " + label + " as current" +
                    (switched ? ": the switch completed before the deployment ended"
                              : std::string(label == "nothing deployed"
                                                ? ""
                                                : ": the switch had not happened")));
          }
        }
        ReleaseTarget(target);
        if (answered && label != kUnrecorded) {
          std::lock_guard lock(read_back_mu);
          unread.erase(target);
        }
      }
      std::unique_lock lock(read_back_mu);
      read_back_cv.wait_for(lock, o.read_back_retry);
    }
  }

  // Agents that connected since the last look (a new address): their targets
  // are read back.
  void NoticeConnections() {
    std::vector<std::string> targets;
    bool changed = false;
    for (const auto& a : o.hub->Agents()) {
      std::string now = a.online ? a.address : "";
      std::string& before = agent_connections[a.name];
      if (a.online && now != before)
        for (const auto& t : a.targets) targets.push_back(t);
      changed |= now != before;
      before = now;
      bool& was_approved = agent_approved[a.name];
      changed |= a.approved != was_approved;
      was_approved = a.approved;
    }
    // Deployments waiting for an agent (gate `agents`) go on when it is back.
    if (changed && loop)
      loop->Post([this] {
        RecheckWaiting();
        Dispatch();
      });
    std::lock_guard lock(read_back_mu);
    for (const auto& t : targets) unread.emplace(t, std::nullopt);
  }

  // Reading a target's state uses it like a deployment does: not while one
  // runs there, and none starts while it is read.
  bool ClaimTarget(const std::string& target) {
    std::lock_guard lock(mu);
    if (stopping || busy_targets.count(target)) return false;
    busy_targets.insert(target);
    return true;
  }
  void ReleaseTarget(const std::string& target) {
    {
      std::lock_guard lock(mu);
      busy_targets.erase(target);
    }
    Wake();
  }
};

DeploymentEngine::DeploymentEngine() : impl_(std::make_shared<Impl>()) {}

DeploymentEngine::~DeploymentEngine() { Stop(); }

Result<std::unique_ptr<DeploymentEngine>> DeploymentEngine::Start(EngineOptions options) {
  if (options.store == nullptr) return InvalidArgument("the engine needs a store");
  std::unique_ptr<DeploymentEngine> engine(new DeploymentEngine());
  Impl& impl = *engine->impl_;
  impl.o = options;
  impl.store = options.store;
  impl.clock = options.clock ? options.clock : &SystemClock::Instance();
  impl.Recover();
  impl.FlushLogs();  // what recovery found is in the log before anyone can ask
  impl.threads.emplace_back([&impl] { impl.LogFlushLoop(); });
  if (options.start_threads) {
    impl.loop = std::make_unique<EngineLoop>(
        *impl.clock, [&impl] { impl.OnDeadline(); }, [&impl] { impl.OnClockSet(); });
    // Deployment windows open with time: waiting ones are re-checked.
    impl.loop->Every(options.gate_recheck, [&impl] {
      impl.last_recheck = impl.clock->Now();
      impl.RecheckWaiting();
      impl.Dispatch();
    });
    // Due while the server was down: fired (or expired) at once, then the
    // timer is armed for the next one.
    impl.loop->Post([&impl] { impl.OnDeadline(); });
    impl.loop->Start();
    impl.threads.emplace_back([&impl] { impl.ReadBackLoop(); });
  }
  return engine;
}

void DeploymentEngine::Stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping && impl_->threads.empty()) return;
    impl_->stopping = true;
    for (auto& [id, r] : impl_->running) r->cancel.Cancel();
  }
  impl_->log_cv.notify_all();
  impl_->pending_cv.notify_all();
  impl_->read_back_cv.notify_all();
  impl_->slot_cv.notify_all();
  impl_->retry_cv.notify_all();
  if (impl_->loop) impl_->loop->Stop();
  // Running deployments end as interrupted (their cancel token is set).
  std::map<int64_t, std::thread> runs;
  {
    std::lock_guard lock(impl_->mu);
    runs.swap(impl_->run_threads);
    impl_->ended_runs.clear();
  }
  for (auto& [id, t] : runs)
    if (t.joinable()) t.join();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
  impl_->FlushLogs();
}

void DeploymentEngine::Tick() {
  Impl& impl = *impl_;
  if (impl.loop)
    impl.loop->RunAndWait([&impl] { impl.Tick(); });
  else
    impl.Tick();
}

void DeploymentEngine::BeginShutdown() {
  impl_->shutting_down = true;
  impl_->log_cv.notify_all();
}

bool DeploymentEngine::ShuttingDown() const { return impl_->shutting_down; }
Store* DeploymentEngine::engine_store() const { return impl_->store; }
const Clock& DeploymentEngine::engine_clock() const { return *impl_->clock; }

bool DeploymentEngine::WaitIdle(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    impl_->Wake();
    auto active = impl_->store->ListDeployments({"", "", {"queued", "running"}}, {1, 0});
    if (active.ok() && active->empty()) return true;
    std::unique_lock lock(impl_->mu);
    impl_->idle_cv.wait_for(lock, std::chrono::milliseconds(50));
  }
  return false;
}

// ---- requests

Result<DeploymentRecord> DeploymentEngine::Request(const Actor& actor, const std::string& app,
                                                   const std::string& release, int64_t build,
                                                   const DeployRequest& req) {
  Impl& impl = *impl_;
  Store& store = *impl.store;
  auto b = store.GetBuild(app, release, build);
  if (!b.ok()) return b.status();
  auto spec = ReleaseSpec(store, app, release);
  if (!spec.ok()) return spec.status();
  if (req.stage.empty()) return InvalidArgument("missing field 'stage'");
  const StageSpec* stage = spec->FindStage(req.stage);
  if (stage == nullptr) {
    std::string stages;
    for (const auto& s : spec->pipeline) stages += (stages.empty() ? "" : ", ") + s.stage;
    return InvalidArgument("stage '" + req.stage + "' is not in the pipeline of release " +
                           release + " (" + stages + ")");
  }
  auto kind = ComputeKind(store, app, release, build, req.stage);
  if (!kind.ok()) return kind.status();

  REPRISE_RETURN_IF_ERROR(
      impl.MayDeploy(actor, app, *stage, kind->kind,
                     kind->kind == "promote" ? "deploying" : "re-deploying an earlier build"));
  if (req.force) {
    if (actor.role < Role::kReleaseManager)
      return PermissionDenied("forcing a deployment past its gates needs the role release-manager");
    if (req.comment.empty())
      return InvalidArgument("a forced deployment needs a 'comment' saying why");
  }
  if (req.at) REPRISE_RETURN_IF_ERROR(CheckNotPast(*req.at, impl.clock->Now()));
  std::string choice = req.context_choice;
  if (choice.empty()) choice = kind->succeeded_before ? "as-deployed" : "current";
  if (choice != "as-deployed" && choice != "current")
    return InvalidArgument("'context' must be \"as-deployed\" or \"current\", not \"" + choice +
                           "\"");
  if (choice == "as-deployed" && !kind->succeeded_before)
    return InvalidArgument(BuildLabel(release, build) + " has never succeeded on " + req.stage +
                           ", so there is no 'as-deployed' context: use \"current\"");
  DeploymentRecord d;
  d.application = app;
  d.release = release;
  d.build = build;
  d.stage = req.stage;
  d.kind = kind->kind;
  d.forced = req.force;
  d.context_choice = choice;
  d.variables_json = VariablesToJson(req.variables);
  d.comment = req.comment;
  d.requested_by = actor.user;
  d.created_at = impl.Now();
  d.expires_after_ms = req.expires_after.count();
  std::vector<std::string> targets = stage->targets;
  std::sort(targets.begin(), targets.end());  // a fixed order: no deadlock across stages
  d.targets_csv = JoinCsv(targets);
  bool scheduled = req.at && ToUnixMillis(*req.at) > d.created_at;
  d.status = scheduled ? "scheduled" : "waiting";
  if (scheduled) d.scheduled_at = ToUnixMillis(*req.at);
  std::string what = d.kind + " of " + BuildLabel(release, build) + " to " + d.stage;
  int64_t id = 0;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    // In the request's transaction: retention marks a build's bytes removed
    // only when no deployment of it is pending, in its own transaction.
    REPRISE_RETURN_IF_ERROR(CheckBuildDeployable(store, app, release, build));
    REPRISE_ASSIGN_OR_RETURN(auto created, store.CreateDeployment(d));
    id = created.id;
    REPRISE_RETURN_IF_ERROR(store.AppendAudit(
        impl.AuditOf(actor.user, scheduled ? "deployment.schedule" : "deployment.request", id,
                     what + (scheduled ? " at " + FormatRfc3339Utc(*req.at) : ""))));
    if (!req.force) return Status::Ok();
    return store.AppendAudit(
        impl.AuditOf(actor.user, "deployment.force", id, "forced past gates: " + d.comment));
  }));
  impl.Log(id, "", "info",
           "requested by " + actor.user + ": " + what +
               (scheduled ? " at " + FormatRfc3339Utc(*req.at) : std::string()) +
               (d.comment.empty() ? "" : " (" + d.comment + ")"));
  if (scheduled) {
    impl.Rearm();
  } else {
    impl.EvaluateWaiting(id);
    impl.Wake();
  }
  return store.GetDeployment(id);
}

Status DeploymentEngine::Approve(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (IsFinal(d->status) || d->status == "running" || d->status == "queued")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; approvals are only taken before it starts");
  auto spec = ReleaseSpec(*impl.store, d->application, d->release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d->stage);
  if (stage == nullptr) return NotFound("stage '" + d->stage + "' not found");
  Role needed = ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager);
  if (actor.role < needed)
    return PermissionDenied("approving deployments to " + d->stage + " needs the role " +
                            RoleName(needed) + "; '" + actor.user + "' is " + RoleName(actor.role));
  if (actor.user == d->requested_by && !stage->gates.allow_self_approval)
    return PermissionDenied("'" + actor.user +
                            "' requested this deployment and cannot approve it; the stage does "
                            "not allow self-approval");
  Store& store = *impl.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(
        store.AddApproval({0, id, actor.user, "approved", comment, impl.Now(), false}).status());
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.approve", id, comment));
  }));
  impl.Log(id, "", "info", "approved by " + actor.user + (comment.empty() ? "" : ": " + comment));
  if (d->status == "waiting") impl.EvaluateWaiting(id);
  return Status::Ok();
}

Status DeploymentEngine::Reject(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (d->status == "running") return impl.AnswerManual(actor, id, comment, /*reject=*/true);
  if (d->status != "waiting" && d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; only waiting or scheduled deployments, or one paused at a "
                              "manual step, can be rejected");
  auto spec = ReleaseSpec(*impl.store, d->application, d->release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d->stage);
  Role needed = stage ? ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager)
                      : Role::kReleaseManager;
  if (actor.role < needed)
    return PermissionDenied("rejecting deployments to " + d->stage + " needs the role " +
                            RoleName(needed));
  Store& store = *impl.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(
        store.AddApproval({0, id, actor.user, "rejected", comment, impl.Now(), false}).status());
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.reject", id, comment));
  }));
  impl.Finish(*d, "cancelled",
              "rejected by " + actor.user + (comment.empty() ? "" : ": " + comment),
              {"waiting", "scheduled"});
  return Status::Ok();
}

Status DeploymentEngine::RevokeApproval(const Actor& actor, int64_t id) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (d->status != "waiting" && d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; approvals can be revoked only until it starts");
  Store& store = *impl.store;
  int64_t revoked = 0;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(revoked, store.RevokeApprovals(id, actor.user));
    if (revoked == 0) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.revoke-approval", id, ""));
  }));
  if (revoked == 0)
    return NotFound("'" + actor.user + "' has no approval of deployment " + std::to_string(id) +
                    " to revoke");
  impl.Log(id, "", "info", "approval revoked by " + actor.user);
  return Status::Ok();
}

Status DeploymentEngine::Cancel(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  REPRISE_RETURN_IF_ERROR(impl.MayChange(actor, *d, "cancelling deployment " + std::to_string(id)));
  if (IsFinal(d->status))
    return FailedPrecondition("deployment " + std::to_string(id) + " is already " + d->status);
  std::string why = "cancelled by " + actor.user + (comment.empty() ? "" : ": " + comment);
  if (d->status == "running") {
    {
      std::lock_guard lock(impl.mu);
      auto it = impl.running.find(id);
      if (it != impl.running.end()) it->second->cancel.Cancel();
    }
    impl.Audit(actor.user, "deployment.cancel", id, "asked a running deployment to stop");
    impl.Log(id, "", "warning", why + "; stopping");
    return Status::Ok();
  }
  Store& store = *impl.store;
  bool moved = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(
        moved, store.TransitionDeployment(id, {"scheduled", "waiting", "queued"}, "cancelled", 0,
                                          impl.Now(), why));
    if (!moved) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.cancel", id, comment));
  }));
  if (!moved)
    return FailedPrecondition("deployment " + std::to_string(id) + " has started meanwhile");
  impl.Log(id, "", "warning", why);
  impl.log_cv.notify_all();
  if (d->status == "scheduled") impl.Rearm();
  return Status::Ok();
}

Status DeploymentEngine::Reschedule(const Actor& actor, int64_t id, TimePoint at) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  REPRISE_RETURN_IF_ERROR(impl.MayChange(actor, *d, "moving deployment " + std::to_string(id)));
  if (d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; only scheduled deployments can be moved");
  REPRISE_RETURN_IF_ERROR(CheckNotPast(at, impl.clock->Now()));
  std::string what = "moved from " + FormatRfc3339Utc(FromUnixMillis(d->scheduled_at)) + " to " +
                     FormatRfc3339Utc(at);
  Store& store = *impl.store;
  bool moved = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(moved, store.RescheduleDeployment(id, ToUnixMillis(at)));
    if (!moved) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.reschedule", id, what));
  }));
  if (!moved)
    return FailedPrecondition("deployment " + std::to_string(id) + " has started meanwhile");
  impl.Log(id, "", "info", what + " by " + actor.user);
  impl.Rearm();
  return Status::Ok();
}

Status DeploymentEngine::Continue(const Actor& actor, int64_t id, const std::string& comment) {
  return impl_->AnswerManual(actor, id, comment, /*reject=*/false);
}

Status DeploymentEngine::SetGrant(const Actor& actor, const std::string& environment,
                                  const std::string& user, const std::string& permission,
                                  bool granted, bool* changed) {
  Impl& impl = *impl_;
  if (actor.role < Role::kAdmin)
    return PermissionDenied("changing grants needs the role admin; '" + actor.user + "' is " +
                            RoleName(actor.role));
  if (permission != kRedeployPermission)
    return InvalidArgument("unknown permission '" + permission + "' (known: redeploy)");
  REPRISE_RETURN_IF_ERROR(impl.store->GetEnvironment(environment).status());
  REPRISE_RETURN_IF_ERROR(impl.store->GetUser(user).status());
  Store& store = *impl.store;
  bool done = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(
        done, granted ? store.PutGrant({environment, user, permission, actor.user, impl.Now()})
                      : store.DeleteGrant(environment, user, permission));
    if (!done) return Status::Ok();
    return store.AppendAudit({0, impl.Now(), actor.user, granted ? "grant.add" : "grant.remove",
                              environment + "/" + user + "/" + permission,
                              (granted ? "granted " : "revoked ") + permission + " on " +
                                  environment + (granted ? " to " : " from ") + user});
  }));
  if (changed != nullptr) *changed = done;
  if (!done && !granted)
    return NotFound("'" + user + "' holds no '" + permission + "' grant on environment '" +
                    environment + "'");
  return Status::Ok();  // a grant held already changes nothing
}

Result<std::vector<GrantRecord>> DeploymentEngine::Grants(const std::string& environment) {
  REPRISE_RETURN_IF_ERROR(impl_->store->GetEnvironment(environment).status());
  return impl_->store->ListGrants(environment);
}

Status DeploymentEngine::ClearHold(const Actor& actor, const std::string& app,
                                   const std::string& stage) {
  Impl& impl = *impl_;
  Store& store = *impl.store;
  bool removed = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(removed, store.ClearHold(app, stage));
    if (!removed) return Status::Ok();
    return store.AppendAudit(
        {0, impl.Now(), actor.user, "stage.clear-hold", app + "/" + stage, ""});
  }));
  if (!removed) return NotFound("stage '" + stage + "' of '" + app + "' has no hold");
  return Status::Ok();
}

Result<std::vector<GateState>> DeploymentEngine::Gates(const DeploymentRecord& d) {
  auto spec = ReleaseSpec(*impl_->store, d.application, d.release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d.stage);
  if (stage == nullptr) return NotFound("stage '" + d.stage + "' not found");
  auto gates = EvaluateGates(*impl_->store, *impl_->clock, d, *spec, *stage, nullptr);
  if (impl_->o.hub != nullptr && Impl::StagePlanNeeds(*spec, *stage).touches_targets)
    gates.push_back(AgentsGate(*impl_->o.hub, SplitCsv(d.targets_csv)));
  return gates;
}

Result<std::vector<StageView>> DeploymentEngine::DeployedWhere(const std::string& app) {
  Store& store = *impl_->store;
  auto a = store.GetApplication(app);
  if (!a.ok()) return a.status();
  auto spec = ParseAppSpec(a->spec_json, "application spec");
  if (!spec.ok()) return spec.status();
  json holds = json::parse(a->hold_json, nullptr, false);
  std::vector<StageView> out;
  for (const auto& s : spec->pipeline) {
    StageView v;
    v.stage = s.stage;
    v.environment = s.environment;
    v.is_protected = s.is_protected;
    v.auto_promote = s.auto_promote;
    if (holds.is_object() && holds.contains(s.stage)) v.hold_json = holds[s.stage].dump();
    auto current = store.CurrentBuilds(app, s.stage);
    if (!current.ok()) return current.status();
    for (const auto& t : s.targets) {
      TargetCurrent c{t, "", 0, 0, 0, ""};
      for (const auto& cur : *current)
        if (cur.target == t) c = cur;
      v.targets.push_back(c);
    }
    auto builds = store.SucceededBuilds(app, s.stage, 11);
    if (!builds.ok()) return builds.status();
    for (const auto& b : *builds) {
      bool is_current = std::any_of(
          v.targets.begin(), v.targets.end(),
          [&](const TargetCurrent& c) { return c.release == b.release && c.build == b.build; });
      if (!is_current && v.rollback_candidates.size() < 10) v.rollback_candidates.push_back(b);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::optional<PendingManual> DeploymentEngine::Manual(int64_t id) const {
  std::shared_ptr<Running> r = impl_->FindRunning(id);
  if (!r) return std::nullopt;
  std::lock_guard lock(r->mu);
  return r->manual;
}

std::optional<TransferProgress> DeploymentEngine::Progress(int64_t id,
                                                           const std::string& target) const {
  std::shared_ptr<Running> r = impl_->FindRunning(id);
  if (!r) return std::nullopt;
  std::lock_guard lock(r->mu);
  auto p = r->progress.find(target);
  if (p == r->progress.end()) return std::nullopt;
  return p->second;
}

void DeploymentEngine::ReportProgress(const std::string& target, const TransferProgress& progress) {
  std::shared_ptr<Running> r;
  {
    std::lock_guard lock(impl_->mu);
    auto t = impl_->target_deployment.find(target);
    if (t == impl_->target_deployment.end()) return;
    auto it = impl_->running.find(t->second);
    if (it == impl_->running.end()) return;
    r = it->second;
  }
  std::lock_guard lock(r->mu);
  r->progress[target] = progress;
}

int64_t DeploymentEngine::AddLogListener(std::function<void()> listener) {
  return impl_->log_cv.Add(std::move(listener));
}

void DeploymentEngine::RemoveLogListener(int64_t handle) { impl_->log_cv.Remove(handle); }

bool DeploymentEngine::WaitForLog(int64_t id, int64_t after_seq,
                                  std::chrono::milliseconds timeout) const {
  auto has_news = [&] {
    auto lines = impl_->store->ListDeploymentLog(id, after_seq, 1);
    if (lines.ok() && !lines->empty()) return true;
    auto d = impl_->store->GetDeployment(id);
    return !d.ok() || IsFinal(d->status);
  };
  if (has_news()) return true;
  std::unique_lock lock(impl_->log_mu);
  if (impl_->shutting_down) return false;
  impl_->log_cv.wait_for(lock, timeout);
  lock.unlock();
  return has_news();
}

}  // namespace reprise
