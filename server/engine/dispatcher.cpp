// The dispatcher: queued deployments start FIFO per target, each taking all
// its targets at once and a worker slot; one thread per running deployment,
// joined by the loop once it ended. Manual steps give the slot back while
// they wait. Threading: Dispatch/Tick/JoinEndedRuns run on the loop thread,
// RunThread/PauseSlot/ResumeSlot on a deployment's thread; `mu` guards
// busy_targets, running, run_threads, ended_runs and the slot counters.
#include "common/log.h"
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

std::shared_ptr<Running> DeploymentEngine::Impl::FindRunning(int64_t id) {
  std::lock_guard lock(mu);
  auto it = running.find(id);
  return it == running.end() ? nullptr : it->second;
}

// ---- dispatcher: FIFO per target, a deployment takes all its targets at once
// Picks in memory (FIFO per target among this server's view), then claims
// in the store (one write transaction that keeps FIFO per target across
// servers), then starts what it claimed.
void DeploymentEngine::Impl::Dispatch() {
  JoinEndedRuns();
  if (!o.start_threads) return;  // nothing runs without threads
  // Oldest first: FIFO per target. Later pages can only start once the
  // first 1000 have made room, which keeps the order.
  auto queued = store->ListDeployments({"", "", {"queued"}, true}, {1000, 0});
  if (!queued.ok()) return;
  std::vector<DeploymentRecord> picked;
  {
    std::lock_guard lock(mu);
    if (stopping || active + resuming >= Workers()) return;
    std::set<std::string> claimed = busy_targets;
    for (const auto& d : *queued) {
      auto targets = SplitCsv(d.targets_csv);
      bool free = std::none_of(targets.begin(), targets.end(),
                               [&](const std::string& t) { return claimed.count(t) > 0; });
      for (const auto& t : targets) claimed.insert(t);  // later ones wait behind this one
      if (!free || running.count(d.id)) continue;       // (its connection is being checked)
      // Its thread ended after `queued` was read but is not joined yet: the
      // list is stale for it, and a second thread must not replace the first.
      if (run_threads.count(d.id)) continue;
      picked.push_back(d);
    }
  }
  // Outside `mu`: asks the hub which agents are connected here.
  std::vector<DeploymentRecord> wanted = Claimable(picked);
  if (wanted.empty()) return;
  std::vector<int64_t> ids;
  for (const auto& d : wanted) ids.push_back(d.id);
  auto claimed = store->ClaimDeployments(ids, server_id, Now(), LeaseUntil());
  if (!claimed.ok()) {
    log::Warn("engine.claim-failed",
              {{"server", server_id}, {"error", claimed.status().ToString()}});
    return;
  }
  std::set<int64_t> got(claimed->begin(), claimed->end());
  std::vector<int64_t> give_back;
  {
    std::lock_guard lock(mu);
    for (const auto& d : wanted) {
      if (!got.count(d.id)) continue;
      auto targets = SplitCsv(d.targets_csv);
      bool free = std::none_of(targets.begin(), targets.end(),
                               [&](const std::string& t) { return busy_targets.count(t) > 0; });
      // A target read back meanwhile, or no slot left: claimed again later.
      if (stopping || !free || active + resuming >= Workers()) {
        give_back.push_back(d.id);
        continue;
      }
      // The run thread checks the targets' agents, then moves it to running.
      ++active;
      auto r = std::make_shared<Running>();
      r->id = d.id;
      r->targets = targets;
      running[d.id] = r;
      for (const auto& t : targets) {
        busy_targets.insert(t);
        target_deployment[t] = d.id;
      }
      run_threads[d.id] = std::thread([this, r] { RunThread(r); });
    }
  }
  if (!give_back.empty()) (void)store->ReleaseDeploymentLeases(give_back, server_id);
}

void DeploymentEngine::Impl::RunThread(const std::shared_ptr<Running>& r) {
  bool stop;
  {
    std::lock_guard lock(mu);
    stop = stopping;
  }
  // Dispatched but stopping: it stays queued for the next start.
  if (!stop && !r->lease_lost && StartIfConnected(r)) Run(r);
  // Ended, back to waiting, or left queued: no longer this server's.
  Status released = store->ReleaseDeploymentLeases({r->id}, server_id);
  (void)released;  // else the lease lapses by itself
  {
    std::lock_guard lock(mu);
    running.erase(r->id);
    for (const auto& t : r->targets) {
      busy_targets.erase(t);
      target_deployment.erase(t);
    }
    ended_runs.push_back(r->id);
    if (r->holds_slot) --active;
    r->holds_slot = false;
  }
  slot_cv.notify_all();
  idle_cv.notify_all();
  Wake();
}

// A manual step started waiting: its slot is free for others.
void DeploymentEngine::Impl::PauseSlot(const std::shared_ptr<Running>& r) {
  {
    std::lock_guard lock(mu);
    if (!r->holds_slot) return;
    r->holds_slot = false;
    --active;
  }
  slot_cv.notify_all();
  Wake();
}

// The manual step was answered: wait for a free slot before going on
// (ahead of queued deployments). Cancelled or stopping: go on at once, to
// end.
void DeploymentEngine::Impl::ResumeSlot(const std::shared_ptr<Running>& r,
                                        const CancelToken& cancel) {
  std::unique_lock lock(mu);
  if (r->holds_slot) return;
  ++resuming;
  while (active >= Workers() && !stopping && !cancel.IsCancelled())
    slot_cv.wait_for(lock, std::chrono::milliseconds(200));
  --resuming;
  if (stopping || cancel.IsCancelled()) return;
  ++active;
  r->holds_slot = true;
}

void DeploymentEngine::Impl::JoinEndedRuns() {
  std::vector<std::thread> ended;
  {
    std::lock_guard lock(mu);
    for (int64_t id : ended_runs) {
      auto it = run_threads.find(id);
      if (it == run_threads.end()) continue;
      ended.push_back(std::move(it->second));
      run_threads.erase(it);
    }
    ended_runs.clear();
  }
  for (auto& t : ended) t.join();
}

void DeploymentEngine::Impl::Tick() {
  FireDue();
  TimePoint now = clock->Now();
  if (now - last_recheck >= o.gate_recheck || now < last_recheck) {
    last_recheck = now;
    RecheckWaiting();
  }
  Dispatch();
}

// Reading a target's state uses it like a deployment does: not while one
// runs there, and none starts while it is read.
bool DeploymentEngine::Impl::ClaimTarget(const std::string& target) {
  std::lock_guard lock(mu);
  if (stopping || busy_targets.count(target)) return false;
  busy_targets.insert(target);
  return true;
}

void DeploymentEngine::Impl::ReleaseTarget(const std::string& target) {
  {
    std::lock_guard lock(mu);
    busy_targets.erase(target);
  }
  Wake();
}

}  // namespace reprise
