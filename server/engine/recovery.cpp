// Recovery: running deployments nobody runs any more become `interrupted`
// (their targets are read back later), at start and, with several servers
// on one store, whenever another server's lease lapses (leases.cpp). At
// start this server takes what it left running itself (the same server id)
// and what others left with a lapsed lease, never a live one of another
// server.
// Threading: Recover is called once from DeploymentEngine::Start before any
// thread; Interrupt from there or from the lease thread.
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

// ---- recovery
void DeploymentEngine::Impl::Recover() {
  auto orphans = store->InterruptOrphaned(server_id, Now(), {}, kStoppedWhileRunning,
                                          OrphanScope::kLapsedOrOwn);
  if (!orphans.ok()) return;
  for (auto& d : Interrupt(*orphans)) interrupted.push_back(std::move(d));
}

std::vector<DeploymentRecord> DeploymentEngine::Impl::Interrupt(
    const std::vector<OrphanedDeployment>& orphans) {
  std::vector<DeploymentRecord> out;
  for (const auto& orphan : orphans) {
    auto d = store->GetDeployment(orphan.id);
    if (!d.ok()) continue;
    bool own = orphan.owner.empty() || orphan.owner == server_id;
    if (own) {
      Log(d->id, "", "error",
          "interrupted: the server stopped while this deployment was running; the targets' "
          "real state is read back from their agents");
      Audit("server", "deployment.interrupt", d->id, "running at restart");
    } else {
      Log(d->id, "", "error",
          "interrupted: server " + orphan.owner +
              " stopped while this deployment was running (its lease lapsed); server " + server_id +
              " took it over and reads the targets' real state back from their agents");
      Audit("server", "deployment.interrupt", d->id,
            "the lease of server " + orphan.owner + " lapsed; taken over by server " + server_id);
    }
    PublishFinished(*d, "interrupted", kStoppedWhileRunning);
    auto targets = store->ListDeploymentTargets(d->id);
    if (targets.ok())
      for (auto t : *targets)
        if (t.status == "running" || t.status == "pending") {
          t.status = "interrupted";
          t.finished_at = Now();
          Status st = Persist("the interrupted state of target " + t.target + " in deployment " +
                                  std::to_string(d->id),
                              [&] { return store->PutDeploymentTarget(t); });
          (void)st;  // said on stderr
        }
    d->status = "interrupted";
    out.push_back(*d);
  }
  return out;
}

}  // namespace reprise
