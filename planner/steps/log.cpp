// The `log` step: writes a line to the deployment log.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<LogStep> Parse(StepArgs& args) {
  REPRISE_ASSIGN_OR_RETURN(std::string message, args.LoadShortOrMap("log", "message", {"message"}));
  return LogStep{message};
}

Flow Run(Walker& w, const Step& step, const LogStep& log, Frame& f) {
  auto text = w.Expand(log.message, f, w.SoleTarget(f));
  if (w.dry()) {
    if (!text.ok()) {
      w.Problem(step, text.status().message());
      return Flow::Ok();
    }
    w.AddPlanned(step, f, nullptr, "log: " + *text);
    return Flow::Ok();
  }
  TimePoint started = w.clock().Now();
  if (!text.ok()) return w.RecordFailure(step, text.status().message(), f, started);
  w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo, *text);
  w.Record(step, w.SoleTarget(f), "log", started, Flow::Ok());
  return Flow::Ok();
}

}  // namespace

StepKindInfo LogKind() { return MakeStepKind("log", /*is_block=*/false, Parse, Run); }

}  // namespace reprise
