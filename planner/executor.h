// Executor: walks a plan for one deployment (an ExecutionContext), running
// target operations through an Operations implementation, and produces a
// report; DryRun walks the same plan without running anything, for previews.
//
// How a plan maps onto targets: the plan starts with all of the stage's
// targets selected. A target operation (deploy-artifact, write-file, exec,
// ensure-dir, delete, http-check) runs on each selected target in order,
// stopping at the first failure. `for-each-target` runs its steps once per
// selected target (selecting just that one; in parallel when asked), and
// `on-targets` narrows the selection by name. log/set/wait/fail/manual and
// conditions run once per pass; $TargetName is defined where exactly one
// target is selected. Runtime variables set inside a for-each-target pass
// stay local to that pass.
//
// Execute keeps no state between calls: one Executor may run several
// deployments, also concurrently, if its options' sink, operations and manual
// handler allow that. DryRun is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "planner/execution_context.h"
#include "planner/operations.h"
#include "planner/plan.h"

namespace reprise {

// Sleeps for `duration` unless `cancel` fires first; returns false when
// cancelled. Tests pass one that advances a FakeClock instead of sleeping.
using Sleeper = std::function<bool(std::chrono::milliseconds duration, const CancelToken& cancel)>;

struct StepRecord;

struct ExecutorOptions {
  const Clock* clock = nullptr;          // default: SystemClock
  Operations* operations = nullptr;      // required by Execute for target operations
  ManualContinuation* manual = nullptr;  // required by Execute for `manual` steps
  LogSink log_sink;                      // optional; calls are serialised
  const CancelToken* cancel = nullptr;   // optional; cancels the whole deployment
  // Deadline for one target operation (exec's own `timeout` wins); 0 = none.
  std::chrono::seconds step_timeout{3600};
  Sleeper sleeper;  // default: real time, interrupted by cancellation
  // Optional; called with each step record as it is made (from the thread
  // that ran the step, possibly several at once), e.g. to keep irreversible
  // steps durably before the deployment ends.
  std::function<void(const StepRecord&)> on_step;
};

enum class Outcome { kSucceeded, kFailed, kCancelled, kError };
std::string_view OutcomeName(Outcome outcome);

struct TargetOutcome {
  enum class Kind {
    kSucceeded,
    kFailed,  // the failure that ended the deployment involved this target
    kCancelled,
    kNotFinished,  // the deployment ended (failed, error) before the plan finished
  };
  std::string target;
  Kind kind = Kind::kSucceeded;
  std::string message;
};
std::string_view TargetOutcomeName(TargetOutcome::Kind kind);

// One step on one target ("" for plan-level steps), as it ran.
struct StepRecord {
  std::string step_id;
  SourcePosition position;
  std::string kind;
  std::string target;
  std::string description;  // masked
  TimePoint started;
  TimePoint finished;
  Outcome outcome = Outcome::kSucceeded;
  std::string message;  // masked
  // The step is marked irreversible (target operations that reached the
  // target): its note (masked) and whether it declares undo steps.
  bool irreversible = false;
  std::string note;
  bool has_undo = false;
};

struct ExecutionReport {
  Outcome outcome = Outcome::kSucceeded;
  // For kFailed: "plan:line:column: <step kind>: message" (masked).
  std::string message;
  Status error;                        // for kError: the orchestration broke
  std::vector<TargetOutcome> targets;  // in context order
  std::vector<StepRecord> steps;
  std::vector<LogLine> log;       // everything sent to the sink, in order
  VariableMap runtime_variables;  // as left at the end of the plan
};

// One entry of a dry run.
struct PlannedStep {
  std::string step_id;
  SourcePosition position;
  std::string kind;
  int depth = 0;                               // block nesting, for indentation
  std::string description;                     // variables expanded, sensitive masked
  std::optional<ResolvedOperation> operation;  // target operations; masked
  // Empty when the step will run (unless an earlier step fails); otherwise
  // why it may not, e.g. "only if $Answer == 'yes' (known at run time)".
  std::string condition;
};

struct TargetPlan {
  std::string target;
  std::vector<PlannedStep> steps;  // plan-level steps appear for every selected target
};

struct DryRunReport {
  std::vector<TargetPlan> targets;  // in context order
  // Problems the run would hit for sure, e.g. an undefined variable, with
  // their position ("plan:3:5: exec: undefined variable $X (...)").
  std::vector<std::string> problems;
};

class Executor {
 public:
  explicit Executor(ExecutorOptions options);

  // Runs the plan. A failed deployment is a report with outcome kFailed; an
  // orchestration error is a report with kError and `error` set. A non-OK
  // Result means the call itself was wrong (invalid context, no targets).
  Result<ExecutionReport> Execute(const Plan& plan, const ExecutionContext& context);

 private:
  ExecutorOptions options_;
};

// What Execute would do on each target, without running anything.
Result<DryRunReport> DryRun(const Plan& plan, const ExecutionContext& context);

}  // namespace reprise
