// Recovery at start: deployments left running become `interrupted` (their
// targets are read back later), scheduled ones are re-armed or expired.
// Threading: called once from DeploymentEngine::Start before any thread.
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

// ---- recovery
void DeploymentEngine::Impl::Recover() {
  for (;;) {
    auto stuck = store->ListDeployments({"", "", {"running"}}, {1000, 0});
    if (!stuck.ok() || stuck->empty()) break;
    for (const auto& d : *stuck) {
      auto moved = store->TransitionDeployment(d.id, {"running"}, "interrupted", 0, Now(),
                                               "the server stopped while it was running");
      if (!moved.ok() || !*moved) continue;
      Log(d.id, "", "error",
          "interrupted: the server stopped while this deployment was running; the targets' "
          "real state is read back from their agents");
      Audit("server", "deployment.interrupt", d.id, "running at restart");
      PublishFinished(d, "interrupted", "the server stopped while it was running");
      auto targets = store->ListDeploymentTargets(d.id);
      if (targets.ok())
        for (auto t : *targets)
          if (t.status == "running" || t.status == "pending") {
            t.status = "interrupted";
            t.finished_at = Now();
            Status st = Persist("the interrupted state of target " + t.target + " in deployment " +
                                    std::to_string(d.id),
                                [&] { return store->PutDeploymentTarget(t); });
            (void)st;  // said on stderr
          }
      interrupted.push_back(d);
    }
  }
}

}  // namespace reprise
