// Engine room "events": the change events the engine publishes on the
// EventBus (server/events/event_bus.h). Threading: any thread.
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

void DeploymentEngine::Impl::PublishDeployment(const std::string& type, const DeploymentRecord& d,
                                               const std::string& status, const std::string& reason,
                                               const std::string& actor) {
  Event e;
  e.type = type;
  e.actor = actor.empty() ? d.requested_by : actor;
  CopyDeploymentIdentity(d, e);
  e.kind = d.kind;
  e.status = status;
  e.reason = reason;
  Publish(o.events, std::move(e));
}

void DeploymentEngine::Impl::PublishWaiting(const DeploymentRecord& d, const std::string& gates) {
  PublishDeployment("deployment.waiting", d, "waiting", gates);
  // The approvals gate reads "approvals: ..." in the summary (context.cpp).
  if (gates.rfind("approvals:", 0) == 0 || gates.find("; approvals:") != std::string::npos)
    PublishDeployment("approval.needed", d, "waiting", gates);
}

void DeploymentEngine::Impl::PublishFinished(const DeploymentRecord& d, const std::string& status,
                                             const std::string& error) {
  if (status == "succeeded") {
    PublishDeployment("deployment.succeeded", d, status);
    if (d.kind == "rollback" || d.kind == kSelectiveRollbackKind)
      PublishDeployment("deployment.rolled-back", d, status);
  } else if (status == "failed" || status == "interrupted") {
    PublishDeployment("deployment.failed", d, status, error);
  } else if (status == "cancelled" || status == "expired") {
    PublishDeployment("deployment." + status, d, status, error);
  }
}

}  // namespace reprise
