// Walker: one walk of a plan for one deployment, shared by Execute and DryRun
// (executor.h). The walker runs steps in order and runs target operations on
// the selected targets; what each step kind does is in its own file under
// planner/steps/ and reached through the registry. This header is what those
// files use: the walk's state (Frame), the result of running steps (Flow),
// and the walker's services (variables, logs, records, preview entries).
//
// Thread-safety: one Walker per Execute/DryRun call. Parallel for-each-target
// passes run steps from several threads, each on its own Frame; the masker,
// the log sink and the report lists are guarded inside the Walker.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "planner/executor.h"

namespace reprise {

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
  static Flow Cancelled() { return {Outcome::kCancelled, "cancelled", Status(), {}, false}; }
  static Flow Error(Status s) { return {Outcome::kError, s.message(), std::move(s), {}, false}; }
};

// What a target operation's Resolve sees: its arguments expanded for one
// target, and the deployment's execution context.
class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual Result<std::string> Expand(const std::string& text) const = 0;
  virtual const ExecutionContext& context() const = 0;
};

class Walker {
 public:
  // `options` is null for a dry run.
  Walker(const Plan& plan, const ExecutionContext& context, const ExecutorOptions* options,
         bool dry_run);

  Flow Run(ExecutionReport* report);
  DryRunReport TakeDryRun() { return std::move(dry_report_); }

  // ---- for step kinds ----
  bool dry() const { return dry_; }
  const ExecutionContext& context() const { return context_; }
  const ExecutorOptions& options() const { return *options_; }  // not in a dry run
  const Clock& clock() const { return clock_; }
  const CancelToken& Cancel() const;
  bool Cancelled() const { return !dry_ && Cancel().IsCancelled(); }
  // Sleeps (through the options' sleeper); false when cancelled first.
  bool Sleep(std::chrono::milliseconds d);

  Flow RunSteps(const Steps& steps, Frame& f);
  // Runs `steps` one level deeper.
  Flow RunNested(const Steps& steps, Frame& f);
  // Dry run: walk `steps` in a copy of `f` that may not run; afterwards any
  // runtime variable the branch set is unknown in `f`.
  void WalkConditional(const Steps& steps, Frame& f, const std::string& condition,
                       bool error_unknown = false);

  // The one selected target, for plan-level steps; nullptr when several.
  static const TargetInfo* SoleTarget(const Frame& f) {
    return f.targets.size() == 1 ? f.targets[0] : nullptr;
  }
  VariableLookup Lookup(const Frame& f, const TargetInfo* target) const;
  // Expands `text`; `unknown` (dry run) says a value is known only at run time.
  Result<std::string> Expand(const std::string& text, const Frame& f, const TargetInfo* target,
                             bool* unknown = nullptr) const;

  void AddSecret(const std::string& value);
  std::string Mask(std::string_view text);
  // Errors reach logs and API responses too: no secrets in them either.
  Flow MaskedError(const Status& status);
  // "plan:line:column: kind"
  std::string Where(const Step& step) const;

  // A failure of `step` on `target` (all selected targets when null).
  Flow Failed(const Step& step, const std::string& message, const Frame& f,
              const TargetInfo* target);
  // A failure of a plan-level step: logged and recorded.
  Flow RecordFailure(const Step& step, const std::string& message, const Frame& f,
                     TimePoint started);
  void LogPlan(const Step& step, const TargetInfo* target, LogLevel level, std::string_view text);
  // `reached_target`: the operation was sent to the target (an irreversible
  // step's record then says so).
  void Record(const Step& step, const TargetInfo* target, std::string description,
              TimePoint started, const Flow& flow, bool reached_target = false);

  // Dry run: a problem the deployment would hit for sure.
  void Problem(const Step& step, const std::string& message);
  // Dry run: a preview entry, on `only` or on every selected target.
  void AddPlanned(const Step& step, const Frame& f, const TargetInfo* only, std::string description,
                  std::optional<ResolvedOperation> op = std::nullopt);

 private:
  std::shared_ptr<const Masker> CurrentMasker();
  void Emit(const LogLine& line);
  LogSink SinkFn();
  Flow RunStep(const Step& step, Frame& f);
  Result<ResolvedOperation> Resolve(const Step& step, const Frame& f, const TargetInfo& target,
                                    bool* unknown);
  Flow RunTargetOperation(const Step& step, Frame& f);
  Flow RunOnTarget(const Step& step, const Frame& f, const TargetInfo& target,
                   const Result<ResolvedOperation>& op);
  static void MergeUnknown(Frame& f, const Frame& branch);

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

}  // namespace reprise
