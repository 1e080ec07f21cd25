// Who may do what to a deployment: the deployer / release-manager roles,
// protected stages and the `redeploy` grant, and answering a manual step.
// Threading: called from API threads; reads the store, takes a Running's mu
// when answering its manual step.
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

// ---- permissions
// Protected when the release's snapshot or the application's current spec
// says so (protecting a stage applies to releases cut before).
bool DeploymentEngine::Impl::IsProtected(const std::string& app, const StageSpec& stage) {
  if (stage.is_protected) return true;
  auto a = store->GetApplication(app);
  if (!a.ok()) return false;
  auto now = ParseAppSpec(a->spec_json, "application spec");
  if (!now.ok()) return false;
  const StageSpec* current = now->FindStage(stage.stage);
  return current != nullptr && current->is_protected;
}

// Whether `actor` may request, move or cancel a deployment of `kind` to
// `stage`: the role deployer; on a protected stage release-manager, or for
// a re-deploy or rollback (a build that succeeded there before) the
// `redeploy` grant on the stage's environment.
Status DeploymentEngine::Impl::MayDeploy(const Actor& actor, const std::string& app,
                                         const StageSpec& stage, const std::string& kind,
                                         const std::string& doing) {
  if (actor.role < Role::kDeployer)
    return PermissionDenied(doing + " needs the role deployer; '" + actor.user + "' is " +
                            RoleName(actor.role));
  if (actor.role >= Role::kReleaseManager || !IsProtected(app, stage)) return Status::Ok();
  bool redeploy = kind == "redeploy" || kind == "rollback";
  if (redeploy) {
    auto has = store->HasGrant(stage.environment, actor.user, kRedeployPermission);
    if (!has.ok()) return has.status();
    if (*has) return Status::Ok();
  }
  return PermissionDenied(
      "stage '" + stage.stage + "' is protected: " + doing + " needs the role release-manager" +
      (redeploy ? " or the 'redeploy' grant on environment '" + stage.environment + "'"
                : std::string()) +
      "; '" + actor.user + "' is " + RoleName(actor.role));
}

// Moving or cancelling needs what requesting it needed.
Status DeploymentEngine::Impl::MayChange(const Actor& actor, const DeploymentRecord& d,
                                         const std::string& doing) {
  auto spec = Spec(d.application, d.release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = (*spec)->FindStage(d.stage);
  if (stage == nullptr) {
    if (actor.role >= Role::kReleaseManager) return Status::Ok();
    return PermissionDenied(doing + " needs the role release-manager: stage '" + d.stage +
                            "' is not in the release's pipeline");
  }
  return MayDeploy(
      actor, d.application, *stage, d.kind,
      doing + " (" + (d.kind.empty() ? "a deployment" : "a " + d.kind) + " to " + d.stage + ")");
}

// Continues or rejects the manual step a running deployment waits at. Both
// need the step's role; a rejection fails the step (the plan's `finally`
// blocks still run). The audit entry is written first: an answer that
// cannot be audited is not given.
Status DeploymentEngine::Impl::AnswerManual(const Actor& actor, int64_t id,
                                            const std::string& comment, bool reject) {
  std::shared_ptr<Running> r = FindRunning(id);
  if (!r) return FailedPrecondition("deployment " + std::to_string(id) + " is not running");
  std::unique_lock lock(r->mu);
  if (!r->manual)
    return FailedPrecondition("deployment " + std::to_string(id) +
                              " is not waiting at a manual step");
  if (r->answer != Running::ManualAnswer::kNone)
    return FailedPrecondition("the manual step of deployment " + std::to_string(id) +
                              " was answered already by " + r->answer_by);
  const std::string doing = reject ? "rejecting" : "continuing";
  std::optional<Role> needed =
      r->manual->role.empty() ? Role::kDeployer : ParseRole(r->manual->role);
  // Plans are checked when stored; an older snapshot may still name a role
  // that does not exist: then only an admin may answer.
  if (!needed && actor.role < Role::kAdmin)
    return PermissionDenied("this step names the unknown role '" + r->manual->role +
                            "'; only an admin can " + (reject ? "reject" : "continue") + " it");
  if (needed && actor.role < *needed)
    return PermissionDenied(doing + " this step needs the role " + std::string(RoleName(*needed)) +
                            "; '" + actor.user + "' is " + RoleName(actor.role));
  std::string action = reject ? "deployment.reject" : "deployment.continue";
  std::string summary = (reject ? "rejected the manual step: " : "") + r->manual->message +
                        (comment.empty() ? "" : " (" + comment + ")");
  REPRISE_RETURN_IF_ERROR(store->AppendAudit(AuditOf(actor.user, action, id, summary)));
  r->answer = reject ? Running::ManualAnswer::kReject : Running::ManualAnswer::kContinue;
  r->answer_by = actor.user;
  r->answer_comment = comment;
  lock.unlock();
  r->manual_cv.notify_all();
  Log(id, "", reject ? "warning" : "info",
      std::string(reject ? "rejected" : "continued") + " by " + actor.user +
          (comment.empty() ? "" : ": " + comment));
  return Status::Ok();
}

}  // namespace reprise
