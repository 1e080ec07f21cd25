// engine_internal::TargetResults: each target's own status at the end of a
// deployment, from the executor's report and a dry run of the plan.
#include <set>

#include "planner/executor.h"
#include "planner/plan.h"
#include "server/engine/engine_internal.h"

namespace reprise::engine_internal {

std::vector<TargetResult> TargetResults(const Plan& plan, const ExecutionContext& ctx,
                                        const ExecutionReport& report) {
  std::vector<TargetResult> out;
  bool ended_early = report.outcome == Outcome::kFailed || report.outcome == Outcome::kError;
  auto dry = ended_early ? DryRun(plan, ctx) : Result<DryRunReport>(DryRunReport{});
  for (const auto& t : report.targets) {
    TargetResult r{t.target, "skipped", t.message};
    if (t.kind == TargetOutcome::Kind::kSucceeded) r.status = "succeeded";
    if (t.kind == TargetOutcome::Kind::kFailed) r.status = "failed";
    if (t.kind == TargetOutcome::Kind::kCancelled) r.status = "cancelled";
    if (t.kind == TargetOutcome::Kind::kNotFinished) {
      // The last step that ran here decides: did it fail, or did all run?
      const StepRecord* last = nullptr;
      std::set<std::string> succeeded;
      for (const auto& step : report.steps) {
        if (step.target != t.target) continue;
        last = &step;
        if (step.outcome == Outcome::kSucceeded) succeeded.insert(step.step_id);
      }
      std::vector<std::string> missing;
      if (dry.ok())
        for (const auto& planned : dry->targets)
          if (planned.target == t.target)
            for (const auto& step : planned.steps)
              if (step.operation && step.condition.empty() && !succeeded.count(step.step_id))
                missing.push_back(step.description);
      if (last != nullptr && last->outcome != Outcome::kSucceeded &&
          last->outcome != Outcome::kCancelled) {
        r.status = "failed";
        r.message = last->message;
      } else if (dry.ok() && missing.empty()) {
        r.status = "succeeded";
        r.message = "";
      } else {
        r.message = "not finished: the deployment stopped before " +
                    (missing.empty()
                         ? std::string("the plan ended here")
                         : "'" + missing.front() + "'" +
                               (missing.size() > 1
                                    ? " and " + std::to_string(missing.size() - 1) + " more step(s)"
                                    : "") +
                               " ran here");
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace reprise::engine_internal
