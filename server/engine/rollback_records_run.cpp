// Selective rollback records in the engine: who may create one (what
// re-deploying needs), storing the execution (a deployment of kind
// `selective-rollback` that goes through the queue and the scheduler like any
// other), and running it: compose-release on each target of the record
// instead of a plan, then the record's final status.
// Threading: MayRedeploy and RequestSelectiveRollback run on API threads;
// RunSelectiveRollback on the deployment's own thread.
#include "server/engine/engine_internal.h"
#include "server/events/record_events.h"

namespace reprise {

using namespace engine_internal;

Status DeploymentEngine::MayRedeploy(const Actor& actor, const std::string& app,
                                     const std::string& stage_name) {
  auto application = impl_->store->GetApplication(app);
  if (!application.ok()) return application.status();
  auto spec = ParseAppSpec(application->spec_json, "application spec");
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(stage_name);
  if (stage == nullptr)
    return FailedPrecondition("stage '" + stage_name + "' is no longer in the pipeline of " + app);
  return impl_->MayDeploy(actor, app, *stage, "redeploy", "rolling back on " + stage_name);
}

Result<DeploymentRecord> DeploymentEngine::RequestSelectiveRollback(
    const DeploymentRecord& execution,
    const std::function<Status(const DeploymentRecord&)>& with_it) {
  Impl& impl = *impl_;
  DeploymentRecord d = execution;
  d.kind = kSelectiveRollbackKind;
  d.created_at = impl.Now();
  bool scheduled = d.scheduled_at > d.created_at;
  d.status = scheduled ? "scheduled" : "waiting";
  if (!scheduled) d.scheduled_at = 0;
  int64_t id = 0;
  REPRISE_RETURN_IF_ERROR(impl.store->Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(auto created, impl.store->CreateDeployment(d));
    id = created.id;
    REPRISE_RETURN_IF_ERROR(impl.store->AppendAudit(impl.AuditOf(
        d.requested_by, scheduled ? "deployment.schedule" : "deployment.request", id, d.comment)));
    return with_it(created);
  }));
  d.id = id;
  impl.PublishDeployment("deployment.requested", d, d.status, d.comment);
  impl.Log(id, "", "info", "requested by " + d.requested_by + ": " + d.comment);
  if (scheduled) {
    impl.Rearm();
  } else {
    impl.EvaluateWaiting(id);
    impl.Wake();
  }
  return impl.store->GetDeployment(id);
}

namespace {

std::string Summary(const std::vector<RevertEntry>& reverts) {
  int del = 0, over = 0, rest = 0;
  for (const auto& r : reverts) {
    del += r.type == "delete";
    over += r.type == "override";
    rest += r.type == "restore";
  }
  return std::to_string(reverts.size()) + " component(s): " + std::to_string(del) + " delete, " +
         std::to_string(over) + " override, " + std::to_string(rest) + " restore";
}

ComposeReleaseOp OpFor(const RollbackRecord& rec, const RollbackRecordTarget& t,
                       std::vector<RevertEntry> reverts) {
  ComposeReleaseOp op;
  op.base_release = t.release_dir;
  op.base_manifest_hash = t.manifest_hash;
  op.source_release = t.previous_release_dir;
  op.source_artifact = t.previous_artifact;
  op.source_sha256 = t.previous_sha256;
  op.source_manifest_hash = t.previous_manifest_hash;
  op.reverts = std::move(reverts);
  op.manifest_json = t.composed_manifest_json;
  op.name = t.release_dir + "+rr" + std::to_string(rec.id);
  return op;
}

}  // namespace

// compose-release on each target in turn; after a failure the rest are
// skipped. Returns each target's result; `status_out` / `error_out` say how
// it ended.
std::vector<DeploymentTargetRecord> DeploymentEngine::Impl::ComposeOnTargets(
    const std::shared_ptr<Running>& r, const DeploymentRecord& d, const RollbackRecord& record,
    const std::vector<RollbackRecordTarget>& targets,
    const std::vector<RollbackComponentRecord>& components, const ExecutionContext& ctx,
    std::string* status_out, std::string* error_out) {
  Masker masker;
  std::vector<DeploymentTargetRecord> results;
  std::string& status = *status_out;
  std::string& error = *error_out;
  auto operations = o.agents->OperationsFor(ctx);
  for (size_t i = 0; i < targets.size(); ++i) {
    const RollbackRecordTarget& t = targets[i];
    std::vector<RevertEntry> reverts;
    for (const auto& c : components)
      if (c.target == t.target && c.selected) reverts.push_back({c.path, c.type});
    if (status != "succeeded") {
      results.push_back(
          {d.id, t.target, "skipped", "an earlier target failed", "", "", d.started_at, Now()});
      continue;
    }
    if (reverts.empty()) {
      Log(d.id, t.target, "info", "nothing selected on " + t.target + "; left as it is");
      results.push_back(
          {d.id, t.target, "succeeded", "nothing selected", "", "", d.started_at, Now()});
      continue;
    }
    Log(d.id, t.target, "info", "reverting " + Summary(reverts));
    StepLog log(*clock, masker, "compose-release", {}, t.target,
                [this, id = d.id](const LogLine& line) {
                  Log(id, line.target, std::string(LogLevelName(line.level)), line.text);
                });
    auto outcome =
        operations->Run(ctx.targets[i], OpFor(record, t, std::move(reverts)), log, r->cancel);
    log.FinishOutput();
    if (outcome.succeeded()) {
      results.push_back({d.id, t.target, "succeeded", "", "", "", d.started_at, Now()});
      continue;
    }
    std::string why =
        outcome.kind == OperationOutcome::Kind::kFailed ? outcome.message : outcome.error.message();
    status = r->cancel.IsCancelled() ? "cancelled" : "failed";
    error = t.target + ": " + why;
    results.push_back({d.id, t.target, "failed", why, "", "", d.started_at, Now()});
  }
  return results;
}

void DeploymentEngine::Impl::RunSelectiveRollback(const std::shared_ptr<Running>& r,
                                                  const DeploymentRecord& d) {
  auto rec = store->FindRollbackRecordByExecution(d.id);
  auto targets = rec.ok() ? store->ListRollbackRecordTargets(rec->id)
                          : Result<std::vector<RollbackRecordTarget>>(rec.status());
  auto components = rec.ok() ? store->ListRollbackComponents(rec->id)
                             : Result<std::vector<RollbackComponentRecord>>(rec.status());
  auto end_record = [&](const std::string& status, const std::string& error) {
    if (!rec.ok()) return;
    RollbackRecordChange change;
    change.finished_at = Now();
    change.error = error;
    bool moved = false;
    Status st = store->Atomically([&]() -> Status {
      REPRISE_ASSIGN_OR_RETURN(moved, store->TransitionRollbackRecord(
                                          rec->id, {"scheduled", "executing"}, status, change));
      if (!moved) return Status::Ok();
      return store->AppendAudit(
          {0, Now(), "scheduler", "rollback-record." + status,
           "rollback-record " + std::to_string(rec->id),
           "deployment " + std::to_string(d.id) + (error.empty() ? "" : ": " + error)});
    });
    if (!st.ok())
      Log(d.id, "", "error", "could not record the rollback record's end: " + st.message());
    if (st.ok() && moved) Publish(o.events, RollbackRecordEvent(*rec, status, "scheduler", error));
  };
  auto fail = [&](const std::string& why) {
    Finish(d, "failed", why, {"running"});
    end_record("failed", why);
  };
  if (!rec.ok()) return fail("no rollback record is executed by this deployment");
  if (!targets.ok()) return fail(targets.status().message());
  if (!components.ok()) return fail(components.status().message());
  // The execution context is D's: a later as-deployed re-deploy of the build
  // resolves from it.
  auto original = store->GetDeployment(rec->deployment_id);
  ExecutionContext ctx;
  if (original.ok() && !original->context_json.empty()) {
    auto parsed = ContextFromJson(original->context_json);
    if (parsed.ok()) ctx = *parsed;
  }
  ctx.release = d.release;
  ctx.build = std::to_string(d.build);
  ctx.targets.clear();
  std::vector<DeploymentTargetRecord> starting;
  for (const auto& t : *targets) {
    auto info = store->GetTarget(t.target);
    if (!info.ok()) return fail("target " + t.target + ": " + info.status().message());
    ctx.targets.push_back({info->name, info->agent, info->path, {}});
    starting.push_back({d.id, t.target, "running", "", "", "", Now(), 0});
  }
  Status saved =
      store->StartDeployment(d.id, original.ok() ? original->context_json : std::string(),
                             kSelectiveRollbackKind, starting);
  if (!saved.ok()) return fail(saved.message());
  auto executing = store->TransitionRollbackRecord(rec->id, {"scheduled"}, "executing", {});
  if (executing.ok() && *executing)
    Publish(o.events, RollbackRecordEvent(*rec, "executing", d.requested_by));
  Log(d.id, "", "info",
      "running rollback record #" + std::to_string(rec->id) + " of deployment " +
          std::to_string(rec->deployment_id) + " (" + BuildLabel(d.release, d.build) + " on " +
          d.stage + ")");
  if (o.agents == nullptr) return fail("no agent hub is configured");
  std::string status = "succeeded", error;
  std::vector<DeploymentTargetRecord> results =
      ComposeOnTargets(r, d, *rec, *targets, *components, ctx, &status, &error);
  auto states = RecordTargetStates(d, ctx, nullptr);
  Finish(d, status, error, {"running"}, results, states);
  end_record(status == "succeeded" ? "executed" : "failed", error);
}

}  // namespace reprise
