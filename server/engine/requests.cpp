// User requests on deployments: request (promote, re-deploy, rollback),
// approve, reject, revoke an approval, cancel, reschedule, continue a manual
// step, grants and clearing a hold. Each checks permissions, then changes the
// store in one transaction with its audit entry, then wakes the scheduler or
// the dispatcher. Threading: called from API threads; any number at once.
#include "server/catalog/catalog.h"
#include "server/engine/engine_internal.h"
#include "server/engine/irreversible.h"

namespace reprise {

using namespace engine_internal;

namespace {

// An `at` this far in the past still means "now" (clocks of clients differ a
// little); further back it is refused rather than quietly run now.
constexpr std::chrono::seconds kPastAtTolerance{60};
// Further ahead than this is a typo (a wrong year), not a plan.
constexpr std::chrono::hours kMaxScheduleAhead{24 * 366};

Status CheckScheduleTime(TimePoint at, TimePoint now) {
  if (at > now + kMaxScheduleAhead) {
    auto days = std::chrono::duration_cast<std::chrono::hours>(at - now).count() / 24;
    return InvalidArgument("field 'at' (" + FormatRfc3339Utc(at) + ") is " + std::to_string(days) +
                           " days ahead (now " + FormatRfc3339Utc(now) +
                           "); a deployment can be scheduled at most 366 days ahead");
  }
  if (at >= now - kPastAtTolerance) return Status::Ok();
  auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - at).count();
  return InvalidArgument("field 'at' (" + FormatRfc3339Utc(at) + ") is " + std::to_string(ago) +
                         " s in the past (now " + FormatRfc3339Utc(now) +
                         "); give a time in the future, or leave 'at' out to deploy now");
}

}  // namespace

// ---- requests

Result<DeploymentRecord> DeploymentEngine::Request(const Actor& actor, const std::string& app,
                                                   const std::string& release, int64_t build,
                                                   const DeployRequest& req) {
  Impl& impl = *impl_;
  Store& store = *impl.store;
  auto b = store.GetBuild(app, release, build);
  if (!b.ok()) return b.status();
  auto spec = ReleaseSpec(store, app, release);
  if (!spec.ok()) return spec.status();
  if (req.stage.empty()) return InvalidArgument("missing field 'stage'");
  const StageSpec* stage = spec->FindStage(req.stage);
  if (stage == nullptr) {
    std::string stages;
    for (const auto& s : spec->pipeline) stages += (stages.empty() ? "" : ", ") + s.stage;
    return InvalidArgument("stage '" + req.stage + "' is not in the pipeline of release " +
                           release + " (" + stages + ")");
  }
  auto kind = ComputeKind(store, app, release, build, req.stage);
  if (!kind.ok()) return kind.status();

  REPRISE_RETURN_IF_ERROR(
      impl.MayDeploy(actor, app, *stage, kind->kind,
                     kind->kind == "promote" ? "deploying" : "re-deploying an earlier build"));
  if (req.force) {
    if (actor.role < Role::kReleaseManager)
      return PermissionDenied("forcing a deployment past its gates needs the role release-manager");
    if (req.comment.empty())
      return InvalidArgument("a forced deployment needs a 'comment' saying why");
  }
  if (req.at) REPRISE_RETURN_IF_ERROR(CheckScheduleTime(*req.at, impl.clock->Now()));
  auto crossed = IrreversibleStepsSince(store, app, release, build, req.stage);
  if (!crossed.ok()) return crossed.status();
  REPRISE_RETURN_IF_ERROR(CheckIrreversibleAcknowledged(*crossed, req.acknowledge_irreversible));
  std::string choice = req.context_choice;
  if (choice.empty()) choice = kind->succeeded_before ? "as-deployed" : "current";
  if (choice != "as-deployed" && choice != "current")
    return InvalidArgument("'context' must be \"as-deployed\" or \"current\", not \"" + choice +
                           "\"");
  if (choice == "as-deployed" && !kind->succeeded_before)
    return InvalidArgument(BuildLabel(release, build) + " has never succeeded on " + req.stage +
                           ", so there is no 'as-deployed' context: use \"current\"");
  DeploymentRecord d;
  d.application = app;
  d.release = release;
  d.build = build;
  d.stage = req.stage;
  d.kind = kind->kind;
  d.forced = req.force;
  d.context_choice = choice;
  d.variables_json = VariablesToJson(req.variables);
  d.comment = req.comment;
  d.requested_by = actor.user;
  d.created_at = impl.Now();
  d.expires_after_ms = req.expires_after.count();
  std::vector<std::string> targets = stage->targets;
  std::sort(targets.begin(), targets.end());  // a fixed order: no deadlock across stages
  d.targets_csv = JoinCsv(targets);
  bool scheduled = req.at && ToUnixMillis(*req.at) > d.created_at;
  d.status = scheduled ? "scheduled" : "waiting";
  if (scheduled) d.scheduled_at = ToUnixMillis(*req.at);
  std::string what = d.kind + " of " + BuildLabel(release, build) + " to " + d.stage;
  if (!crossed->empty())
    what += " (irreversible steps acknowledged: " + std::to_string(crossed->size()) + ")";
  int64_t id = 0;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    // In the request's transaction: retention marks a build's bytes removed
    // only when no deployment of it is pending, in its own transaction.
    REPRISE_RETURN_IF_ERROR(CheckBuildDeployable(store, app, release, build));
    REPRISE_ASSIGN_OR_RETURN(auto created, store.CreateDeployment(d));
    id = created.id;
    REPRISE_RETURN_IF_ERROR(store.AppendAudit(
        impl.AuditOf(actor.user, scheduled ? "deployment.schedule" : "deployment.request", id,
                     what + (scheduled ? " at " + FormatRfc3339Utc(*req.at) : ""))));
    if (!req.force) return Status::Ok();
    return store.AppendAudit(
        impl.AuditOf(actor.user, "deployment.force", id, "forced past gates: " + d.comment));
  }));
  d.id = id;
  impl.PublishDeployment("deployment.requested", d, d.status, d.comment);
  impl.Log(id, "", "info",
           "requested by " + actor.user + ": " + what +
               (scheduled ? " at " + FormatRfc3339Utc(*req.at) : std::string()) +
               (d.comment.empty() ? "" : " (" + d.comment + ")"));
  if (scheduled) {
    impl.Rearm();
  } else {
    impl.EvaluateWaiting(id);
    impl.Wake();
  }
  return store.GetDeployment(id);
}

Status DeploymentEngine::Approve(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (IsFinal(d->status) || d->status == "running" || d->status == "queued")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; approvals are only taken before it starts");
  auto spec = ReleaseSpec(*impl.store, d->application, d->release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d->stage);
  if (stage == nullptr) return NotFound("stage '" + d->stage + "' not found");
  Role needed = ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager);
  if (actor.role < needed)
    return PermissionDenied("approving deployments to " + d->stage + " needs the role " +
                            RoleName(needed) + "; '" + actor.user + "' is " + RoleName(actor.role));
  if (actor.user == d->requested_by && !stage->gates.allow_self_approval)
    return PermissionDenied("'" + actor.user +
                            "' requested this deployment and cannot approve it; the stage does "
                            "not allow self-approval");
  Store& store = *impl.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(
        store.AddApproval({0, id, actor.user, "approved", comment, impl.Now(), false}).status());
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.approve", id, comment));
  }));
  impl.Log(id, "", "info", "approved by " + actor.user + (comment.empty() ? "" : ": " + comment));
  if (d->status == "waiting") impl.EvaluateWaiting(id);
  return Status::Ok();
}

Status DeploymentEngine::Reject(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (d->status == "running") return impl.AnswerManual(actor, id, comment, /*reject=*/true);
  if (d->status != "waiting" && d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; only waiting or scheduled deployments, or one paused at a "
                              "manual step, can be rejected");
  auto spec = ReleaseSpec(*impl.store, d->application, d->release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d->stage);
  Role needed = stage ? ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager)
                      : Role::kReleaseManager;
  if (actor.role < needed)
    return PermissionDenied("rejecting deployments to " + d->stage + " needs the role " +
                            RoleName(needed));
  Store& store = *impl.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_RETURN_IF_ERROR(
        store.AddApproval({0, id, actor.user, "rejected", comment, impl.Now(), false}).status());
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.reject", id, comment));
  }));
  impl.Finish(*d, "cancelled",
              "rejected by " + actor.user + (comment.empty() ? "" : ": " + comment),
              {"waiting", "scheduled"});
  return Status::Ok();
}

Status DeploymentEngine::RevokeApproval(const Actor& actor, int64_t id) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  if (d->status != "waiting" && d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; approvals can be revoked only until it starts");
  Store& store = *impl.store;
  int64_t revoked = 0;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(revoked, store.RevokeApprovals(id, actor.user));
    if (revoked == 0) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.revoke-approval", id, ""));
  }));
  if (revoked == 0)
    return NotFound("'" + actor.user + "' has no approval of deployment " + std::to_string(id) +
                    " to revoke");
  impl.Log(id, "", "info", "approval revoked by " + actor.user);
  return Status::Ok();
}

Status DeploymentEngine::Cancel(const Actor& actor, int64_t id, const std::string& comment) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  REPRISE_RETURN_IF_ERROR(impl.MayChange(actor, *d, "cancelling deployment " + std::to_string(id)));
  if (IsFinal(d->status))
    return FailedPrecondition("deployment " + std::to_string(id) + " is already " + d->status);
  std::string why = "cancelled by " + actor.user + (comment.empty() ? "" : ": " + comment);
  if (d->status == "running") {
    {
      std::lock_guard lock(impl.mu);
      auto it = impl.running.find(id);
      if (it != impl.running.end()) it->second->cancel.Cancel();
    }
    impl.Audit(actor.user, "deployment.cancel", id, "asked a running deployment to stop");
    impl.Log(id, "", "warning", why + "; stopping");
    return Status::Ok();
  }
  Store& store = *impl.store;
  bool moved = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(
        moved, store.TransitionDeployment(id, {"scheduled", "waiting", "queued"}, "cancelled", 0,
                                          impl.Now(), why));
    if (!moved) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.cancel", id, comment));
  }));
  if (!moved)
    return FailedPrecondition("deployment " + std::to_string(id) + " has started meanwhile");
  impl.Log(id, "", "warning", why);
  impl.log_cv.notify_all();
  if (d->status == "scheduled") impl.Rearm();
  return Status::Ok();
}

Status DeploymentEngine::Reschedule(const Actor& actor, int64_t id, TimePoint at) {
  Impl& impl = *impl_;
  auto d = impl.store->GetDeployment(id);
  if (!d.ok()) return d.status();
  REPRISE_RETURN_IF_ERROR(impl.MayChange(actor, *d, "moving deployment " + std::to_string(id)));
  if (d->status != "scheduled")
    return FailedPrecondition("deployment " + std::to_string(id) + " is " + d->status +
                              "; only scheduled deployments can be moved");
  REPRISE_RETURN_IF_ERROR(CheckScheduleTime(at, impl.clock->Now()));
  std::string what = "moved from " + FormatRfc3339Utc(FromUnixMillis(d->scheduled_at)) + " to " +
                     FormatRfc3339Utc(at);
  Store& store = *impl.store;
  bool moved = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(moved, store.RescheduleDeployment(id, ToUnixMillis(at)));
    if (!moved) return Status::Ok();
    return store.AppendAudit(impl.AuditOf(actor.user, "deployment.reschedule", id, what));
  }));
  if (!moved)
    return FailedPrecondition("deployment " + std::to_string(id) + " has started meanwhile");
  impl.Log(id, "", "info", what + " by " + actor.user);
  impl.Rearm();
  return Status::Ok();
}

Status DeploymentEngine::Continue(const Actor& actor, int64_t id, const std::string& comment) {
  return impl_->AnswerManual(actor, id, comment, /*reject=*/false);
}

Status DeploymentEngine::SetGrant(const Actor& actor, const std::string& environment,
                                  const std::string& user, const std::string& permission,
                                  bool granted, bool* changed) {
  Impl& impl = *impl_;
  if (actor.role < Role::kAdmin)
    return PermissionDenied("changing grants needs the role admin; '" + actor.user + "' is " +
                            RoleName(actor.role));
  if (permission != kRedeployPermission)
    return InvalidArgument("unknown permission '" + permission + "' (known: redeploy)");
  REPRISE_RETURN_IF_ERROR(impl.store->GetEnvironment(environment).status());
  REPRISE_RETURN_IF_ERROR(impl.store->GetUser(user).status());
  Store& store = *impl.store;
  bool done = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(
        done, granted ? store.PutGrant({environment, user, permission, actor.user, impl.Now()})
                      : store.DeleteGrant(environment, user, permission));
    if (!done) return Status::Ok();
    return store.AppendAudit({0, impl.Now(), actor.user, granted ? "grant.add" : "grant.remove",
                              environment + "/" + user + "/" + permission,
                              (granted ? "granted " : "revoked ") + permission + " on " +
                                  environment + (granted ? " to " : " from ") + user});
  }));
  if (changed != nullptr) *changed = done;
  if (!done && !granted)
    return NotFound("'" + user + "' holds no '" + permission + "' grant on environment '" +
                    environment + "'");
  return Status::Ok();  // a grant held already changes nothing
}

Result<std::vector<GrantRecord>> DeploymentEngine::Grants(const std::string& environment) {
  REPRISE_RETURN_IF_ERROR(impl_->store->GetEnvironment(environment).status());
  return impl_->store->ListGrants(environment);
}

Status DeploymentEngine::ClearHold(const Actor& actor, const std::string& app,
                                   const std::string& stage, const std::string& comment) {
  Impl& impl = *impl_;
  Store& store = *impl.store;
  bool removed = false;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(removed, store.ClearHold(app, stage));
    if (!removed) return Status::Ok();
    return store.AppendAudit(
        {0, impl.Now(), actor.user, "stage.clear-hold", app + "/" + stage, comment});
  }));
  if (!removed) return NotFound("stage '" + stage + "' of '" + app + "' has no hold");
  return Status::Ok();
}

}  // namespace reprise
