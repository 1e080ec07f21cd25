#include "planner/executor.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

namespace reprise {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSucceeded:
      return "succeeded";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kError:
      return "error";
  }
  return "error";
}

std::string_view TargetOutcomeName(TargetOutcome::Kind kind) {
  switch (kind) {
    case TargetOutcome::Kind::kSucceeded:
      return "succeeded";
    case TargetOutcome::Kind::kFailed:
      return "failed";
    case TargetOutcome::Kind::kCancelled:
      return "cancelled";
    case TargetOutcome::Kind::kNotFinished:
      return "not_finished";
  }
  return "not_finished";
}

namespace {

// Where the walk is: the runtime variables and the selected targets.
struct Frame {
  VariableMap runtime;
  std::set<std::string> unknown_runtime;  // dry run: set in a branch that may not run
  std::optional<std::string> error;       // $Error inside catch
  bool error_unknown = false;             // dry run: inside catch
  std::vector<const TargetInfo*> targets;
  std::string condition;  // dry run: why the steps may not run
  int depth = 0;
};

// The result of running steps.
struct Flow {
  Outcome kind = Outcome::kSucceeded;
  std::string message;  // masked, with position
  Status error;
  std::set<std::string> failed_targets;
  // A user rejected a manual step: no catch handles it and no retry repeats
  // it (the deployment fails); finally blocks still run.
  bool rejected = false;

  bool ok() const { return kind == Outcome::kSucceeded; }
  static Flow Ok() { return {}; }
  static Flow Cancelled() { return {Outcome::kCancelled, "cancelled", Status(), {}}; }
  static Flow Error(Status s) { return {Outcome::kError, s.message(), std::move(s), {}}; }
};

class Walker {
 public:
  Walker(const Plan& plan, const ExecutionContext& context, const ExecutorOptions* options,
         bool dry_run)
      : plan_(plan),
        context_(context),
        options_(options),
        dry_(dry_run),
        clock_(options && options->clock ? *options->clock : SystemClock::Instance()),
        masker_(std::make_shared<const Masker>(context.SensitiveValues())),
        secrets_(context.SensitiveValues()) {
    plan_scopes_ = context.ScopesFor(nullptr);
    for (const auto& t : context.targets) target_scopes_.emplace(t.name, context.ScopesFor(&t));
    if (dry_) {
      for (const auto& t : context.targets) dry_report_.targets.push_back({t.name, {}});
    }
    if (options_ && !options_->cancel) own_cancel_ = std::make_unique<CancelToken>();
  }

  Flow Run(ExecutionReport* report) {
    report_ = report;
    Frame frame;
    for (const auto& t : context_.targets) frame.targets.push_back(&t);
    Flow flow = RunSteps(plan_.steps, frame);
    if (report_) report_->runtime_variables = frame.runtime;
    return flow;
  }

  DryRunReport TakeDryRun() { return std::move(dry_report_); }

 private:
  const CancelToken& Cancel() const { return options_->cancel ? *options_->cancel : *own_cancel_; }
  bool Cancelled() const { return !dry_ && Cancel().IsCancelled(); }

  std::shared_ptr<const Masker> CurrentMasker() {
    std::lock_guard<std::mutex> lock(mu_);
    return masker_;
  }
  void AddSecret(const std::string& value) {
    if (value.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    secrets_.push_back(value);
    masker_ = std::make_shared<const Masker>(secrets_);
  }
  std::string Mask(std::string_view text) { return CurrentMasker()->Mask(text); }
  // Errors reach logs and API responses too: no secrets in them either.
  Flow MaskedError(const Status& status) {
    return Flow::Error(Status(status.code(), Mask(status.message())));
  }

  void Emit(const LogLine& line) {
    std::lock_guard<std::mutex> lock(sink_mu_);
    if (report_) report_->log.push_back(line);
    if (options_ && options_->log_sink) options_->log_sink(line);
  }
  LogSink SinkFn() {
    return [this](const LogLine& line) { Emit(line); };
  }
  void LogPlan(const Step& step, const TargetInfo* target, LogLevel level, std::string_view text) {
    Emit(LogLine{clock_.Now(), level, step.id, step.position, target ? target->name : "",
                 Mask(text)});
  }

  std::string Where(const Step& step) const {
    return FormatPosition(plan_.source_name, step.position) + ": " + std::string(StepKind(step));
  }

  // The one selected target, for plan-level steps; nullptr when several.
  static const TargetInfo* SoleTarget(const Frame& f) {
    return f.targets.size() == 1 ? f.targets[0] : nullptr;
  }

  VariableLookup Lookup(const Frame& f, const TargetInfo* target) const {
    const VariableScopes& base = target ? target_scopes_.at(target->name) : plan_scopes_;
    bool dry = dry_;
    return [&f, &base, dry](std::string_view name) -> Result<std::optional<std::string>> {
      if (name == "Error") {
        if (f.error) return std::optional<std::string>(*f.error);
        if (dry && f.error_unknown) return std::optional<std::string>();
      } else if (auto it = f.runtime.find(name); it != f.runtime.end()) {
        return std::optional<std::string>(it->second.value);
      } else if (dry && f.unknown_runtime.count(std::string(name))) {
        return std::optional<std::string>();
      } else if (auto found = base.Find(name)) {
        return std::optional<std::string>(found->variable.value);
      }
      std::string msg = UndefinedVariableMessage(name);
      if ((name == "TargetName" || name == "TargetPath") && !f.targets.empty()) {
        msg += "; several targets are selected here, use for-each-target";
      }
      return InvalidArgument(msg);
    };
  }

  // Expands `text`; `unknown` (dry run) says a value is known only at run time.
  Result<std::string> Expand(const std::string& text, const Frame& f, const TargetInfo* target,
                             bool* unknown = nullptr) {
    return ExpandVariables(text, Lookup(f, target), unknown);
  }

  Flow Failed(const Step& step, const std::string& message, const Frame& f,
              const TargetInfo* target) {
    Flow flow;
    flow.kind = Outcome::kFailed;
    flow.message = Mask(Where(step) + ": " + message);
    if (target) {
      flow.failed_targets.insert(target->name);
    } else {
      for (const auto* t : f.targets) flow.failed_targets.insert(t->name);
    }
    return flow;
  }

  void Problem(const Step& step, const std::string& message) {
    std::string line = Mask(Where(step) + ": " + message);
    if (std::find(dry_report_.problems.begin(), dry_report_.problems.end(), line) ==
        dry_report_.problems.end()) {
      dry_report_.problems.push_back(line);
    }
  }

  void AddPlanned(const Step& step, const Frame& f, const TargetInfo* only, std::string description,
                  std::optional<ResolvedOperation> op = std::nullopt) {
    PlannedStep p;
    p.step_id = step.id;
    p.position = step.position;
    p.kind = std::string(StepKind(step));
    p.depth = f.depth;
    p.description = Mask(description);
    if (op) p.operation = MaskOperation(*op, *CurrentMasker());
    p.condition = f.condition;
    for (auto& tp : dry_report_.targets) {
      bool selected = only ? tp.target == only->name
                           : std::any_of(f.targets.begin(), f.targets.end(),
                                         [&](const TargetInfo* t) { return t->name == tp.target; });
      if (selected) tp.steps.push_back(p);
    }
  }

  void Record(const Step& step, const TargetInfo* target, std::string description,
              TimePoint started, const Flow& flow) {
    if (!report_) return;
    StepRecord r{step.id,
                 step.position,
                 std::string(StepKind(step)),
                 target ? target->name : "",
                 Mask(description),
                 started,
                 clock_.Now(),
                 flow.kind,
                 flow.message};
    std::lock_guard<std::mutex> lock(sink_mu_);
    report_->steps.push_back(std::move(r));
  }

  Flow RunSteps(const Steps& steps, Frame& f) {
    for (const auto& step : steps) {
      if (Cancelled()) return Flow::Cancelled();
      Flow flow = RunStep(step, f);
      if (!flow.ok()) return flow;
    }
    return Flow::Ok();
  }

  Flow RunStep(const Step& step, Frame& f) {
    return std::visit(
        [&](const auto& body) -> Flow {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, LogStep>) return RunLog(step, body, f);
          if constexpr (std::is_same_v<T, SetStep>) return RunSet(step, body, f);
          if constexpr (std::is_same_v<T, WaitStep>) return RunWait(step, body, f);
          if constexpr (std::is_same_v<T, FailStep>) return RunFail(step, body, f);
          if constexpr (std::is_same_v<T, ManualStep>) return RunManual(step, body, f);
          if constexpr (std::is_same_v<T, IfBlock>) return RunIf(step, body, f);
          if constexpr (std::is_same_v<T, RetryBlock>) return RunRetry(step, body, f);
          if constexpr (std::is_same_v<T, TryBlock>) return RunTry(step, body, f);
          if constexpr (std::is_same_v<T, ForEachTargetBlock>) return RunForEach(step, body, f);
          if constexpr (std::is_same_v<T, OnTargetsBlock>) return RunOnTargets(step, body, f);
          if constexpr (std::is_same_v<T, DeployArtifactStep> || std::is_same_v<T, WriteFileStep> ||
                        std::is_same_v<T, ExecStep> || std::is_same_v<T, EnsureDirStep> ||
                        std::is_same_v<T, DeleteStep> || std::is_same_v<T, HttpCheckStep>) {
            return RunTargetOperation(step, f);
          }
        },
        step.body);
  }

  // ---- plan-level operations ----

  Flow RunLog(const Step& step, const LogStep& log, Frame& f) {
    auto text = Expand(log.message, f, SoleTarget(f));
    if (dry_) {
      if (!text.ok()) {
        Problem(step, text.status().message());
        return Flow::Ok();
      }
      AddPlanned(step, f, nullptr, "log: " + *text);
      return Flow::Ok();
    }
    TimePoint started = clock_.Now();
    if (!text.ok()) return RecordFailure(step, text.status().message(), f, started);
    LogPlan(step, SoleTarget(f), LogLevel::kInfo, *text);
    Record(step, SoleTarget(f), "log", started, Flow::Ok());
    return Flow::Ok();
  }

  Flow RecordFailure(const Step& step, const std::string& message, const Frame& f,
                     TimePoint started) {
    Flow flow = Failed(step, message, f, nullptr);
    LogPlan(step, SoleTarget(f), LogLevel::kError, flow.message);
    Record(step, SoleTarget(f), std::string(StepKind(step)), started, flow);
    return flow;
  }

  Flow RunSet(const Step& step, const SetStep& set, Frame& f) {
    bool unknown = false;
    auto value = Expand(set.value, f, SoleTarget(f), &unknown);
    if (dry_) {
      if (!value.ok()) {
        Problem(step, value.status().message());
        unknown = true;
      }
      if (set.sensitive && value.ok() && !unknown) AddSecret(*value);
      std::string shown = set.sensitive ? std::string(kMask) : (value.ok() ? *value : "?");
      AddPlanned(step, f, nullptr, "set $" + set.name + " = " + shown);
      // A value set where the step may not run is not known before running.
      if (unknown || !f.condition.empty()) {
        f.runtime.erase(set.name);
        f.unknown_runtime.insert(set.name);
      } else {
        f.runtime[set.name] = Variable{*value, set.sensitive};
        f.unknown_runtime.erase(set.name);
      }
      return Flow::Ok();
    }
    TimePoint started = clock_.Now();
    if (!value.ok()) return RecordFailure(step, value.status().message(), f, started);
    if (set.sensitive) AddSecret(*value);
    f.runtime[set.name] = Variable{*value, set.sensitive};
    LogPlan(step, SoleTarget(f), LogLevel::kInfo,
            "set $" + set.name + " = " + (set.sensitive ? std::string(kMask) : *value));
    Record(step, SoleTarget(f), "set $" + set.name, started, Flow::Ok());
    return Flow::Ok();
  }

  Flow RunWait(const Step& step, const WaitStep& wait, Frame& f) {
    std::string description = "wait " + std::to_string(wait.seconds) + " s";
    if (dry_) {
      AddPlanned(step, f, nullptr, description);
      return Flow::Ok();
    }
    TimePoint started = clock_.Now();
    LogPlan(step, SoleTarget(f), LogLevel::kInfo, "waiting " + std::to_string(wait.seconds) + " s");
    Flow flow = Sleep(std::chrono::seconds(wait.seconds)) ? Flow::Ok() : Flow::Cancelled();
    Record(step, SoleTarget(f), description, started, flow);
    return flow;
  }

  bool Sleep(std::chrono::milliseconds d) {
    if (d.count() == 0) return !Cancelled();
    if (options_->sleeper) return options_->sleeper(d, Cancel());
    return Cancel().WaitFor(d);
  }

  Flow RunFail(const Step& step, const FailStep& fail, Frame& f) {
    auto text = Expand(fail.message, f, SoleTarget(f));
    std::string message = text.ok() ? *text : text.status().message();
    if (dry_) {
      if (!text.ok()) Problem(step, text.status().message());
      AddPlanned(step, f, nullptr, "fail: " + message);
      // Certain to run: the steps after it would not (unless a catch handles it).
      return f.condition.empty() ? Failed(step, message, f, nullptr) : Flow::Ok();
    }
    return RecordFailure(step, message, f, clock_.Now());
  }

  Flow RunManual(const Step& step, const ManualStep& manual, Frame& f) {
    auto text = Expand(manual.message, f, SoleTarget(f));
    std::string who = manual.role.empty() ? "anyone who may deploy" : "a " + manual.role;
    if (dry_) {
      if (!text.ok()) Problem(step, text.status().message());
      AddPlanned(step, f, nullptr,
                 "manual: waits for " + who +
                     " to continue: " + (text.ok() ? *text : text.status().message()));
      return Flow::Ok();
    }
    TimePoint started = clock_.Now();
    if (!text.ok()) return RecordFailure(step, text.status().message(), f, started);
    if (!options_->manual) {
      Flow flow = Flow::Error(FailedPrecondition(
          Where(step) + ": manual steps need a ManualContinuation in the executor options"));
      Record(step, SoleTarget(f), "manual", started, flow);
      return flow;
    }
    LogPlan(step, SoleTarget(f), LogLevel::kInfo, "waiting for " + who + " to continue: " + *text);
    ManualRequest request{step.id, step.position, Mask(*text), manual.role};
    OperationOutcome outcome = options_->manual->WaitForContinue(request, Cancel());
    Flow flow;
    if (Cancelled()) {
      flow = Flow::Cancelled();
    } else if (outcome.kind == OperationOutcome::Kind::kFailed) {
      // A manual step fails only when someone rejects it.
      flow = Failed(step, outcome.message, f, nullptr);
      flow.rejected = true;
      LogPlan(step, SoleTarget(f), LogLevel::kError, flow.message);
    } else if (outcome.kind == OperationOutcome::Kind::kError) {
      flow = MaskedError(outcome.error.WithContext(Where(step)));
    } else {
      LogPlan(step, SoleTarget(f), LogLevel::kInfo, "continued");
    }
    Record(step, SoleTarget(f), "manual", started, flow);
    return flow;
  }

  // ---- target operations ----

  Result<ResolvedOperation> Resolve(const Step& step, const Frame& f, const TargetInfo& target,
                                    bool* unknown) {
    auto ex = [&](const std::string& text) { return Expand(text, f, &target, unknown); };
    return std::visit(
        [&](const auto& s) -> Result<ResolvedOperation> {
          using T = std::decay_t<decltype(s)>;
          if constexpr (std::is_same_v<T, DeployArtifactStep>) {
            DeployArtifactOp op;
            REPRISE_ASSIGN_OR_RETURN(op.artifact, ex(s.artifact));
            auto it = context_.artifact_sha256.find(op.artifact);
            if (it == context_.artifact_sha256.end()) {
              std::string have;
              for (const auto& [name, sha] : context_.artifact_sha256) {
                have += (have.empty() ? "" : ", ") + name;
              }
              return InvalidArgument("build " + context_.build + " has no artifact \"" +
                                     op.artifact + "\" (it has: " + (have.empty() ? "none" : have) +
                                     ")");
            }
            op.sha256 = it->second;
            if (auto m = context_.artifact_manifest_hash.find(op.artifact);
                m != context_.artifact_manifest_hash.end())
              op.manifest_hash = m->second;
            REPRISE_ASSIGN_OR_RETURN(op.to, ex(s.to));
            op.mode = s.mode;
            op.keep = s.keep;
            return ResolvedOperation(op);
          }
          if constexpr (std::is_same_v<T, WriteFileStep>) {
            WriteFileOp op;
            REPRISE_ASSIGN_OR_RETURN(op.path, ex(s.path));
            if (s.is_template) {
              REPRISE_ASSIGN_OR_RETURN(op.content, ex(s.text));
            } else {
              op.content = s.text;
            }
            op.mode = s.mode;
            return ResolvedOperation(op);
          }
          if constexpr (std::is_same_v<T, ExecStep>) {
            ExecOp op;
            for (const auto& a : s.argv) {
              REPRISE_ASSIGN_OR_RETURN(std::string arg, ex(a));
              op.argv.push_back(std::move(arg));
            }
            if (s.argv.empty()) {
              REPRISE_ASSIGN_OR_RETURN(op.command, ex(s.command));
            }
            op.timeout_seconds = s.timeout_seconds.value_or(0);
            REPRISE_ASSIGN_OR_RETURN(op.cwd, ex(s.cwd));
            for (const auto& [k, v] : s.env) {
              REPRISE_ASSIGN_OR_RETURN(op.env[k], ex(v));
            }
            op.success_codes = s.success_codes;
            return ResolvedOperation(op);
          }
          if constexpr (std::is_same_v<T, EnsureDirStep>) {
            EnsureDirOp op;
            REPRISE_ASSIGN_OR_RETURN(op.path, ex(s.path));
            op.mode = s.mode;
            return ResolvedOperation(op);
          }
          if constexpr (std::is_same_v<T, DeleteStep>) {
            DeleteOp op;
            REPRISE_ASSIGN_OR_RETURN(op.path, ex(s.path));
            return ResolvedOperation(op);
          }
          if constexpr (std::is_same_v<T, HttpCheckStep>) {
            HttpCheckOp op;
            REPRISE_ASSIGN_OR_RETURN(op.url, ex(s.url));
            op.expect_status = s.expect_status;
            op.retries = s.retries;
            op.delay_seconds = s.delay_seconds;
            op.timeout_seconds = s.timeout_seconds;
            return ResolvedOperation(op);
          }
          return Internal("not a target operation");
        },
        step.body);
  }

  Flow RunTargetOperation(const Step& step, Frame& f) {
    if (f.targets.empty()) {
      if (dry_) Problem(step, "no target is selected here");
      return dry_ ? Flow::Ok() : Failed(step, "no target is selected here", f, nullptr);
    }
    for (const TargetInfo* target : f.targets) {
      bool unknown = false;
      auto op = Resolve(step, f, *target, &unknown);
      if (dry_) {
        if (!op.ok()) {
          Problem(step, "on " + target->name + ": " + op.status().message());
          AddPlanned(step, f, target, std::string(StepKind(step)) + ": " + op.status().message());
        } else {
          AddPlanned(step, f, target, DescribeOperation(*op), *op);
        }
        continue;
      }
      if (Cancelled()) return Flow::Cancelled();
      Flow flow = RunOnTarget(step, f, *target, op);
      if (!flow.ok()) return flow;
    }
    return Flow::Ok();
  }

  Flow RunOnTarget(const Step& step, const Frame& f, const TargetInfo& target,
                   const Result<ResolvedOperation>& op) {
    TimePoint started = clock_.Now();
    auto masker = CurrentMasker();
    StepLog log(clock_, *masker, step.id, step.position, target.name, SinkFn());
    if (!op.ok()) {
      Flow flow = Failed(step, op.status().message(), f, &target);
      log.Error(flow.message);
      Record(step, &target, std::string(StepKind(step)), started, flow);
      return flow;
    }
    std::string description = DescribeOperation(*op);
    log.Info(description);
    std::chrono::seconds timeout = options_->step_timeout;
    if (const auto* exec = std::get_if<ExecOp>(&*op); exec && exec->timeout_seconds > 0) {
      timeout = std::chrono::seconds(exec->timeout_seconds);
    }
    TimePoint deadline = timeout.count() > 0 ? started + timeout : TimePoint::max();
    CancelToken step_cancel(Cancel(), clock_, deadline);
    OperationOutcome outcome = options_->operations->Run(target, *op, log, step_cancel);
    log.FinishOutput();
    Flow flow;
    // When the step's deadline passed, the operation was stopped through its
    // cancel token: a remote agent then answers "cancelled" (an error), a
    // local one or a fake may answer with a failure. Either way the step
    // timed out, which is a failure of the step that try/catch can handle,
    // not an orchestration error. Errors unrelated to the stop (the agent
    // went away) stay errors.
    const bool timed_out =
        step_cancel.DeadlineExceeded() &&
        (outcome.kind == OperationOutcome::Kind::kFailed ||
         (outcome.kind == OperationOutcome::Kind::kError &&
          (outcome.error.code() == Code::kCancelled || outcome.error.code() == Code::kTimeout)));
    if (Cancel().IsCancelled()) {
      flow = Flow::Cancelled();
    } else if (timed_out) {
      flow = Failed(step, "timed out after " + std::to_string(timeout.count()) + " s", f, &target);
      log.Error(flow.message);
    } else if (outcome.kind == OperationOutcome::Kind::kError) {
      flow = MaskedError(outcome.error.WithContext(Where(step) + " on " + target.name));
      log.Error(flow.message);
    } else if (outcome.kind == OperationOutcome::Kind::kFailed) {
      flow = Failed(step, outcome.message, f, &target);
      log.Error(flow.message);
    }
    Record(step, &target, description, started, flow);
    return flow;
  }

  // ---- blocks ----

  // Dry run: walk `steps` in a copy of `f` that may not run; afterwards any
  // runtime variable the branch set is unknown in `f`.
  void WalkConditional(const Steps& steps, Frame& f, const std::string& condition,
                       bool error_unknown = false) {
    Frame branch = f;
    branch.condition = f.condition.empty() ? condition : f.condition + "; " + condition;
    branch.depth = f.depth + 1;
    if (error_unknown) branch.error_unknown = true;
    RunSteps(steps, branch);
    MergeUnknown(f, branch);
  }
  static void MergeUnknown(Frame& f, const Frame& branch) {
    for (const auto& name : branch.unknown_runtime) {
      f.runtime.erase(name);
      f.unknown_runtime.insert(name);
    }
    for (const auto& [name, var] : branch.runtime) {
      auto it = f.runtime.find(name);
      if (it == f.runtime.end() || !(it->second == var)) {
        f.runtime.erase(name);
        f.unknown_runtime.insert(name);
      }
    }
  }

  Flow RunNested(const Steps& steps, Frame& f) {
    ++f.depth;
    Flow flow = RunSteps(steps, f);
    --f.depth;
    return flow;
  }

  Flow RunIf(const Step& step, const IfBlock& block, Frame& f) {
    auto value = block.condition.Evaluate(Lookup(f, SoleTarget(f)));
    const std::string& cond = block.condition.text();
    if (dry_) {
      if (!value.ok()) {
        Problem(step, value.status().message());
        AddPlanned(step, f, nullptr, "if " + cond + ": " + value.status().message());
        return Flow::Ok();
      }
      if (!value->has_value()) {
        AddPlanned(step, f, nullptr, "if " + cond + ": known at run time, both branches shown");
        WalkConditional(block.then_steps, f, "only if " + cond + " (known at run time)");
        WalkConditional(block.else_steps, f, "only unless " + cond + " (known at run time)");
        return Flow::Ok();
      }
      bool taken = **value;
      AddPlanned(step, f, nullptr,
                 "if " + cond + ": " + (taken ? "true, runs 'then'" : "false, runs 'else'"));
      return RunNested(taken ? block.then_steps : block.else_steps, f);
    }
    TimePoint started = clock_.Now();
    if (!value.ok()) return RecordFailure(step, value.status().message(), f, started);
    bool taken = **value;
    LogPlan(step, SoleTarget(f), LogLevel::kInfo, "if " + cond + ": " + (taken ? "true" : "false"));
    return RunNested(taken ? block.then_steps : block.else_steps, f);
  }

  Flow RunRetry(const Step& step, const RetryBlock& block, Frame& f) {
    int attempts = block.count + 1;
    if (dry_) {
      AddPlanned(step, f, nullptr,
                 "retry: up to " + std::to_string(attempts) + " attempts, " +
                     std::to_string(block.delay_seconds) + " s apart");
      return RunNested(block.steps, f);
    }
    Flow flow;
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      flow = RunNested(block.steps, f);
      if (flow.kind != Outcome::kFailed || flow.rejected) return flow;
      if (attempt == attempts) break;
      LogPlan(step, SoleTarget(f), LogLevel::kWarning,
              "attempt " + std::to_string(attempt) + " of " + std::to_string(attempts) +
                  " failed (" + flow.message + "); retrying in " +
                  std::to_string(block.delay_seconds) + " s");
      if (!Sleep(std::chrono::seconds(block.delay_seconds))) return Flow::Cancelled();
    }
    flow.message = Mask(Where(step) + ": all " + std::to_string(attempts) +
                        " attempts failed; last: " + flow.message);
    return flow;
  }

  Flow RunTry(const Step& step, const TryBlock& block, Frame& f) {
    if (dry_) {
      AddPlanned(step, f, nullptr, "try");
      Flow flow = RunNested(block.steps, f);
      if (block.has_catch && flow.kind == Outcome::kFailed) {
        // The try fails for sure: the catch runs for sure.
        std::optional<std::string> outer_error = f.error;
        f.error = flow.message;
        flow = RunNested(block.catch_steps, f);
        f.error = outer_error;
      } else if (block.has_catch) {
        WalkConditional(block.catch_steps, f, "only if a step in the try fails", true);
      }
      Flow cleanup = RunNested(block.finally_steps, f);
      return cleanup.ok() ? flow : cleanup;
    }
    Flow flow = RunNested(block.steps, f);
    if (flow.kind == Outcome::kFailed && block.has_catch && !flow.rejected) {
      LogPlan(step, SoleTarget(f), LogLevel::kWarning, "caught: " + flow.message);
      std::optional<std::string> outer_error = f.error;
      f.error = flow.message;
      flow = RunNested(block.catch_steps, f);
      f.error = outer_error;
    }
    // Cleanup runs after success or failure, not after cancellation or an
    // orchestration error (nothing can be trusted to run then).
    if (flow.kind == Outcome::kSucceeded || flow.kind == Outcome::kFailed) {
      Flow cleanup = RunNested(block.finally_steps, f);
      if (!cleanup.ok()) return cleanup;
    }
    return flow;
  }

  Flow RunForEach(const Step& step, const ForEachTargetBlock& block, Frame& f) {
    if (dry_) {
      AddPlanned(step, f, nullptr,
                 std::string("for each target") + (block.parallel ? " (in parallel)" : ""));
      for (const TargetInfo* t : f.targets) {
        Frame pass = f;
        pass.targets = {t};
        pass.depth = f.depth + 1;
        Flow flow = RunSteps(block.steps, pass);
        if (!flow.ok()) return flow;
      }
      return Flow::Ok();
    }
    std::vector<Flow> flows(f.targets.size());
    auto run_pass = [&](size_t i) {
      Frame pass = f;
      pass.targets = {f.targets[i]};
      pass.depth = f.depth + 1;
      flows[i] = RunSteps(block.steps, pass);
    };
    if (block.parallel && f.targets.size() > 1) {
      std::vector<std::thread> threads;
      for (size_t i = 0; i < f.targets.size(); ++i) threads.emplace_back(run_pass, i);
      for (auto& t : threads) t.join();
    } else {
      for (size_t i = 0; i < f.targets.size(); ++i) {
        run_pass(i);
        if (!flows[i].ok()) {
          flows.resize(i + 1);
          break;
        }
      }
    }
    // An error outranks cancellation, which outranks failures.
    Flow combined;
    for (const auto& flow : flows) {
      if (flow.kind == Outcome::kError) return flow;
    }
    for (const auto& flow : flows) {
      if (flow.kind == Outcome::kCancelled) return flow;
    }
    for (const auto& flow : flows) {
      if (flow.kind != Outcome::kFailed) continue;
      combined.kind = Outcome::kFailed;
      combined.message += (combined.message.empty() ? "" : "; ") + flow.message;
      combined.failed_targets.insert(flow.failed_targets.begin(), flow.failed_targets.end());
      combined.rejected = combined.rejected || flow.rejected;
    }
    return combined;
  }

  Flow RunOnTargets(const Step& step, const OnTargetsBlock& block, Frame& f) {
    std::vector<const TargetInfo*> selected;
    for (const auto& name : block.targets) {
      const TargetInfo* t = context_.FindTarget(name);
      if (!t) {
        std::string message = "target " + name + " is not a target of stage " + context_.stage;
        if (dry_) {
          Problem(step, message);
          continue;
        }
        return RecordFailure(step, message, f, clock_.Now());
      }
      if (std::find(f.targets.begin(), f.targets.end(), t) != f.targets.end()) {
        selected.push_back(t);
      }
    }
    std::string names;
    for (const auto* t : selected) names += (names.empty() ? "" : ", ") + t->name;
    if (dry_)
      AddPlanned(step, f, nullptr, "on targets: " + (names.empty() ? "(none here)" : names));
    if (!dry_) {
      LogPlan(step, SoleTarget(f), LogLevel::kInfo,
              "on targets: " + (names.empty() ? "(none selected here; skipped)" : names));
    }
    if (selected.empty()) return Flow::Ok();
    std::vector<const TargetInfo*> saved = f.targets;
    f.targets = selected;
    Flow flow = RunNested(block.steps, f);
    f.targets = saved;
    return flow;
  }

  const struct Plan& plan_;
  const ExecutionContext& context_;
  const ExecutorOptions* options_;
  bool dry_;
  const Clock& clock_;
  std::unique_ptr<CancelToken> own_cancel_;
  VariableScopes plan_scopes_;
  std::map<std::string, VariableScopes> target_scopes_;

  std::mutex mu_;  // guards masker_ and secrets_
  std::shared_ptr<const Masker> masker_;
  std::vector<std::string> secrets_;

  std::mutex sink_mu_;  // guards report_ lists and sink calls
  ExecutionReport* report_ = nullptr;
  DryRunReport dry_report_;
};

Status CheckInputs(const ExecutionContext& context) {
  REPRISE_RETURN_IF_ERROR(context.Validate());
  if (context.targets.empty()) return InvalidArgument("the deployment has no targets");
  return Status::Ok();
}

}  // namespace

Executor::Executor(ExecutorOptions options) : options_(std::move(options)) {}

Result<ExecutionReport> Executor::Execute(const struct Plan& plan,
                                          const ExecutionContext& context) {
  REPRISE_RETURN_IF_ERROR(CheckInputs(context));
  if (!options_.operations) return InvalidArgument("the executor needs Operations");
  ExecutionReport report;
  Walker walker(plan, context, &options_, /*dry_run=*/false);
  Flow flow = walker.Run(&report);
  report.outcome = flow.kind;
  if (flow.kind == Outcome::kFailed) report.message = flow.message;
  if (flow.kind == Outcome::kError) {
    report.error = flow.error;
    report.message = flow.message;
  }
  if (flow.kind == Outcome::kCancelled) report.message = "cancelled";
  for (const auto& t : context.targets) {
    TargetOutcome outcome{t.name, TargetOutcome::Kind::kSucceeded, ""};
    switch (flow.kind) {
      case Outcome::kSucceeded:
        break;
      case Outcome::kCancelled:
        outcome.kind = TargetOutcome::Kind::kCancelled;
        break;
      case Outcome::kFailed:
        if (flow.failed_targets.count(t.name)) {
          outcome.kind = TargetOutcome::Kind::kFailed;
          outcome.message = flow.message;
        } else {
          outcome.kind = TargetOutcome::Kind::kNotFinished;
        }
        break;
      case Outcome::kError:
        outcome.kind = TargetOutcome::Kind::kNotFinished;
        outcome.message = flow.message;
        break;
    }
    report.targets.push_back(std::move(outcome));
  }
  return report;
}

Result<DryRunReport> DryRun(const struct Plan& plan, const ExecutionContext& context) {
  REPRISE_RETURN_IF_ERROR(CheckInputs(context));
  Walker walker(plan, context, nullptr, /*dry_run=*/true);
  Flow flow = walker.Run(nullptr);
  DryRunReport report = walker.TakeDryRun();
  if (flow.kind == Outcome::kFailed) {
    report.problems.push_back("the deployment would fail: " + flow.message);
  }
  return report;
}

}  // namespace reprise
