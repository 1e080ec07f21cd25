// Running one deployment: plan, execute against the agents, record each
// target's state, reconcile what agents report, the final transition, and
// what follows a success (holds, cancelling held automation, automatic
// promotion). Threading: Run runs on the deployment's own thread; Finish on
// any engine thread (its store writes are compare-and-set).
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "planner/plan.h"
#include "server/catalog/catalog.h"
#include "server/engine/connection_check.h"
#include "server/engine/engine_internal.h"
#include "server/engine/irreversible.h"

namespace reprise {

using namespace engine_internal;
using nlohmann::json;

namespace {

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

}  // namespace

// ---- final states
// One transaction: the log lines waiting to be written, the targets'
// results and states, the final status and its log line.
//
// A refused write is retried (bounded, with a backoff); the first refusal
// is noted in the log. When the result still cannot be written, the
// deployment ends `failed` without the targets' states (their agents are
// asked again); when even that fails, stderr says what was lost and the
// deployment becomes `interrupted` at the next start.
void DeploymentEngine::Impl::Finish(const DeploymentRecord& d, const std::string& status,
                                    const std::string& error, const std::vector<std::string>& from,
                                    const std::vector<DeploymentTargetRecord>& targets,
                                    const std::vector<TargetStateRecord>& target_states,
                                    const std::function<Status()>& with_success) {
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
                    const std::vector<TargetStateRecord>& states) -> Result<bool> {
    auto final_line =
        line(st == "succeeded" ? "info" : "error", st + (why.empty() ? "" : ": " + why));
    if (st != "succeeded" || !with_success)
      return store->FinishDeployment(d.id, from, st, Now(), why, targets, states, batch,
                                     final_line);
    bool moved = false;
    REPRISE_RETURN_IF_ERROR(store->Atomically([&]() -> Status {
      REPRISE_ASSIGN_OR_RETURN(moved, store->FinishDeployment(d.id, from, st, Now(), why, targets,
                                                              states, batch, final_line));
      return moved ? with_success() : Status::Ok();
    }));
    return Result<bool>(moved);
  };
  std::string what = "the result (" + status + ") of deployment " + std::to_string(d.id);
  std::string ended = status;
  Result<bool> moved = finish(status, error, target_states);
  for (int attempt = 2; !moved.ok() && attempt <= kWriteAttempts; ++attempt) {
    log::Warn("engine.write-failed", {{"what", what},
                                      {"attempt", attempt - 1},
                                      {"attempts", kWriteAttempts},
                                      {"error", moved.status().ToString()}});
    if (attempt == 2) {
      // Say so in the log now; the lines so far go first, in order.
      auto notice = line("warning", "could not record the result yet (" + moved.status().message() +
                                        "); retrying");
      batch.insert(batch.end(), notice.begin(), notice.end());
      if (store->AppendDeploymentLogs(batch).ok()) batch.clear();
      log_cv.notify_all();
    }
    if (!Backoff(attempt - 1)) break;
    moved = finish(status, error, target_states);
  }
  if (!moved.ok()) {
    std::string why = "the result could not be recorded: " + moved.status().message();
    log::Error("engine.write-gave-up", {{"what", what}, {"error", moved.status().ToString()}});
    ended = "failed";
    moved = finish(ended, error.empty() ? why : error + "; " + why, {});
    if (moved.ok()) {
      std::lock_guard lock(read_back_mu);  // what the targets hold is read back
      for (const auto& state : target_states) unread[state.current.target] = d;
    }
  }
  if (!moved.ok()) {
    log::Error("engine.end-lost", {{"deployment", static_cast<long long>(d.id)},
                                   {"status", status},
                                   {"log_lines", batch.size()},
                                   {"error", moved.status().ToString()},
                                   {"next", "interrupted at the next start"}});
    std::lock_guard lock(pending_mu);  // the lines are written with the next flush
    pending_lines.insert(pending_lines.begin(), batch.begin(), batch.end());
  }
  log_cv.notify_all();
  if (moved.ok() && *moved) PublishFinished(d, ended, error);
}

// ---- running one deployment
void DeploymentEngine::Impl::Run(const std::shared_ptr<Running>& r) {
  auto d = store->GetDeployment(r->id);
  if (!d.ok()) return;
  if (d->kind == kSelectiveRollbackKind) return RunSelectiveRollback(r, *d);
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
  PublishDeployment("deployment.started", *d, "running");
  Log(d->id, "", "info",
      "running " + kind->kind + " of " + BuildLabel(d->release, d->build) + " to " + d->stage +
          " (variables " + (choice == "as-deployed" ? "as deployed" : "current settings") +
          (kind->current_label.empty() ? "" : "; the stage had " + kind->current_label) + ")");
  if (!plan.ok()) return fail(plan.status().message());
  if (o.agents == nullptr) return fail("no agent hub is configured");
  auto operations = o.agents->OperationsFor(*ctx);
  // The executor logs the waiting line (with the step's position).
  ManualGate manual(
      r,
      [this, r, record = *d] {
        PauseSlot(r);
        PublishDeployment("approval.needed", record, "running",
                          "a manual step waits for an answer");
      },
      [this, r](const CancelToken& c) { ResumeSlot(r, c); });
  ExecutorOptions eo;
  eo.clock = clock;
  eo.manual = &manual;
  eo.cancel = &r->cancel;
  if (!UndoIrreversible(*d, *ctx, eo)) return;
  eo.operations = operations.get();
  eo.log_sink = [this, id = d->id](const LogLine& line) {
    Log(id, line.target, std::string(LogLevelName(line.level)), line.text);
  };
  // Irreversible steps are kept as they run: a crash mid-run must not lose them.
  eo.on_step = [this, &d, &ctx](const StepRecord& step) {
    if (!step.irreversible) return;
    IrreversibleStepRecord kept = IrreversibleStepOf(*d, ctx->plan_name, step);
    Status st = Persist("irreversible step " + kept.step_id + " on " + kept.target,
                        [&] { return store->AddIrreversibleStep(kept); });
    if (!st.ok())
      Log(d->id, step.target, "error",
          "could not record that irreversible step " + kept.step_id + " ran: " + st.message());
  };
  Executor executor(eo);
  auto report = executor.Execute(*plan, *ctx);
  auto [status, error] = FinalStatus(*r, report);
  std::vector<DeploymentTargetRecord> results;
  if (report.ok())
    for (const auto& t : TargetResults(*plan, *ctx, *report))
      results.push_back({d->id, t.target, t.status, t.message, "", "", d->started_at, Now()});
  auto states = RecordTargetStates(*d, *ctx, report.ok() ? &*report : nullptr);
  std::function<Status()> hold;
  if (kind->kind == "rollback") hold = [&] { return PlaceRollbackHold(*d); };
  Finish(*d, status, error, {"running"}, results, states, hold);
  if (status == "succeeded") AfterSuccess(*d, *spec, kind->kind);
}

// The final status and error a plan's execution report stands for.
std::pair<std::string, std::string> DeploymentEngine::Impl::FinalStatus(
    const Running& r, const Result<ExecutionReport>& report) {
  if (!report.ok()) return {"failed", "orchestration error: " + report.status().message()};
  switch (report->outcome) {
    case Outcome::kSucceeded:
      return {"succeeded", ""};
    case Outcome::kFailed:
      return {"failed", report->message};
    case Outcome::kCancelled: {
      std::lock_guard lock(mu);
      if (stopping) return {"interrupted", kStoppedWhileRunning};
      if (r.lease_lost) return {"interrupted", "server " + server_id + " lost its lease on it"};
      return {"cancelled", "cancelled"};
    }
    case Outcome::kError:
      break;
  }
  return {"failed", "orchestration error: " + report->error.message()};
}

// Before a re-deploy puts an earlier build back: the undo steps of the
// irreversible steps that ran since, from the newer builds' own plans. A
// failure ends the deployment before its plan runs (nothing is switched).
// Returns whether the plan may run.
bool DeploymentEngine::Impl::UndoIrreversible(const DeploymentRecord& d,
                                              const ExecutionContext& ctx,
                                              const ExecutorOptions& base) {
  auto crossed = IrreversibleStepsSince(*store, d.application, d.release, d.build, d.stage);
  std::string error;
  if (!crossed.ok()) {
    error = "cannot read the irreversible steps that ran: " + crossed.status().message();
  } else {
    int undoable = 0;
    for (const auto& s : *crossed) {
      Log(d.id, s.target, "warning",
          "irreversible step this deployment cannot undo: " + DescribeIrreversibleStep(s));
      undoable += s.has_undo ? 1 : 0;
    }
    if (undoable == 0) return true;
    Log(d.id, "", "info",
        "running the undo steps of " + std::to_string(undoable) +
            " irreversible step(s), newest first, before the switch");
    Status undone =
        RunUndoSteps(*store, *o.agents, *crossed, base,
                     [this, id = d.id](const std::string& target, const std::string& level,
                                       const std::string& text) { Log(id, target, level, text); });
    if (undone.ok()) return true;
    error = undone.message();
    if (undone.code() == Code::kCancelled) {
      std::vector<DeploymentTargetRecord> results;
      for (const auto& t : ctx.targets)
        results.push_back({d.id, t.name, "cancelled", error, "", "", d.started_at, Now()});
      Finish(d, "cancelled", error, {"running"}, results, RecordTargetStates(d, ctx, nullptr));
      return false;
    }
  }
  error += "; the plan did not run and nothing was switched";
  std::vector<DeploymentTargetRecord> results;
  for (const auto& t : ctx.targets)
    results.push_back({d.id, t.name, "skipped", error, "", "", d.started_at, Now()});
  Finish(d, "failed", error, {"running"}, results, RecordTargetStates(d, ctx, nullptr));
  return false;
}

// Reads back what each target holds now (the agent is the truth), falling
// back on the executor's outcome when the agent cannot say (offline, or
// nothing deployed by a plan without artifacts).
// The states are returned to be written with the final status.
std::vector<TargetStateRecord> DeploymentEngine::Impl::RecordTargetStates(
    const DeploymentRecord& d, const ExecutionContext& ctx, const ExecutionReport* report) {
  std::vector<TargetStateRecord> out;
  for (const auto& t : ctx.targets) {
    if (o.agents != nullptr) {
      auto state = o.agents->GetTargetState(t.name);
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
                       TargetCurrent{t.name, d.release, d.build, d.id, Now(), d.requested_by}, ""});
  }
  return out;
}

// Makes target_states say what the target's agent reports: whatever build
// it holds, or nothing. `hint` is the deployment that last touched the
// target, if known (it names the application and stage). Returns a line
// describing what the agent reports.
// With `deferred`, a new state is added there instead of written.
std::string DeploymentEngine::Impl::Reconcile(const std::string& target, const TargetState& state,
                                              const DeploymentRecord* hint,
                                              std::vector<TargetStateRecord>* deferred) {
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
  bool changed =
      !has_recorded || recorded->current.release != c.release || recorded->current.build != c.build;
  // A deployment recording its own build is no news; anything else is.
  bool own = hint && c.deployment_id == hint->id;
  if (changed && !own) AuditTarget(target, "its agent reports " + label + " (was " + was + ")");
  return label;
}

void DeploymentEngine::Impl::AuditTarget(const std::string& target, const std::string& summary) {
  AuditRecord entry{0, Now(), "server", "target.read-back", target, summary};
  Status st = Persist("the audit entry 'target.read-back' of target " + target,
                      [&] { return store->AppendAudit(entry); });
  (void)st;  // said on stderr
}

// A target state that could not be written: the target is read back again
// later, and the caller learns it was not recorded.
std::string DeploymentEngine::Impl::Unrecorded(const std::string& target,
                                               const DeploymentRecord* hint) {
  std::lock_guard lock(read_back_mu);
  if (hint != nullptr)
    unread[target] = *hint;
  else
    unread.emplace(target, std::nullopt);
  return kUnrecorded;
}

// Automatic promotions into a stage that a rollback just put on hold were
// requested before it: they would undo the rollback, so they do not run.
void DeploymentEngine::Impl::CancelHeldAutomatic(const DeploymentRecord& rollback) {
  const std::vector<std::string> pending = {"scheduled", "waiting", "queued"};
  for (int64_t offset = 0;; offset += 1000) {
    auto list =
        store->ListDeployments({rollback.application, rollback.stage, pending}, {1000, offset});
    if (!list.ok()) return;
    for (const auto& p : *list) {
      if (!p.automatic) continue;
      std::string why = HoldReason(rollback.stage, rollback.id);
      bool moved = false;
      Status st = Persist("the cancellation of automatic deployment " + std::to_string(p.id), [&] {
        auto m = store->TransitionDeployment(p.id, pending, "cancelled", 0, Now(), why);
        if (m.ok()) moved = *m;
        return m.status();
      });
      if (!st.ok()) {
        Log(rollback.id, "", "error",
            "could not cancel automatic deployment " + std::to_string(p.id) + ": " + st.message() +
                "; the hold still stops it at its gates");
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

std::string DeploymentEngine::Impl::HoldReason(const std::string& stage, int64_t rollback_id) {
  return "stage " + stage + " is on hold after the rollback in deployment " +
         std::to_string(rollback_id) +
         "; automatic promotion into it waits until someone clears the hold";
}

// The hold on `stage`, if any: the rollback deployment that set it (0: none).
int64_t DeploymentEngine::Impl::HoldOn(const std::string& app, const std::string& stage) {
  auto a = store->GetApplication(app);
  if (!a.ok()) return 0;
  json holds = json::parse(a->hold_json, nullptr, false);
  if (!holds.is_object() || !holds.contains(stage)) return 0;
  return holds[stage].value("deployment_id", int64_t{-1});
}

Status DeploymentEngine::Impl::PlaceRollbackHold(const DeploymentRecord& d) {
  json hold = {{"since", FormatRfc3339Utc(clock->Now())},
               {"by", d.requested_by},
               {"deployment_id", d.id},
               {"reason", "rolled back to " + BuildLabel(d.release, d.build)}};
  REPRISE_RETURN_IF_ERROR(store->PlaceHold(d.application, d.stage, hold.dump()));
  return store->AppendAudit(
      AuditOf(d.requested_by, "stage.hold", d.id, d.application + "/" + d.stage));
}

void DeploymentEngine::Impl::AfterSuccess(const DeploymentRecord& d, const AppSpec& spec,
                                          const std::string& kind) {
  if (kind == "rollback") {
    PublishDeployment("hold.placed", d, "succeeded",
                      "rolled back to " + BuildLabel(d.release, d.build));
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
    log::Error("engine.auto-promotion-lost", {{"deployment", static_cast<long long>(d.id)},
                                              {"error", created.status().ToString()}});
    Log(d.id, "", "error",
        "could not promote automatically to " + next.stage + ": " + created.status().message());
    return;
  }
  Log(d.id, "", "info",
      "promoting automatically to " + next.stage + ": deployment " + std::to_string(created->id));
  Log(created->id, "", "info", "automatic promotion after deployment " + std::to_string(d.id));
  PublishDeployment("deployment.requested", *created, "waiting", auto_d.comment, "automation");
  Audit("automation", "deployment.request", created->id,
        "automatic promotion of " + BuildLabel(d.release, d.build) + " to " + next.stage);
  EvaluateWaiting(created->id);
}

}  // namespace reprise
