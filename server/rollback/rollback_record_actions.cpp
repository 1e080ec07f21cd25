// RollbackRecords: the transitions after creation: test connection, submit,
// approve / reject, execute (through the engine), validate, and bringing a
// record up to date with its execution deployment.
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/json_members.h"
#include "planner/app_spec.h"
#include "server/engine/agent_port.h"
#include "server/engine/irreversible.h"
#include "server/rollback/rollback_records.h"

namespace reprise {
namespace {

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool IsFinalDeployment(const std::string& s) {
  return s == "succeeded" || s == "failed" || s == "cancelled" || s == "interrupted" ||
         s == "expired";
}

// One target's connection: the agent, the root, and D's files unchanged.
Json CheckTarget(AgentPort& agents, const RollbackRecordTarget& t, bool* ok) {
  Json out = {{"target", t.target}, {"ok", false}, {"drifted", Json::array()}};
  auto probe = agents.Probe(t.target);
  if (!probe.ok()) {
    out["problem"] = probe.status().message();
    return out;
  }
  out["agent"] = probe->link.agent;
  out["connected"] = probe->link.connected;
  out["approved"] = probe->link.approved;
  out["writable"] = probe->answered && probe->report.writable;
  std::string problem = probe->problem;
  if (problem.empty() && !probe->report.writable) problem = probe->report.problem;
  if (problem.empty()) {
    auto state = agents.GetTargetState(t.target);
    if (!state.ok() || !state->online) {
      problem = "the agent could not say what the target runs";
    } else if (state->current_release != t.release_dir) {
      problem = "current is " +
                (state->current_release.empty() ? std::string("nothing") : state->current_release) +
                ", not D's release " + t.release_dir;
    } else {
      auto md = ManifestFromJson(t.manifest_json);
      auto report =
          md.ok() ? agents.Validate(t.target, *md) : Result<ValidationReport>(md.status());
      if (!report.ok()) {
        problem = "D's files could not be checked: " + report.status().message();
      } else if (!report->ok()) {
        Json drifted = Json::array();
        for (const auto& p : report->missing)
          drifted.push_back({{"path", p}, {"problem", "missing"}});
        for (const auto& c : report->changed)
          drifted.push_back({{"path", c.path}, {"problem", c.detail}});
        for (const auto& p : report->extra) drifted.push_back({{"path", p}, {"problem", "extra"}});
        out["drifted"] = drifted;
        problem = std::to_string(drifted.size()) + " file(s) differ from what deployment D left";
      }
    }
  }
  out["problem"] = problem;
  out["ok"] = problem.empty();
  if (!problem.empty()) *ok = false;
  return out;
}

}  // namespace

std::string RollbackApprovalRule::Describe() const {
  return std::to_string(count) + " approval" + (count == 1 ? "" : "s") + " from " + RoleName(role) +
         " (never the submitter's own)";
}

Result<RollbackApprovalRule> RollbackRecords::ApprovalRule(const RollbackRecord& r) {
  RollbackApprovalRule rule;
  REPRISE_ASSIGN_OR_RETURN(ApplicationRecord app, store_.GetApplication(r.application));
  REPRISE_ASSIGN_OR_RETURN(AppSpec spec, ParseAppSpec(app.spec_json, "application spec"));
  const StageSpec* stage = spec.FindStage(r.stage);
  if (stage != nullptr && stage->gates.approvals.count > 0) {
    rule.count = stage->gates.approvals.count;
    rule.role = ParseRole(stage->gates.approvals.role).value_or(Role::kReleaseManager);
  }
  return rule;
}

Result<RollbackRecord> RollbackRecords::Get(int64_t id) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  if ((r.status != "scheduled" && r.status != "executing") || r.execution_deployment_id == 0)
    return r;
  // The run records the end itself; this covers a server that stopped
  // between the deployment's end and the record's.
  auto d = store_.GetDeployment(r.execution_deployment_id);
  if (!d.ok() || !IsFinalDeployment(d->status)) return r;
  RollbackRecordChange change;
  change.finished_at = d->finished_at;
  change.error = d->status == "succeeded" ? "" : d->status + ": " + d->error;
  std::string to = d->status == "succeeded" ? "executed" : "failed";
  bool moved = false;
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(
        moved, store_.TransitionRollbackRecord(id, {"scheduled", "executing"}, to, change));
    if (!moved) return Status::Ok();
    return Audit({"scheduler", Role::kAdmin}, to, id,
                 "deployment " + std::to_string(d->id) + " " + d->status);
  }));
  // Published only when this call moved it (the run publishes its own end).
  return Reread("scheduler", moved ? r.status : to, id);
}

Result<RollbackRecord> RollbackRecords::TestConnection(const Actor& actor, int64_t id) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, Get(id));
  REPRISE_ASSIGN_OR_RETURN(auto targets, store_.ListRollbackRecordTargets(id));
  bool ok = true;
  Json result = {{"checked_at", ToUnixMillis(clock_.Now())}, {"targets", Json::array()}};
  for (const auto& t : targets) result["targets"].push_back(CheckTarget(agents_, t, &ok));
  result["ok"] = ok;
  int64_t now = ToUnixMillis(clock_.Now());
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_RETURN_IF_ERROR(store_.SetRollbackConnection(id, Dump(result), ok, now));
    return Audit(actor, "test-connection", id, ok ? "ok" : "problems found");
  }));
  return store_.GetRollbackRecord(r.id);
}

Result<RollbackRecord> RollbackRecords::Submit(const Actor& actor, int64_t id,
                                               const std::string& comment) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  REPRISE_RETURN_IF_ERROR(engine_.MayRedeploy(actor, r.application, r.stage));
  if (r.components_selected == 0)
    return FailedPrecondition("rollback record " + std::to_string(id) +
                              " selects no component; select at least one before submitting");
  RollbackRecordChange change;
  change.submitted_by = actor.user;
  change.submitted_at = ToUnixMillis(clock_.Now());
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(
        bool moved, store_.TransitionRollbackRecord(id, {"draft"}, "pending-approval", change));
    if (!moved)
      return FailedPrecondition("rollback record " + std::to_string(id) + " is " + r.status +
                                "; only a draft can be submitted for approval");
    return Audit(actor, "submit", id, comment);
  }));
  return Reread(actor.user, r.status, id);
}

Result<RollbackRecord> RollbackRecords::Decide(const Actor& actor, int64_t id, bool approve,
                                               const std::string& comment) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  const std::string doing = approve ? "approve" : "reject";
  if (r.status != "pending-approval")
    return FailedPrecondition("rollback record " + std::to_string(id) + " is " + r.status +
                              "; only a record pending approval can be " + doing + "d");
  if (actor.user == r.submitted_by)
    return PermissionDenied("'" + actor.user + "' submitted rollback record " + std::to_string(id) +
                            " and cannot " + doing + " it");
  REPRISE_ASSIGN_OR_RETURN(RollbackApprovalRule rule, ApprovalRule(r));
  if (actor.role < rule.role)
    return PermissionDenied("deciding on rollback records of " + r.stage + " needs the role " +
                            RoleName(rule.role) + "; '" + actor.user + "' is " +
                            RoleName(actor.role));
  int64_t now = ToUnixMillis(clock_.Now());
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_RETURN_IF_ERROR(store_.AddRollbackApproval(
        id, {actor.user, approve ? "approved" : "rejected", comment, now}));
    REPRISE_RETURN_IF_ERROR(Audit(actor, doing, id, comment));
    if (!approve)
      return store_.TransitionRollbackRecord(id, {"pending-approval"}, "rejected", {}).status();
    REPRISE_ASSIGN_OR_RETURN(auto decisions, store_.ListRollbackApprovals(id));
    std::set<std::string> approvers;
    for (const auto& a : decisions) {
      if (a.decision != "approved" || a.user == r.submitted_by) continue;
      auto user = store_.GetUser(a.user);
      if (user.ok() && user->role >= rule.role) approvers.insert(a.user);
    }
    if (static_cast<int>(approvers.size()) < rule.count) return Status::Ok();
    return store_.TransitionRollbackRecord(id, {"pending-approval"}, "approved", {}).status();
  }));
  return Reread(actor.user, r.status, id);
}

Status RollbackRecords::MayExecute(const Actor& actor, const RollbackRecord& r) {
  if (actor.role >= Role::kReleaseManager) return Status::Ok();
  auto app = store_.GetApplication(r.application);
  std::string environment;
  if (app.ok()) {
    auto spec = ParseAppSpec(app->spec_json, "application spec");
    if (spec.ok())
      if (const StageSpec* s = spec->FindStage(r.stage)) environment = s->environment;
  }
  if (actor.role >= Role::kDeployer && !environment.empty()) {
    REPRISE_ASSIGN_OR_RETURN(bool granted, store_.HasGrant(environment, actor.user, "redeploy"));
    if (granted) return Status::Ok();
  }
  return PermissionDenied(
      "executing a rollback record needs the role release-manager or the "
      "'redeploy' grant on environment '" +
      environment + "'; '" + actor.user + "' is " + RoleName(actor.role));
}

Result<std::vector<IrreversibleStepRecord>> RollbackRecords::IrreversibleSteps(
    const RollbackRecord& r) {
  REPRISE_ASSIGN_OR_RETURN(auto targets, store_.ListRollbackRecordTargets(r.id));
  std::map<int64_t, IrreversibleStepRecord> by_id;  // one entry a step, in the order they ran
  for (const auto& t : targets) {
    auto steps = t.previous_deployment_id != 0
                     ? IrreversibleStepsSince(store_, r.application, t.previous_release,
                                              t.previous_build, r.stage)
                     : store_.ListIrreversibleSteps(r.application, r.stage, 0);
    if (!steps.ok()) return steps.status();
    for (const auto& s : *steps)
      if (s.target == t.target) by_id[s.id] = s;
  }
  std::vector<IrreversibleStepRecord> out;
  for (auto& [id, s] : by_id) out.push_back(std::move(s));
  return out;
}

Result<RollbackRecord> RollbackRecords::Execute(const Actor& actor, int64_t id,
                                                std::optional<TimePoint> at,
                                                bool acknowledge_irreversible) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  REPRISE_RETURN_IF_ERROR(MayExecute(actor, r));
  if (r.status != "approved")
    return FailedPrecondition("rollback record " + std::to_string(id) + " is " + r.status +
                              "; only an approved record can be executed");
  REPRISE_ASSIGN_OR_RETURN(auto irreversible, IrreversibleSteps(r));
  if (!irreversible.empty() && !acknowledge_irreversible) {
    std::string list;
    for (const auto& s : irreversible)
      list += (list.empty() ? "" : "; ") + DescribeIrreversibleStep(s);
    return InvalidArgument("rollback record " + std::to_string(id) + " goes back across " +
                           std::to_string(irreversible.size()) +
                           " irreversible step(s) that it does not undo: " + list +
                           ". Send \"acknowledge_irreversible\": true to execute anyway");
  }
  int64_t now = ToUnixMillis(clock_.Now());
  if (at && ToUnixMillis(*at) < now - 60000) return InvalidArgument("field 'at' is in the past");
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord checked, TestConnection(actor, id));
  if (!checked.connection_ok)
    return FailedPrecondition("rollback record " + std::to_string(id) +
                              " cannot be executed: the connection check found problems (see "
                              "its connection; drifted files must be fixed and checked again)");
  REPRISE_ASSIGN_OR_RETURN(auto targets, store_.ListRollbackRecordTargets(id));
  std::string csv;
  for (const auto& t : targets) csv += (csv.empty() ? "" : ",") + t.target;
  DeploymentRecord d;
  d.application = r.application;
  d.release = r.release;
  d.build = r.build;
  d.stage = r.stage;
  d.comment = "rollback record #" + std::to_string(id) + " of deployment " +
              std::to_string(r.deployment_id);
  d.requested_by = actor.user;
  d.targets_csv = csv;
  d.scheduled_at = at ? ToUnixMillis(*at) : 0;
  auto execution = engine_.RequestSelectiveRollback(d, [&](const DeploymentRecord& created) {
    RollbackRecordChange change;
    change.executed_by = actor.user;
    change.executed_at = now;
    change.execution_deployment_id = created.id;
    change.scheduled_at = created.scheduled_at;
    std::string to = created.status == "scheduled" ? "scheduled" : "executing";
    REPRISE_ASSIGN_OR_RETURN(bool moved,
                             store_.TransitionRollbackRecord(id, {"approved"}, to, change));
    if (!moved)
      return FailedPrecondition("rollback record " + std::to_string(id) +
                                " is no longer approved (executed meanwhile?)");
    std::string when = created.status == "scheduled"
                           ? " at " + FormatRfc3339Utc(FromUnixMillis(created.scheduled_at))
                           : std::string(" now");
    if (!irreversible.empty())
      when += ", acknowledging " + std::to_string(irreversible.size()) + " irreversible step(s)";
    return Audit(actor, "execute", id, "deployment " + std::to_string(created.id) + when);
  });
  if (!execution.ok()) return execution.status();
  return Reread(actor.user, r.status, id);
}

Result<RollbackRecord> RollbackRecords::Validate(const Actor& actor, int64_t id) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, Get(id));
  if (r.status != "executed" && r.status != "validated" && r.status != "validation-failed")
    return FailedPrecondition("rollback record " + std::to_string(id) + " is " + r.status +
                              "; only an executed record can be validated");
  REPRISE_ASSIGN_OR_RETURN(auto targets, store_.ListRollbackRecordTargets(id));
  REPRISE_ASSIGN_OR_RETURN(auto components, store_.ListRollbackComponents(id));
  int64_t now = ToUnixMillis(clock_.Now());
  bool ok = true;
  Json file = JSON_MEMBERS(r, application, stage, release, build);
  file["record"] = id;
  file["deployment"] = r.deployment_id;
  file["validated_by"] = actor.user;
  file["validated_at"] = now;
  file["targets"] = Json::array();
  for (const auto& t : targets) {
    std::map<std::string, std::string> selected;  // path -> type
    for (const auto& c : components)
      if (c.target == t.target && c.selected) selected[c.path] = c.type;
    Json one = {{"target", t.target},
                {"composed_manifest_hash", t.composed_manifest_hash},
                {"selected_components", selected.size()}};
    auto composed = ManifestFromJson(t.composed_manifest_json);
    auto report = composed.ok() ? agents_.Validate(t.target, *composed)
                                : Result<ValidationReport>(composed.status());
    if (!report.ok()) {
      one["ok"] = false;
      one["problem"] = report.status().message();
      ok = false;
      file["targets"].push_back(one);
      continue;
    }
    Json comp_problems = Json::array(), other_problems = Json::array();
    auto add = [&](const std::string& path, const std::string& problem) {
      auto it = selected.find(path);
      Json p = {{"path", path}, {"problem", problem}};
      if (it != selected.end()) {
        p["type"] = it->second;
        comp_problems.push_back(p);
      } else {
        other_problems.push_back(p);
      }
    };
    for (const auto& p : report->missing) add(p, "missing");
    for (const auto& c : report->changed) add(c.path, c.detail);
    for (const auto& p : report->extra) add(p, "extra");
    one["files_checked"] = report->files_checked;
    one["components"] = {{"ok", comp_problems.empty()}, {"problems", comp_problems}};
    one["other_files"] = {{"ok", other_problems.empty()}, {"problems", other_problems}};
    one["ok"] = report->ok();
    ok = ok && report->ok();
    file["targets"].push_back(one);
  }
  file["ok"] = ok;
  RollbackRecordChange change;
  change.validated_by = actor.user;
  change.validated_at = now;
  change.validation_json = Dump(file);
  std::string to = ok ? "validated" : "validation-failed";
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(bool moved,
                             store_.TransitionRollbackRecord(
                                 id, {"executed", "validated", "validation-failed"}, to, change));
    if (!moved)
      return FailedPrecondition("rollback record " + std::to_string(id) + " changed meanwhile");
    return Audit(actor, "validate", id, to);
  }));
  return Reread(actor.user, r.status, id);
}

}  // namespace reprise
