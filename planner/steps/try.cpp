// The `try` block: runs `catch` when its steps fail and `finally` after either.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<TryBlock> Parse(StepArgs& args) {
  REPRISE_RETURN_IF_ERROR(args.Load("try", {"steps", "catch", "finally"}));
  if (!args.Has("steps")) return args.Missing("steps", "try");
  if (!args.Has("catch") && !args.Has("finally"))
    return args.Error("try needs 'catch' or 'finally'");
  TryBlock b;
  int counter = 0;  // steps, catch and finally are numbered in one sequence
  REPRISE_ASSIGN_OR_RETURN(b.steps, args.Children("steps", "try", &counter));
  if (args.Has("catch")) {
    b.has_catch = true;
    REPRISE_ASSIGN_OR_RETURN(b.catch_steps, args.Children("catch", "try", &counter));
  }
  if (args.Has("finally")) {
    REPRISE_ASSIGN_OR_RETURN(b.finally_steps, args.Children("finally", "try", &counter));
  }
  return b;
}

Flow Run(Walker& w, const Step& step, const TryBlock& block, Frame& f) {
  if (w.dry()) {
    w.AddPlanned(step, f, nullptr, "try");
    Flow flow = w.RunNested(block.steps, f);
    if (block.has_catch && flow.kind == Outcome::kFailed) {
      // The try fails for sure: the catch runs for sure.
      std::optional<std::string> outer_error = f.error;
      f.error = flow.message;
      flow = w.RunNested(block.catch_steps, f);
      f.error = outer_error;
    } else if (block.has_catch) {
      w.WalkConditional(block.catch_steps, f, "only if a step in the try fails", true);
    }
    Flow cleanup = w.RunNested(block.finally_steps, f);
    return cleanup.ok() ? flow : cleanup;
  }
  Flow flow = w.RunNested(block.steps, f);
  if (flow.kind == Outcome::kFailed && block.has_catch && !flow.rejected) {
    w.LogPlan(step, w.SoleTarget(f), LogLevel::kWarning, "caught: " + flow.message);
    std::optional<std::string> outer_error = f.error;
    f.error = flow.message;
    flow = w.RunNested(block.catch_steps, f);
    f.error = outer_error;
  }
  // Cleanup runs after success or failure, not after cancellation or an
  // orchestration error (nothing can be trusted to run then).
  if (flow.kind == Outcome::kSucceeded || flow.kind == Outcome::kFailed) {
    Flow cleanup = w.RunNested(block.finally_steps, f);
    if (!cleanup.ok()) return cleanup;
  }
  return flow;
}

}  // namespace

StepKindInfo TryKind() { return MakeStepKind("try", /*is_block=*/true, Parse, Run); }

}  // namespace reprise
