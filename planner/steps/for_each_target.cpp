// The `for-each-target` block: runs its steps once per selected target, in turn or in parallel.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

#include <thread>

namespace reprise {
namespace {

Result<ForEachTargetBlock> Parse(StepArgs& args) {
  const char* kind = "for-each-target";
  ForEachTargetBlock b;
  int counter = 0;
  if (args.IsSequence()) {  // shorthand: the steps themselves
    REPRISE_ASSIGN_OR_RETURN(b.steps, args.ChildSteps(kind, &counter));
    return b;
  }
  REPRISE_RETURN_IF_ERROR(args.Load(kind, {"parallel", "steps"}));
  if (args.Has("parallel")) {
    REPRISE_ASSIGN_OR_RETURN(b.parallel, args.Get("parallel").Bool(Quoted("parallel", kind)));
  }
  REPRISE_ASSIGN_OR_RETURN(b.steps, args.Children("steps", kind, &counter));
  return b;
}

Flow Run(Walker& w, const Step& step, const ForEachTargetBlock& block, Frame& f) {
  if (w.dry()) {
    w.AddPlanned(step, f, nullptr,
                 std::string("for each target") + (block.parallel ? " (in parallel)" : ""));
    for (const TargetInfo* t : f.targets) {
      Frame pass = f;
      pass.targets = {t};
      pass.depth = f.depth + 1;
      Flow flow = w.RunSteps(block.steps, pass);
      if (!flow.ok()) return flow;
    }
    return Flow::Ok();
  }
  std::vector<Flow> flows(f.targets.size());
  auto run_pass = [&](size_t i) {
    Frame pass = f;
    pass.targets = {f.targets[i]};
    pass.depth = f.depth + 1;
    flows[i] = w.RunSteps(block.steps, pass);
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

}  // namespace

StepKindInfo ForEachTargetKind() {
  return MakeStepKind("for-each-target", /*is_block=*/true, Parse, Run);
}

}  // namespace reprise
