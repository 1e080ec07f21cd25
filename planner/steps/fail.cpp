// The `fail` step: fails the deployment with a message (a `try` can catch it).
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<FailStep> Parse(StepArgs& args) {
  REPRISE_ASSIGN_OR_RETURN(std::string message,
                           args.LoadShortOrMap("fail", "message", {"message"}));
  return FailStep{message};
}

Flow Run(Walker& w, const Step& step, const FailStep& fail, Frame& f) {
  auto text = w.Expand(fail.message, f, w.SoleTarget(f));
  std::string message = text.ok() ? *text : text.status().message();
  if (w.dry()) {
    if (!text.ok()) w.Problem(step, text.status().message());
    w.AddPlanned(step, f, nullptr, "fail: " + message);
    // Certain to run: the steps after it would not (unless a catch handles it).
    return f.condition.empty() ? w.Failed(step, message, f, nullptr) : Flow::Ok();
  }
  return w.RecordFailure(step, message, f, w.clock().Now());
}

}  // namespace

StepKindInfo FailKind() { return MakeStepKind("fail", /*is_block=*/false, Parse, Run); }

}  // namespace reprise
