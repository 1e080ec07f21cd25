// Leases: several servers on one store. This server renews, every
// lease_renew, its presence lease ("server:<id>") and the leases of the
// deployments it claimed or runs; one it no longer holds (another server
// took it over, or the store stayed unreachable for most of a lease) is
// cancelled (one that ended here meanwhile is not: the store tells ended
// from taken). A running deployment whose lease lapsed is taken over:
// `interrupted`, its targets read back (recovery.cpp); one with a live
// lease never is, even this server's own, which may have started after the
// pass listed what runs here.
// The dispatcher (dispatcher.cpp) asks Claimable which queued deployments to
// claim here: while other servers are alive, those whose agents are all
// connected to this one.
// Threading: LeaseLoop is its own thread (RenewLeases, TakeOverLapsed);
// Claimable/CanRunHere run on the loop thread (unrunnable_since is its own).
#include "common/log.h"
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

void DeploymentEngine::Impl::LeaseLoop() {
  for (;;) {
    {
      std::unique_lock lock(mu);
      lease_cv.wait_for(lock, o.lease_renew, [this] { return stopping; });
      if (stopping) return;
    }
    RenewLeases();
    TakeOverLapsed();
  }
}

void DeploymentEngine::Impl::RenewLeases() {
  const int64_t until = LeaseUntil();
  auto presence = store->TryTakeLease(kPresencePrefix + server_id, server_id, Now(), until);
  if (!presence.ok())
    log::Warn("engine.lease-renew-failed",
              {{"server", server_id}, {"error", presence.status().ToString()}});
  if (auto live = store->LiveLeases(kPresencePrefix, Now()); live.ok())
    others_alive = std::any_of(live->begin(), live->end(),
                               [&](const LeaseRecord& l) { return l.owner != server_id; });
  std::vector<std::shared_ptr<Running>> runs;
  std::vector<int64_t> ids;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, r] : running) {
      runs.push_back(r);
      ids.push_back(id);
    }
  }
  TimePoint now = clock->Now();
  // Not taken: renewed, or ended (or released) here since the listing above.
  auto kept = store->RenewDeploymentLeases(ids, server_id, until);
  std::set<int64_t> still;
  std::string why;
  if (kept.ok()) {
    renewed_at = now;
    still.insert(kept->begin(), kept->end());
    why = "another server took it over";
  } else if (now - renewed_at >= o.lease - o.lease_renew) {
    // Before the lease lapses for the others: never run on beside them.
    why = "its lease could not be renewed: " + kept.status().message();
  } else {
    log::Warn("engine.lease-renew-failed",
              {{"server", server_id}, {"error", kept.status().ToString()}});
    return;
  }
  for (const auto& r : runs) {
    if (still.count(r->id) || r->lease_lost.exchange(true)) continue;
    log::Error(
        "engine.lease-lost",
        {{"server", server_id}, {"deployment", static_cast<long long>(r->id)}, {"why", why}});
    Log(r->id, "", "error", "server " + server_id + " stops running this deployment: " + why);
    r->cancel.Cancel();
  }
}

void DeploymentEngine::Impl::TakeOverLapsed() {
  // Lapsed before the listing: a deployment claimed here since (a live
  // lease) is not taken, whether or not it is in the list.
  const int64_t now = Now();
  std::vector<int64_t> here;
  {
    std::lock_guard lock(mu);
    if (stopping) return;
    for (const auto& [id, r] : running) here.push_back(id);
  }
  auto orphans =
      store->InterruptOrphaned(server_id, now, here, kStoppedWhileRunning, OrphanScope::kLapsed);
  if (!orphans.ok()) {
    log::Warn("engine.takeover-failed",
              {{"server", server_id}, {"error", orphans.status().ToString()}});
    return;
  }
  if (orphans->empty()) return;
  auto taken = Interrupt(*orphans);
  FlushLogs();
  {
    std::lock_guard lock(read_back_mu);
    for (const auto& d : taken)
      for (const auto& target : SplitCsv(d.targets_csv)) unread[target] = d;
  }
  read_back_cv.notify_all();
  log_cv.notify_all();
  Wake();
}

bool DeploymentEngine::Impl::CanRunHere(const DeploymentRecord& d) {
  if (o.agents == nullptr) return true;
  if (d.kind != kSelectiveRollbackKind) {
    auto spec = Spec(d.application, d.release);
    const StageSpec* stage = spec.ok() ? (*spec)->FindStage(d.stage) : nullptr;
    if (stage != nullptr && !StagePlanNeeds(**spec, *stage).touches_targets) return true;
  }
  for (const auto& target : SplitCsv(d.targets_csv)) {
    auto link = o.agents->TargetAgent(target);
    if (!link.ok() || !link->connected || !link->approved) return false;
  }
  return true;
}

std::vector<DeploymentRecord> DeploymentEngine::Impl::Claimable(
    const std::vector<DeploymentRecord>& candidates) {
  std::vector<DeploymentRecord> out;
  if (!others_alive) {
    // Alone: every queued deployment is this server's to start (or to send
    // back to waiting when its agents are away).
    unrunnable_since.clear();
    return candidates;
  }
  TimePoint now = clock->Now();
  std::map<int64_t, TimePoint> still_unrunnable;
  for (const auto& d : candidates) {
    if (CanRunHere(d)) {
      out.push_back(d);
      continue;
    }
    // Its agents are elsewhere: left to the server that has them. Unclaimed
    // for a whole lease, nobody has them: claimed here to wait for them.
    auto seen = unrunnable_since.find(d.id);
    TimePoint since = seen == unrunnable_since.end() ? now : seen->second;
    still_unrunnable[d.id] = since;
    if (now - since >= o.lease) out.push_back(d);
  }
  unrunnable_since.swap(still_unrunnable);
  return out;
}

}  // namespace reprise
