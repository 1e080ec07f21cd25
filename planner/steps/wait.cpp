// The `wait` step: pauses the deployment for a number of seconds.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<WaitStep> Parse(StepArgs& args) {
  WaitStep s;
  if (args.IsScalar()) {
    REPRISE_ASSIGN_OR_RETURN(int64_t seconds, args.Int("wait (seconds)", 0, 86400));
    s.seconds = static_cast<int>(seconds);
    return s;
  }
  REPRISE_RETURN_IF_ERROR(args.Load("wait", {"seconds"}));
  REPRISE_RETURN_IF_ERROR(args.RequiredInt("seconds", "wait", 0, 86400, &s.seconds));
  return s;
}

Flow Run(Walker& w, const Step& step, const WaitStep& wait, Frame& f) {
  std::string description = "wait " + std::to_string(wait.seconds) + " s";
  if (w.dry()) {
    w.AddPlanned(step, f, nullptr, description);
    return Flow::Ok();
  }
  TimePoint started = w.clock().Now();
  w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo,
            "waiting " + std::to_string(wait.seconds) + " s");
  Flow flow = w.Sleep(std::chrono::seconds(wait.seconds)) ? Flow::Ok() : Flow::Cancelled();
  w.Record(step, w.SoleTarget(f), description, started, flow);
  return flow;
}

}  // namespace

StepKindInfo WaitKind() { return MakeStepKind("wait", /*is_block=*/false, Parse, Run); }

}  // namespace reprise
