// Reading back what targets hold: after a crash, and whenever an agent
// (re)connects; retried until the agent answers. Also notices agents that
// came, went or were approved, so waiting deployments re-check the `agents`
// gate. Threading: ReadBackLoop is its own thread; read_back_mu guards
// unread; a target is claimed under `mu` like a deployment claims it.
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

void DeploymentEngine::Impl::ReadBackLoop() {
  if (o.agents == nullptr) return;
  {
    std::lock_guard lock(read_back_mu);
    for (const auto& d : interrupted)
      for (const auto& target : SplitCsv(d.targets_csv)) unread.emplace(target, d);
  }
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (stopping) return;
    }
    NoticeConnections();
    std::map<std::string, std::optional<DeploymentRecord>> todo;
    {
      std::lock_guard lock(read_back_mu);
      todo = unread;
    }
    for (const auto& [target, d] : todo) {
      if (!ClaimTarget(target)) continue;  // a deployment runs there: later
      auto state = o.agents->GetTargetState(target);
      bool answered = state.ok() && state->online;
      std::string label;
      if (answered) {
        label = Reconcile(target, *state, d ? &*d : nullptr);
        if (d) {
          bool switched = label == BuildLabel(d->release, d->build);
          Log(d->id, target, switched ? "warning" : "info",
              "the agent reports " + label + " as current" +
                  (switched
                       ? ": the switch completed before the deployment ended"
                       : std::string(
                             label == "nothing deployed" ? "" : ": the switch had not happened")));
        }
      }
      ReleaseTarget(target);
      if (answered && label != kUnrecorded) {
        std::lock_guard lock(read_back_mu);
        unread.erase(target);
      }
    }
    std::unique_lock lock(read_back_mu);
    read_back_cv.wait_for(lock, o.read_back_retry);
  }
}

// Agents that connected since the last look (a new address): their targets
// are read back.
void DeploymentEngine::Impl::NoticeConnections() {
  std::vector<std::string> targets;
  bool changed = false;
  for (const auto& a : o.agents->Agents()) {
    std::string now = a.online ? a.address : "";
    std::string& before = agent_connections[a.name];
    if (a.online && now != before)
      for (const auto& t : a.targets) targets.push_back(t);
    changed |= now != before;
    before = now;
    bool& was_approved = agent_approved[a.name];
    changed |= a.approved != was_approved;
    was_approved = a.approved;
  }
  // Deployments waiting for an agent (gate `agents`) go on when it is back.
  if (changed && loop)
    loop->Post([this] {
      RecheckWaiting();
      Dispatch();
    });
  std::lock_guard lock(read_back_mu);
  for (const auto& t : targets) unread.emplace(t, std::nullopt);
}

}  // namespace reprise
