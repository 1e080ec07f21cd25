// Irreversible steps across a rollback (irreversible.h): the steps that ran
// since a build was current, the acknowledgement a rollback needs, and the
// undo steps run from the newer build's own plan. Threading: any thread.
#include "server/engine/irreversible.h"

#include <algorithm>

#include "planner/execution_context.h"
#include "planner/plan.h"
#include "server/engine/agent_port.h"

namespace reprise {
namespace {

std::string BuildOf(const IrreversibleStepRecord& s) {
  return s.release + " build " + std::to_string(s.build);
}

const Step* FindStep(const Steps& steps, const std::string& id);

const Step* FindIn(const Step& step, const std::string& id) {
  if (step.id == id) return &step;
  return std::visit(
      [&](const auto& body) -> const Step* {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, IfBlock>) {
          if (const Step* s = FindStep(body.then_steps, id)) return s;
          return FindStep(body.else_steps, id);
        } else if constexpr (std::is_same_v<T, TryBlock>) {
          if (const Step* s = FindStep(body.steps, id)) return s;
          if (const Step* s = FindStep(body.catch_steps, id)) return s;
          return FindStep(body.finally_steps, id);
        } else if constexpr (std::is_same_v<T, RetryBlock> || std::is_same_v<T, OnTargetsBlock> ||
                             std::is_same_v<T, ForEachTargetBlock>) {
          return FindStep(body.steps, id);
        } else {
          return nullptr;
        }
      },
      step.body);
}

const Step* FindStep(const Steps& steps, const std::string& id) {
  for (const auto& step : steps)
    if (const Step* found = FindIn(step, id)) return found;
  return nullptr;
}

// One step's undo steps, run on its target with its deployment's context.
Status RunUndoOf(Store& store, AgentPort& agents, const IrreversibleStepRecord& s,
                 const ExecutorOptions& base, const UndoLog& log) {
  const std::string what =
      "the undo of step " + s.step_id + " (" + s.label + ") from " + BuildOf(s) + " on " + s.target;
  auto d = store.GetDeployment(s.deployment_id);
  if (!d.ok()) return FailedPrecondition(what + ": " + d.status().message());
  auto ctx = ContextFromJson(d->context_json);
  if (!ctx.ok())
    return FailedPrecondition(what + ": the context of deployment " +
                              std::to_string(s.deployment_id) +
                              " is unreadable: " + ctx.status().message());
  auto plan = ParsePlan(ctx->plan_text, "plan " + ctx->plan_name);
  if (!plan.ok()) return FailedPrecondition(what + ": " + plan.status().message());
  const Step* step = FindStep(plan->steps, s.step_id);
  if (step == nullptr || step->undo.empty())
    return FailedPrecondition(what + ": the plan of deployment " + std::to_string(s.deployment_id) +
                              " has no undo steps for step " + s.step_id);
  std::vector<TargetInfo> only;
  for (const auto& t : ctx->targets)
    if (t.name == s.target) only.push_back(t);
  if (only.empty())
    return FailedPrecondition(what + ": target " + s.target + " is not in deployment " +
                              std::to_string(s.deployment_id));
  ctx->targets = only;
  Plan undo{plan->source_name, step->undo};
  auto operations = agents.OperationsFor(*ctx);
  ExecutorOptions eo = base;
  eo.operations = operations.get();
  eo.on_step = nullptr;
  const std::string prefix = "undo of step " + s.step_id + " (" + s.label + ") from build " +
                             std::to_string(s.build) + ": ";
  eo.log_sink = [&](const LogLine& line) {
    log(line.target, std::string(LogLevelName(line.level)), prefix + line.text);
  };
  log(s.target, "info",
      prefix + "running " + std::to_string(step->undo.size()) + " undo step(s) from " + BuildOf(s) +
          "'s plan");
  auto report = Executor(eo).Execute(undo, *ctx);
  if (!report.ok()) return FailedPrecondition(what + ": " + report.status().message());
  switch (report->outcome) {
    case Outcome::kSucceeded:
      log(s.target, "info", prefix + "done");
      return Status::Ok();
    case Outcome::kCancelled:
      return Cancelled(what + " was cancelled");
    case Outcome::kFailed:
    case Outcome::kError:
      break;
  }
  return FailedPrecondition(what + " failed: " + report->message);
}

}  // namespace

Result<std::vector<IrreversibleStepRecord>> IrreversibleStepsSince(Store& store,
                                                                   const std::string& app,
                                                                   const std::string& release,
                                                                   int64_t build,
                                                                   const std::string& stage) {
  std::vector<IrreversibleStepRecord> out;
  auto last = store.LastSuccess(app, release, build, stage);
  if (!last.ok()) {
    if (last.status().code() == Code::kNotFound) return out;
    return last.status();
  }
  auto ran = store.ListIrreversibleSteps(app, stage, last->finished_at);
  if (!ran.ok()) return ran.status();
  // The build's own steps are its plan's business: re-deploying it runs them again.
  for (auto& s : *ran)
    if (s.deployment_id != last->id && !(s.release == release && s.build == build))
      out.push_back(std::move(s));
  return out;
}

std::string DescribeIrreversibleStep(const IrreversibleStepRecord& s) {
  return BuildOf(s) + ", step " + s.step_id + " (" + s.label + ") on " + s.target + " at " +
         FormatRfc3339Utc(FromUnixMillis(s.ran_at)) + ": " + s.note +
         (s.has_undo ? " [its undo steps run before the switch]" : "");
}

Status CheckIrreversibleAcknowledged(const std::vector<IrreversibleStepRecord>& steps,
                                     bool acknowledged) {
  if (steps.empty() || acknowledged) return Status::Ok();
  std::string list;
  for (const auto& s : steps) list += (list.empty() ? "" : "; ") + DescribeIrreversibleStep(s);
  return InvalidArgument("this re-deploy goes back across " + std::to_string(steps.size()) +
                         " irreversible step(s) that it cannot undo: " + list +
                         ". Send \"acknowledge_irreversible\": true to deploy anyway");
}

IrreversibleStepRecord IrreversibleStepOf(const DeploymentRecord& d, const std::string& plan_name,
                                          const StepRecord& r) {
  IrreversibleStepRecord s;
  CopyDeploymentIdentity(d, s);
  s.step_id = r.step_id;
  s.position = FormatPosition("plan " + plan_name, r.position);
  s.label = r.description;
  s.target = r.target;
  s.ran_at = ToUnixMillis(r.started);
  s.outcome = std::string(OutcomeName(r.outcome));
  s.note = r.note;
  s.has_undo = r.has_undo;
  return s;
}

Status RunUndoSteps(Store& store, AgentPort& agents, const std::vector<IrreversibleStepRecord>& steps,
                    const ExecutorOptions& base, const UndoLog& log) {
  // Newest first: each undo sees the state the later steps had left undone.
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (!it->has_undo) continue;
    REPRISE_RETURN_IF_ERROR(RunUndoOf(store, agents, *it, base, log));
  }
  return Status::Ok();
}

}  // namespace reprise
