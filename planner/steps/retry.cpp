// The `retry` block: runs its steps again, up to `count` more times, while they fail.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<RetryBlock> Parse(StepArgs& args) {
  REPRISE_RETURN_IF_ERROR(args.Load("retry", {"count", "delay", "steps"}));
  RetryBlock b;
  REPRISE_RETURN_IF_ERROR(args.RequiredInt("count", "retry", 1, 100, &b.count));
  REPRISE_RETURN_IF_ERROR(args.OptionalInt("delay", "retry", 0, 3600, &b.delay_seconds));
  int counter = 0;
  REPRISE_ASSIGN_OR_RETURN(b.steps, args.Children("steps", "retry", &counter));
  return b;
}

Flow Run(Walker& w, const Step& step, const RetryBlock& block, Frame& f) {
  int attempts = block.count + 1;
  if (w.dry()) {
    w.AddPlanned(step, f, nullptr,
                 "retry: up to " + std::to_string(attempts) + " attempts, " +
                     std::to_string(block.delay_seconds) + " s apart");
    return w.RunNested(block.steps, f);
  }
  Flow flow;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    flow = w.RunNested(block.steps, f);
    if (flow.kind != Outcome::kFailed || flow.rejected) return flow;
    if (attempt == attempts) break;
    w.LogPlan(step, w.SoleTarget(f), LogLevel::kWarning,
              "attempt " + std::to_string(attempt) + " of " + std::to_string(attempts) +
                  " failed (" + flow.message + "); retrying in " +
                  std::to_string(block.delay_seconds) + " s");
    if (!w.Sleep(std::chrono::seconds(block.delay_seconds))) return Flow::Cancelled();
  }
  flow.message = w.Mask(w.Where(step) + ": all " + std::to_string(attempts) +
                        " attempts failed; last: " + flow.message);
  return flow;
}

}  // namespace

StepKindInfo RetryKind() { return MakeStepKind("retry", /*is_block=*/true, Parse, Run); }

}  // namespace reprise
