#include "planner/executor.h"

#include "common/enum_names.h"
#include "planner/steps/walker.h"

namespace reprise {

namespace {

// clang-format off
constexpr EnumName<Outcome> kOutcomeNames[] = {
    {Outcome::kSucceeded, "succeeded"}, {Outcome::kFailed, "failed"},
    {Outcome::kCancelled, "cancelled"}, {Outcome::kError, "error"},
};
// clang-format on

// clang-format off
constexpr EnumName<TargetOutcome::Kind> kTargetOutcomeNames[] = {
    {TargetOutcome::Kind::kSucceeded, "succeeded"}, {TargetOutcome::Kind::kFailed, "failed"},
    {TargetOutcome::Kind::kCancelled, "cancelled"},
    {TargetOutcome::Kind::kNotFinished, "not_finished"},
};
// clang-format on

}  // namespace

std::string_view OutcomeName(Outcome outcome) { return NameOf(kOutcomeNames, outcome, "error"); }

std::string_view TargetOutcomeName(TargetOutcome::Kind kind) {
  return NameOf(kTargetOutcomeNames, kind, "not_finished");
}

namespace {

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
