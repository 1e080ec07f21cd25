// RollbackRecords: creating a record (eligibility, what ran before on each
// target, the components) and changing its selection. The other transitions
// are in rollback_record_actions.cpp.
#include "server/rollback/rollback_records.h"

#include <algorithm>
#include <set>

#include "agents/agent/runner.h"
#include "planner/execution_context.h"
#include "server/artifacts/blob_store.h"
#include "server/engine/agent_port.h"
#include "server/events/record_events.h"
#include "server/rollback/components.h"

namespace reprise {
namespace {

std::string Label(const std::string& release, int64_t build) {
  return release + " build " + std::to_string(build);
}

struct ChosenArtifact {
  std::string name;
  std::string sha256;
};

// The artifact of a deployment whose release directory is `release_dir`, or
// (no directory to match) the one named `prefer`, or its only artifact.
Result<ChosenArtifact> ArtifactOf(const DeploymentRecord& d, const std::string& release_dir,
                                  const std::string& prefer) {
  auto ctx = ContextFromJson(d.context_json);
  if (!ctx.ok() || ctx->artifact_sha256.empty())
    return FailedPrecondition("deployment " + std::to_string(d.id) + " (" +
                              Label(d.release, d.build) + ") recorded no artifact it deployed");
  DeployLabel label{d.release, std::to_string(d.build)};
  for (const auto& [name, sha] : ctx->artifact_sha256)
    if (!release_dir.empty() && ReleaseDirName(label, name, sha) == release_dir)
      return ChosenArtifact{name, sha};
  if (auto it = ctx->artifact_sha256.find(prefer); it != ctx->artifact_sha256.end())
    return ChosenArtifact{it->first, it->second};
  if (ctx->artifact_sha256.size() == 1)
    return ChosenArtifact{ctx->artifact_sha256.begin()->first,
                          ctx->artifact_sha256.begin()->second};
  return FailedPrecondition("cannot tell which artifact of deployment " + std::to_string(d.id) +
                            " is in release directory " + release_dir);
}

Result<Manifest> ManifestOf(Store& store, const DeploymentRecord& d, const std::string& name,
                            ArtifactRecord* record) {
  REPRISE_ASSIGN_OR_RETURN(*record, store.GetArtifact(d.application, d.release, d.build, name));
  auto m = ManifestFromJson(record->manifest_json);
  if (!m.ok())
    return Internal("the stored manifest of artifact " + name + " of " + Label(d.release, d.build) +
                    " cannot be read");
  return m;
}

// What the target ran before D: the newest deployment of the same
// application and stage that succeeded on it before D.
Result<std::optional<DeploymentRecord>> PreviousOn(Store& store, const DeploymentRecord& d,
                                                   const std::string& target) {
  DeploymentFilter f;
  f.application = d.application;
  f.stage = d.stage;
  f.statuses = {"succeeded"};
  f.target = target;
  for (int64_t offset = 0; offset < 1000; offset += 100) {
    REPRISE_ASSIGN_OR_RETURN(auto page, store.ListDeployments(f, {100, offset}));
    for (const auto& p : page) {
      if (p.id >= d.id) continue;
      REPRISE_ASSIGN_OR_RETURN(auto rows, store.ListDeploymentTargets(p.id));
      bool ran = rows.empty();
      for (const auto& row : rows) ran = ran || (row.target == target && row.status == "succeeded");
      if (ran) return std::optional<DeploymentRecord>(p);
    }
    if (page.size() < 100) break;
  }
  return std::optional<DeploymentRecord>();
}

struct ResolvedTarget {
  RollbackRecordTarget row;
  std::optional<Manifest> previous;
  Manifest deployed;
};

// Whether A's bytes can still be had: its release cached on the target, or
// its artifact's blob in the store.
Status PreviousBytes(Store& store, AgentPort& agents, BlobStore& blobs, const DeploymentRecord& a,
                     const ArtifactRecord& artifact, const RollbackRecordTarget& row) {
  // The probe lists the release directories present on the target now.
  auto probe = agents.Probe(row.target);
  bool answered = probe.ok() && probe->answered;
  if (answered && std::count(probe->report.cached_releases.begin(),
                             probe->report.cached_releases.end(), row.previous_release_dir) > 0)
    return Status::Ok();
  (void)store;
  if (artifact.blob_removed_at == 0 && blobs.Exists(artifact.sha256)) return Status::Ok();
  return FailedPrecondition(
      "the bytes of what target " + row.target + " ran before (" + Label(a.release, a.build) +
      ", deployment " + std::to_string(a.id) + ") are gone: release " + row.previous_release_dir +
      (answered ? " is no longer cached on the target"
                : " cannot be confirmed on the target (its agent is offline)") +
      " and artifact " + artifact.name + " was removed by retention");
}

Result<ResolvedTarget> ResolveTarget(Store& store, AgentPort& agents, BlobStore& blobs,
                                     const DeploymentRecord& d, const std::string& target) {
  auto state = store.GetTargetState(target);
  if (!state.ok() || state->application != d.application || state->stage != d.stage ||
      state->current.release != d.release || state->current.build != d.build)
    return FailedPrecondition(
        "target " + target + " no longer runs " + Label(d.release, d.build) +
        (state.ok() ? " (it runs " + Label(state->current.release, state->current.build) +
                          " from deployment " + std::to_string(state->current.deployment_id) + ")"
                    : " (nothing is recorded for it)"));
  if (state->release_dir.empty())
    return FailedPrecondition("no release directory is recorded for target " + target +
                              "; verify it first");
  ResolvedTarget out;
  RollbackRecordTarget& row = out.row;
  row.target = target;
  row.release_dir = state->release_dir;
  REPRISE_ASSIGN_OR_RETURN(ChosenArtifact mine, ArtifactOf(d, state->release_dir, ""));
  ArtifactRecord deployed_record;
  REPRISE_ASSIGN_OR_RETURN(out.deployed, ManifestOf(store, d, mine.name, &deployed_record));
  row.artifact = mine.name;
  row.manifest_json = ManifestToJson(out.deployed);
  row.manifest_hash = out.deployed.manifest_hash;
  REPRISE_ASSIGN_OR_RETURN(auto previous, PreviousOn(store, d, target));
  if (!previous) return out;
  const DeploymentRecord& a = *previous;
  if (a.kind == "selective-rollback")
    return FailedPrecondition("what target " + target + " ran before deployment " +
                              std::to_string(d.id) +
                              " was a rollback record's result (deployment " +
                              std::to_string(a.id) + "), which no artifact holds");
  REPRISE_ASSIGN_OR_RETURN(ChosenArtifact theirs, ArtifactOf(a, "", mine.name));
  ArtifactRecord previous_record;
  REPRISE_ASSIGN_OR_RETURN(Manifest ma, ManifestOf(store, a, theirs.name, &previous_record));
  row.previous_deployment_id = a.id;
  row.previous_release = a.release;
  row.previous_build = a.build;
  row.previous_release_dir =
      ReleaseDirName(DeployLabel{a.release, std::to_string(a.build)}, theirs.name, theirs.sha256);
  row.previous_artifact = theirs.name;
  row.previous_sha256 = theirs.sha256;
  row.previous_manifest_json = ManifestToJson(ma);
  row.previous_manifest_hash = ma.manifest_hash;
  REPRISE_RETURN_IF_ERROR(PreviousBytes(store, agents, blobs, a, previous_record, row));
  out.previous = std::move(ma);
  return out;
}

Status CheckSelection(const RollbackSelection& s) {
  for (const auto& p : s.components) REPRISE_RETURN_IF_ERROR(CheckSelector(p, "components"));
  for (const auto& p : s.exclude) REPRISE_RETURN_IF_ERROR(CheckSelector(p, "exclude"));
  return Status::Ok();
}

// Applies the selection to every target and composes each one's manifest.
Status SelectAndCompose(std::vector<ResolvedTarget>& targets, const RollbackSelection& s,
                        std::vector<RollbackComponentRecord>* out) {
  std::set<std::string> matched;
  for (auto& t : targets) {
    auto comps = ComputeComponents(t.previous ? &*t.previous : nullptr, t.deployed);
    auto here = ApplySelection(comps, s.components, s.exclude);
    matched.insert(here.begin(), here.end());
    auto composed = ComposeManifest(t.previous ? &*t.previous : nullptr, t.deployed, comps);
    if (!composed.ok()) return composed.status().WithContext("target " + t.row.target);
    t.row.composed_manifest_json = ManifestToJson(*composed);
    t.row.composed_manifest_hash = composed->manifest_hash;
    for (const auto& c : comps) out->push_back({t.row.target, c.path, c.type, c.selected});
  }
  for (const auto* list : {&s.components, &s.exclude})
    for (const auto& p : *list)
      if (!matched.count(p))
        return InvalidArgument("field '" +
                               std::string(list == &s.components ? "components" : "exclude") +
                               "': '" + p + "' names no component of this deployment");
  return Status::Ok();
}

std::vector<std::string> TargetsOf(Store& store, const DeploymentRecord& d) {
  std::vector<std::string> out;
  auto rows = store.ListDeploymentTargets(d.id);
  if (rows.ok())
    for (const auto& r : *rows)
      if (r.status == "succeeded") out.push_back(r.target);
  if (!out.empty()) return out;
  size_t start = 0;
  while (start < d.targets_csv.size()) {
    size_t comma = d.targets_csv.find(',', start);
    out.push_back(d.targets_csv.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::optional<Manifest> FindComposedManifest(Store& store, const std::string& target,
                                             const std::string& manifest_hash) {
  if (manifest_hash.empty()) return std::nullopt;
  RollbackRecordFilter f;
  f.statuses = {"executed", "validated", "validation-failed"};
  auto records = store.ListRollbackRecords(f, {1000, 0});
  if (!records.ok()) return std::nullopt;
  for (const auto& r : *records) {
    auto targets = store.ListRollbackRecordTargets(r.id);
    if (!targets.ok()) continue;
    for (const auto& t : *targets) {
      if (t.target != target || t.composed_manifest_hash != manifest_hash) continue;
      auto m = ManifestFromJson(t.composed_manifest_json);
      if (m.ok()) return *m;
    }
  }
  return std::nullopt;
}

RollbackRecords::RollbackRecords(Store& store, AgentPort& agents, BlobStore& blobs,
                                 DeploymentEngine& engine, const Clock& clock, EventBus* events)
    : store_(store),
      agents_(agents),
      blobs_(blobs),
      engine_(engine),
      clock_(clock),
      events_(events) {}

Result<RollbackRecord> RollbackRecords::Reread(const std::string& actor, const std::string& before,
                                               int64_t id) {
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  if (r.status != before) Publish(events_, RollbackRecordEvent(r, r.status, actor, r.error));
  return r;
}

Status RollbackRecords::Audit(const Actor& actor, const std::string& action, int64_t id,
                              const std::string& summary) {
  return store_.AppendAudit({0, ToUnixMillis(clock_.Now()), actor.user, "rollback-record." + action,
                             "rollback-record " + std::to_string(id), summary});
}

Result<RollbackRecord> RollbackRecords::Create(const Actor& actor, int64_t deployment_id,
                                               const RollbackSelection& selection,
                                               const std::string& comment) {
  REPRISE_RETURN_IF_ERROR(CheckSelection(selection));
  REPRISE_ASSIGN_OR_RETURN(DeploymentRecord d, store_.GetDeployment(deployment_id));
  if (d.status != "succeeded")
    return FailedPrecondition("deployment " + std::to_string(d.id) + " is " + d.status +
                              "; only a succeeded deployment can be rolled back in part");
  if (d.kind == "selective-rollback")
    return FailedPrecondition("deployment " + std::to_string(d.id) +
                              " executed a rollback record; create the record from the "
                              "deployment it rolled back, or re-deploy a build");
  REPRISE_RETURN_IF_ERROR(engine_.MayRedeploy(actor, d.application, d.stage));
  std::vector<ResolvedTarget> targets;
  for (const auto& name : TargetsOf(store_, d)) {
    REPRISE_ASSIGN_OR_RETURN(auto t, ResolveTarget(store_, agents_, blobs_, d, name));
    targets.push_back(std::move(t));
  }
  if (targets.empty())
    return FailedPrecondition("deployment " + std::to_string(d.id) + " reached no target");
  std::vector<RollbackComponentRecord> components;
  REPRISE_RETURN_IF_ERROR(SelectAndCompose(targets, selection, &components));
  if (components.empty())
    return FailedPrecondition("deployment " + std::to_string(d.id) +
                              " changed no file on its targets: there is nothing to roll back");
  RollbackRecord r;
  CopyDeploymentIdentity(d, r);
  r.comment = comment;
  r.created_by = actor.user;
  r.created_at = ToUnixMillis(clock_.Now());
  std::vector<RollbackRecordTarget> rows;
  for (auto& t : targets) rows.push_back(std::move(t.row));
  RollbackRecord stored;
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(stored, store_.CreateRollbackRecord(r, rows, components));
    return Audit(actor, "create", stored.id,
                 "of deployment " + std::to_string(d.id) + " (" + Label(d.release, d.build) +
                     " on " + d.stage + "): " + std::to_string(stored.components_selected) +
                     " of " + std::to_string(stored.components_total) + " components selected");
  }));
  Publish(events_, RollbackRecordEvent(stored, stored.status, actor.user, comment));
  return stored;
}

Result<RollbackRecord> RollbackRecords::Reselect(const Actor& actor, int64_t id,
                                                 const RollbackSelection& selection) {
  REPRISE_RETURN_IF_ERROR(CheckSelection(selection));
  REPRISE_ASSIGN_OR_RETURN(RollbackRecord r, store_.GetRollbackRecord(id));
  if (r.status != "draft")
    return FailedPrecondition("rollback record " + std::to_string(id) + " is " + r.status +
                              "; its selection can change only while it is a draft");
  REPRISE_RETURN_IF_ERROR(engine_.MayRedeploy(actor, r.application, r.stage));
  REPRISE_ASSIGN_OR_RETURN(auto rows, store_.ListRollbackRecordTargets(id));
  std::vector<ResolvedTarget> targets;
  for (auto& row : rows) {
    ResolvedTarget t;
    REPRISE_ASSIGN_OR_RETURN(t.deployed, ManifestFromJson(row.manifest_json));
    if (!row.previous_manifest_json.empty()) {
      REPRISE_ASSIGN_OR_RETURN(Manifest ma, ManifestFromJson(row.previous_manifest_json));
      t.previous = std::move(ma);
    }
    t.row = std::move(row);
    targets.push_back(std::move(t));
  }
  std::vector<RollbackComponentRecord> components;
  REPRISE_RETURN_IF_ERROR(SelectAndCompose(targets, selection, &components));
  std::vector<RollbackRecordTarget> composed;
  for (auto& t : targets) composed.push_back(std::move(t.row));
  REPRISE_RETURN_IF_ERROR(store_.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(bool changed, store_.SetRollbackSelection(id, components, composed));
    if (!changed)
      return FailedPrecondition("rollback record " + std::to_string(id) +
                                " is no longer a draft; its selection was not changed");
    int64_t selected = std::count_if(components.begin(), components.end(),
                                     [](const auto& c) { return c.selected; });
    return Audit(actor, "select", id,
                 std::to_string(selected) + " of " + std::to_string(components.size()) +
                     " components selected");
  }));
  return store_.GetRollbackRecord(id);
}

}  // namespace reprise
