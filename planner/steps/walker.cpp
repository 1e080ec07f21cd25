#include "planner/steps/walker.h"

#include <algorithm>

#include "planner/steps/registry.h"

namespace reprise {
namespace {

// A target operation's view of the walk: expansion for one target.
class TargetResolver : public Resolver {
 public:
  TargetResolver(const Walker& walker, const Frame& frame, const TargetInfo& target, bool* unknown)
      : walker_(walker), frame_(frame), target_(target), unknown_(unknown) {}
  Result<std::string> Expand(const std::string& text) const override {
    return walker_.Expand(text, frame_, &target_, unknown_);
  }
  const ExecutionContext& context() const override { return walker_.context(); }

 private:
  const Walker& walker_;
  const Frame& frame_;
  const TargetInfo& target_;
  bool* unknown_;
};

}  // namespace

Walker::Walker(const Plan& plan, const ExecutionContext& context, const ExecutorOptions* options,
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

Flow Walker::Run(ExecutionReport* report) {
  report_ = report;
  Frame frame;
  for (const auto& t : context_.targets) frame.targets.push_back(&t);
  Flow flow = RunSteps(plan_.steps, frame);
  if (report_) report_->runtime_variables = frame.runtime;
  return flow;
}

std::shared_ptr<const Masker> Walker::CurrentMasker() {
  std::lock_guard<std::mutex> lock(mu_);
  return masker_;
}

void Walker::AddSecret(const std::string& value) {
  if (value.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  secrets_.push_back(value);
  masker_ = std::make_shared<const Masker>(secrets_);
}

Flow Walker::MaskedError(const Status& status) {
  return Flow::Error(Status(status.code(), Mask(status.message())));
}

void Walker::Emit(const LogLine& line) {
  std::lock_guard<std::mutex> lock(sink_mu_);
  if (report_) report_->log.push_back(line);
  if (options_ && options_->log_sink) options_->log_sink(line);
}

LogSink Walker::SinkFn() {
  return [this](const LogLine& line) { Emit(line); };
}

void Walker::LogPlan(const Step& step, const TargetInfo* target, LogLevel level,
                     std::string_view text) {
  Emit(
      LogLine{clock_.Now(), level, step.id, step.position, target ? target->name : "", Mask(text)});
}

std::string Walker::Where(const Step& step) const {
  return FormatPosition(plan_.source_name, step.position) + ": " + std::string(StepKind(step));
}

VariableLookup Walker::Lookup(const Frame& f, const TargetInfo* target) const {
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

Result<std::string> Walker::Expand(const std::string& text, const Frame& f,
                                   const TargetInfo* target, bool* unknown) const {
  return ExpandVariables(text, Lookup(f, target), unknown);
}

Flow Walker::Failed(const Step& step, const std::string& message, const Frame& f,
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

void Walker::Problem(const Step& step, const std::string& message) {
  std::string line = Mask(Where(step) + ": " + message);
  if (std::find(dry_report_.problems.begin(), dry_report_.problems.end(), line) ==
      dry_report_.problems.end()) {
    dry_report_.problems.push_back(line);
  }
}

void Walker::AddPlanned(const Step& step, const Frame& f, const TargetInfo* only,
                        std::string description, std::optional<ResolvedOperation> op) {
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

void Walker::Record(const Step& step, const TargetInfo* target, std::string description,
                    TimePoint started, const Flow& flow, bool reached_target) {
  if (!report_) return;
  StepRecord r{step.id,
               step.position,
               std::string(StepKind(step)),
               target ? target->name : "",
               Mask(description),
               started,
               clock_.Now(),
               flow.kind,
               flow.message,
               false,
               "",
               false};
  if (step.irreversible && reached_target) {
    r.irreversible = true;
    r.note = Mask(step.note);
    r.has_undo = !step.undo.empty();
  }
  if (options_ && options_->on_step) options_->on_step(r);
  std::lock_guard<std::mutex> lock(sink_mu_);
  report_->steps.push_back(std::move(r));
}

Flow Walker::RunSteps(const Steps& steps, Frame& f) {
  for (const auto& step : steps) {
    if (Cancelled()) return Flow::Cancelled();
    Flow flow = RunStep(step, f);
    if (!flow.ok()) return flow;
  }
  return Flow::Ok();
}

Flow Walker::RecordFailure(const Step& step, const std::string& message, const Frame& f,
                           TimePoint started) {
  Flow flow = Failed(step, message, f, nullptr);
  LogPlan(step, SoleTarget(f), LogLevel::kError, flow.message);
  Record(step, SoleTarget(f), std::string(StepKind(step)), started, flow);
  return flow;
}

bool Walker::Sleep(std::chrono::milliseconds d) {
  if (d.count() == 0) return !Cancelled();
  if (options_->sleeper) return options_->sleeper(d, Cancel());
  return Cancel().WaitFor(d);
}

Flow Walker::RunTargetOperation(const Step& step, Frame& f) {
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

Flow Walker::RunOnTarget(const Step& step, const Frame& f, const TargetInfo& target,
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
  Record(step, &target, description, started, flow, /*reached_target=*/true);
  return flow;
}

void Walker::WalkConditional(const Steps& steps, Frame& f, const std::string& condition,
                             bool error_unknown) {
  Frame branch = f;
  branch.condition = f.condition.empty() ? condition : f.condition + "; " + condition;
  branch.depth = f.depth + 1;
  if (error_unknown) branch.error_unknown = true;
  RunSteps(steps, branch);
  MergeUnknown(f, branch);
}

void Walker::MergeUnknown(Frame& f, const Frame& branch) {
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

Flow Walker::RunNested(const Steps& steps, Frame& f) {
  ++f.depth;
  Flow flow = RunSteps(steps, f);
  --f.depth;
  return flow;
}

const CancelToken& Walker::Cancel() const {
  return options_->cancel ? *options_->cancel : *own_cancel_;
}

std::string Walker::Mask(std::string_view text) { return CurrentMasker()->Mask(text); }

// Every kind is dispatched through the registry: plan-level steps and blocks
// run themselves, target operations resolve and run on each selected target.
Flow Walker::RunStep(const Step& step, Frame& f) {
  const StepKindInfo& kind = KindOf(step);
  if (kind.run) return kind.run(*this, step, f);
  return RunTargetOperation(step, f);
}

Result<ResolvedOperation> Walker::Resolve(const Step& step, const Frame& f,
                                          const TargetInfo& target, bool* unknown) {
  return KindOf(step).resolve(step, TargetResolver(*this, f, target, unknown));
}

}  // namespace reprise
