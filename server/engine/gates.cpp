// Gates: what holds a waiting deployment back (approvals, holds, the time
// window, connected agents), and applying those decisions in one
// transaction. Also starting a queued deployment only when its agents are
// connected. Threading: Decide is read-only (any thread); Apply and
// StartIfConnected run on the engine loop thread.

#include "common/log.h"
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

DeploymentEngine::Impl::GateDecision DeploymentEngine::Impl::Decide(int64_t id) {
  auto d = store->GetDeployment(id);
  if (!d.ok() || d->status != "waiting") return GateDecision{};
  return Decide(*d);
}

// For a record known to be waiting (e.g. just moved there by the scheduler).
DeploymentEngine::Impl::GateDecision DeploymentEngine::Impl::Decide(
    const DeploymentRecord& record) {
  GateDecision out;
  out.deployment = record;
  out.deployment.status = "waiting";
  const DeploymentRecord* d = &out.deployment;
  auto shared_spec = Spec(d->application, d->release);
  if (!shared_spec.ok()) {
    out.kind = GateDecision::Kind::kFail;
    out.text = shared_spec.status().message();
    return out;
  }
  const AppSpec* spec = shared_spec->get();
  const StageSpec* stage = spec->FindStage(d->stage);
  if (stage == nullptr) {
    out.kind = GateDecision::Kind::kFail;
    out.text = "stage '" + d->stage + "' is not in the release's pipeline";
    return out;
  }
  if (d->automatic) {
    if (int64_t hold = HoldOn(d->application, d->stage); hold != 0) {
      out.kind = GateDecision::Kind::kCancel;
      out.text = HoldReason(d->stage, hold);
      return out;
    }
  }
  std::string rejected;
  auto gates = EvaluateGates(*store, *clock, *d, *spec, *stage, &rejected);
  if (!rejected.empty()) {
    out.kind = GateDecision::Kind::kCancel;
    out.text = "rejected by " + rejected;
    return out;
  }
  if (o.agents != nullptr && StagePlanNeeds(*spec, *stage).touches_targets) {
    gates.push_back(AgentsGate(*o.agents, SplitCsv(d->targets_csv)));
    if (AgentsWaitExpired(*d, gates)) {
      out.kind = GateDecision::Kind::kExpire;
      out.text = "its targets' agents were not back within its expiry window of " +
                 std::to_string(d->expires_after_ms / kMillisPerSecond) +
                 " s: " + gates.back().detail;
      return out;
    }
  }
  for (const auto& g : gates)
    if (!g.holds) out.text += (out.text.empty() ? "" : "; ") + g.gate + ": " + g.detail;
  out.kind = out.text.empty() ? GateDecision::Kind::kQueue : GateDecision::Kind::kWait;
  if (out.kind == GateDecision::Kind::kQueue && !gates.empty()) out.text = "gates hold";
  return out;
}

// Applies decisions; the ones to queue move in one transaction.
void DeploymentEngine::Impl::Apply(const std::vector<GateDecision>& decisions) {
  std::vector<int64_t> to_queue;
  for (const auto& g : decisions) {
    switch (g.kind) {
      case GateDecision::Kind::kGone:
        break;
      case GateDecision::Kind::kExpire:
        Finish(g.deployment, "expired", g.text, {"waiting"});
        Audit("scheduler", "deployment.expire", g.deployment.id, g.text);
        break;
      case GateDecision::Kind::kQueue:
        to_queue.push_back(g.deployment.id);
        break;
      case GateDecision::Kind::kFail:
        Finish(g.deployment, "failed", g.text, {"waiting"});
        break;
      case GateDecision::Kind::kCancel:
        Finish(g.deployment, "cancelled", g.text, {"waiting"});
        break;
      case GateDecision::Kind::kWait: {
        bool changed;
        {
          std::lock_guard lock(mu);
          changed = gate_summaries[g.deployment.id] != g.text;
          gate_summaries[g.deployment.id] = g.text;
        }
        if (changed) Log(g.deployment.id, "", "info", "waiting for gates: " + g.text);
        if (changed) PublishWaiting(g.deployment, g.text);
        break;
      }
    }
  }
  if (to_queue.empty()) return;
  auto moved = store->TransitionDeployments(to_queue, {"waiting"}, "queued");
  if (!moved.ok()) {  // they stay waiting: the next re-check queues them
    log::Error("engine.queue-failed",
               {{"deployments", to_queue.size()}, {"error", moved.status().ToString()}});
    return;
  }
  for (const auto& g : decisions) {
    if (std::find(moved->begin(), moved->end(), g.deployment.id) == moved->end()) continue;
    Log(g.deployment.id, "", "info", g.text.empty() ? "queued" : g.text + "; queued");
    std::lock_guard lock(mu);
    gate_summaries.erase(g.deployment.id);
  }
  Wake();
}

// What the stage's plan (in the release's snapshot) asks of the targets.
PlanNeeds DeploymentEngine::Impl::StagePlanNeeds(const AppSpec& spec, const StageSpec& stage) {
  auto plan = spec.plans.find(stage.plan);
  return plan == spec.plans.end() ? PlanNeeds{} : NeedsOf(plan->second);
}

// A deployment waiting for its targets' agents expires like a scheduled one
// that could not start: expires_after past the time it was due.
// Only when nothing else holds it back (approvals and windows wait as long as
// they take).
bool DeploymentEngine::Impl::AgentsWaitExpired(const DeploymentRecord& d,
                                               const std::vector<GateState>& gates) const {
  const GateState& agents = gates.back();
  if (agents.holds || d.expires_after_ms <= 0) return false;
  for (size_t i = 0; i + 1 < gates.size(); ++i)
    if (!gates[i].holds) return false;
  int64_t due = d.scheduled_at != 0 ? d.scheduled_at : d.created_at;
  return Now() - due > d.expires_after_ms;
}

// Queued -> running, once every target's agent is connected and can take
// the build; else back to waiting (gate `agents`) or failed, with nothing
// changed on any target.
bool DeploymentEngine::Impl::StartIfConnected(const std::shared_ptr<Running>& r) {
  auto d = store->GetDeployment(r->id);
  if (!d.ok() || d->status != "queued") return false;
  auto spec = Spec(d->application, d->release);
  const StageSpec* stage = spec.ok() ? (*spec)->FindStage(d->stage) : nullptr;
  if (o.agents != nullptr && stage != nullptr) {  // else running it says what is wrong
    StartCheck check =
        CheckBeforeStart(*o.agents, *store, *d, r->targets, StagePlanNeeds(**spec, *stage));
    for (const auto& [target, text] : check.lines)
      Log(d->id, target, check.verdict == StartCheck::Verdict::kRun ? "info" : "warning", text);
    if (check.verdict == StartCheck::Verdict::kFail) {
      Finish(*d, "failed", "nothing was changed: " + check.text, {"queued"});
      return false;
    }
    if (check.verdict == StartCheck::Verdict::kWait) {
      auto moved = store->TransitionDeployment(d->id, {"queued"}, "waiting");
      if (moved.ok() && *moved) {
        std::string summary = "agents: " + check.text;
        {
          std::lock_guard lock(mu);
          gate_summaries[d->id] = summary;
        }
        Log(d->id, "", "info", "waiting for gates: " + summary);
        PublishWaiting(*d, summary);
      }
      return false;
    }
  }
  {
    std::lock_guard lock(mu);  // the server began stopping meanwhile: it stays queued
    if (stopping) return false;
  }
  auto moved = store->TransitionDeployment(d->id, {"queued"}, "running", Now());
  return moved.ok() && *moved;
}

}  // namespace reprise
