// The `manual` step: waits until a user (with a role, when named) continues the deployment.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<ManualStep> Parse(StepArgs& args) {
  ManualStep s;
  REPRISE_ASSIGN_OR_RETURN(s.message,
                           args.LoadShortOrMap("manual", "message", {"message", "role"}));
  if (args.Has("role")) {
    StepArgs role = args.Get("role");
    REPRISE_ASSIGN_OR_RETURN(s.role, role.String(Quoted("role", "manual")));
    if (!IsKnownRole(s.role)) {
      return role.Error("unknown role '" + s.role + "' in manual (expected: " + kKnownRoles + ")");
    }
  }
  return s;
}

Flow Run(Walker& w, const Step& step, const ManualStep& manual, Frame& f) {
  auto text = w.Expand(manual.message, f, w.SoleTarget(f));
  std::string who = manual.role.empty() ? "anyone who may deploy" : "a " + manual.role;
  if (w.dry()) {
    if (!text.ok()) w.Problem(step, text.status().message());
    w.AddPlanned(step, f, nullptr,
                 "manual: waits for " + who +
                     " to continue: " + (text.ok() ? *text : text.status().message()));
    return Flow::Ok();
  }
  TimePoint started = w.clock().Now();
  if (!text.ok()) return w.RecordFailure(step, text.status().message(), f, started);
  if (!w.options().manual) {
    Flow flow = Flow::Error(FailedPrecondition(
        w.Where(step) + ": manual steps need a ManualContinuation in the executor options"));
    w.Record(step, w.SoleTarget(f), "manual", started, flow);
    return flow;
  }
  w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo,
            "waiting for " + who + " to continue: " + *text);
  ManualRequest request{step.id, step.position, w.Mask(*text), manual.role};
  OperationOutcome outcome = w.options().manual->WaitForContinue(request, w.Cancel());
  Flow flow;
  if (w.Cancelled()) {
    flow = Flow::Cancelled();
  } else if (outcome.kind == OperationOutcome::Kind::kFailed) {
    // A manual step fails only when someone rejects it.
    flow = w.Failed(step, outcome.message, f, nullptr);
    flow.rejected = true;
    w.LogPlan(step, w.SoleTarget(f), LogLevel::kError, flow.message);
  } else if (outcome.kind == OperationOutcome::Kind::kError) {
    flow = w.MaskedError(outcome.error.WithContext(w.Where(step)));
  } else {
    w.LogPlan(step, w.SoleTarget(f), LogLevel::kInfo, "continued");
  }
  w.Record(step, w.SoleTarget(f), "manual", started, flow);
  return flow;
}

}  // namespace

StepKindInfo ManualKind() { return MakeStepKind("manual", /*is_block=*/false, Parse, Run); }

}  // namespace reprise
