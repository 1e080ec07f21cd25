// The scheduler: arms the loop's timer for the next scheduled deployment,
// fires what became due (scheduled -> waiting/queued, or expired) and
// re-checks the gates of waiting deployments.
// Threading: Wake/Rearm are called from any thread and post to the loop;
// everything else runs on the engine loop thread.

#include "common/log.h"
#include "server/engine/engine_internal.h"
#include "server/metrics/metrics.h"

namespace reprise {

using namespace engine_internal;

// Asks the loop to run the dispatcher (coalesced: one pending pass).
void DeploymentEngine::Impl::Wake() {
  if (!loop || dispatch_posted.exchange(true)) return;
  loop->Post([this] {
    dispatch_posted = false;
    Dispatch();
  });
}

// Re-arms the timer for the earliest scheduled deployment (after one was
// scheduled, moved, cancelled or fired).
void DeploymentEngine::Impl::Rearm() {
  if (!loop || rearm_posted.exchange(true)) return;
  loop->Post([this] {
    rearm_posted = false;
    ArmNext();
  });
}

void DeploymentEngine::Impl::ArmNext() {
  auto next = store->NextScheduledAt();
  if (!next.ok()) {
    log::Error("scheduler.next-failed", {{"error", next.status().ToString()}});
    return;
  }
  loop->ArmDeadline(*next == 0 ? std::nullopt : std::optional<TimePoint>(FromUnixMillis(*next)));
}

// Loop thread: the armed time was reached. What FireDue queued is
// dispatched by the pass it posts (Wake): dispatching here as well read the
// queue twice per deadline, and in a burst the deadlines come back to back.
void DeploymentEngine::Impl::OnDeadline() {
  FireDue();
  ArmNext();
}

// Loop thread: the clock was set by hand (a test's fake clock).
void DeploymentEngine::Impl::OnClockSet() {
  FireDue();
  last_recheck = clock->Now();
  RecheckWaiting();
  Dispatch();
  ArmNext();
}

// ---- scheduler
// Fires what is due: gates are decided first (read-only), then every due
// deployment leaves `scheduled` for where it goes (queued when its gates
// hold, else waiting; expired past its window) in one IMMEDIATE
// transaction per batch. The compare-and-set on status and time makes each
// fire exactly once, also when a user cancels or moves it meanwhile.
void DeploymentEngine::Impl::FireDue() {
  for (;;) {
    int64_t now = Now();
    auto due = store->DueScheduled(now, 500);
    if (!due.ok() || due->empty()) return;
    std::vector<ScheduledFiring> firings;
    std::vector<GateDecision> decisions;
    for (const auto& d : *due) {
      GateDecision g;
      g.deployment = d;
      int64_t late = now - d.scheduled_at;
      if (late > d.expires_after_ms) {
        g.kind = GateDecision::Kind::kExpire;
        g.text = "fell due at " + FormatRfc3339Utc(FromUnixMillis(d.scheduled_at)) +
                 " but did not start within its expiry window of " +
                 std::to_string(d.expires_after_ms / kMillisPerSecond) + " s";
      } else {
        g = Decide(d);
      }
      firings.push_back({d.id, FiringStatus(g.kind), g.text});
      decisions.push_back(std::move(g));
    }
    auto moved = store->FireScheduled(firings, now, Now());
    if (!moved.ok()) {
      log::Error("scheduler.fire-failed", {{"error", moved.status().ToString()}});
      return;
    }
    std::set<int64_t> fired(moved->begin(), moved->end());
    bool queued = false;
    for (const auto& g : decisions) {
      int64_t id = g.deployment.id;
      if (!fired.count(id)) continue;
      if (g.kind == GateDecision::Kind::kExpire) {
        Log(id, "", "warning", "expired: " + g.text);
        Audit("scheduler", "deployment.expire", id, g.text);
        continue;
      }
      if (o.metrics)
        o.metrics->ObserveSchedulerLateness(static_cast<double>(now - g.deployment.scheduled_at) /
                                            kMillisPerSecond);
      const std::string reached = "scheduled time " +
                                  FormatRfc3339Utc(FromUnixMillis(g.deployment.scheduled_at)) +
                                  " reached";
      // Queued (the common case): one line, not two. In a burst of thousands
      // due at once every line is a row written while the next ones wait.
      if (g.kind == GateDecision::Kind::kQueue) {
        Log(id, "", "info", reached + "; " + (g.text.empty() ? "" : g.text + "; ") + "queued");
        queued = true;
        continue;
      }
      Log(id, "", "info", reached);
      switch (g.kind) {
        case GateDecision::Kind::kWait: {
          std::lock_guard lock(mu);
          gate_summaries[id] = g.text;
        }
          Log(id, "", "info", "waiting for gates: " + g.text);
          PublishWaiting(g.deployment, g.text);
          break;
        case GateDecision::Kind::kCancel:
        case GateDecision::Kind::kFail: {
          std::string status = g.kind == GateDecision::Kind::kCancel ? "cancelled" : "failed";
          Log(id, "", "error", status + ": " + g.text);
          PublishFinished(g.deployment, status, g.text);
          break;
        }
        default:
          break;
      }
    }
    if (queued) Wake();
    log_cv.notify_all();
    if (due->size() < 500) return;
  }
}

std::string DeploymentEngine::Impl::FiringStatus(GateDecision::Kind kind) {
  switch (kind) {
    case GateDecision::Kind::kQueue:
      return "queued";
    case GateDecision::Kind::kWait:
      return "waiting";
    case GateDecision::Kind::kCancel:
      return "cancelled";
    case GateDecision::Kind::kExpire:
      return "expired";
    default:
      return "failed";
  }
}

void DeploymentEngine::Impl::RecheckWaiting() {
  // Oldest first, every page: the oldest waiting ones must not starve.
  for (int64_t offset = 0;; offset += 1000) {
    auto waiting = store->ListDeployments({"", "", {"waiting"}, true}, {1000, offset});
    if (!waiting.ok()) return;
    std::vector<GateDecision> decisions;
    for (const auto& d : *waiting) decisions.push_back(Decide(d));
    Apply(decisions);
    if (waiting->size() < 1000) return;
  }
}

}  // namespace reprise
