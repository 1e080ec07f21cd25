// SqlStore, catalog aggregate: environments, targets, applications,
// releases, builds and artifacts.
#include "common/clock.h"
#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {
constexpr const char* kEnvironmentColumns =
    "SELECT name, variables_json, updated_at FROM environments";
constexpr const char* kTargetColumns =
    "SELECT name, environment, agent, path, variables_json, updated_at FROM targets";
constexpr const char* kApplicationColumns =
    "SELECT name, spec_version, spec_json, spec_text, updated_at, updated_by, hold_json "
    "FROM applications";
constexpr const char* kReleaseColumns =
    "SELECT application, number, spec_version, snapshot_json, variables_json, created_at, "
    "created_by, notes, links_json FROM releases";
constexpr const char* kBuildColumns =
    "SELECT application, release, number, variables_json, created_at, created_by, sealed_at, "
    "sealed_by, COALESCE((SELECT MIN(d.id) FROM deployments d WHERE d.application="
    "builds.application AND d.release=builds.release AND d.build=builds.number), 0), "
    "notes, links_json FROM builds";
constexpr const char* kArtifactColumns =
    "SELECT application, release, build, name, sha256, size, file_count, manifest_json, "
    "created_at, created_by, blob_removed_at FROM artifacts";

// Each reads its table's columns above, in order.
using Env = EnvironmentRecord;
constexpr auto ReadEnvironment = ReadFields<&Env::name, &Env::variables_json, &Env::updated_at>;
using Tgt = TargetRecord;
constexpr auto ReadTarget = ReadFields<&Tgt::name, &Tgt::environment, &Tgt::agent, &Tgt::path,
                                       &Tgt::variables_json, &Tgt::updated_at>;
using App = ApplicationRecord;
constexpr auto ReadApplication =
    ReadFields<&App::name, &App::spec_version, &App::spec_json, &App::spec_text, &App::updated_at,
               &App::updated_by, &App::hold_json>;
using Rel = ReleaseRecord;
constexpr auto ReadRelease = ReadFields<&Rel::application, &Rel::number, &Rel::spec_version,
                                        &Rel::snapshot_json, &Rel::variables_json, &Rel::created_at,
                                        &Rel::created_by, &Rel::notes, &Rel::links_json>;
using Bld = BuildRecord;
constexpr auto ReadBuild =
    ReadFields<&Bld::application, &Bld::release, &Bld::number, &Bld::variables_json,
               &Bld::created_at, &Bld::created_by, &Bld::sealed_at, &Bld::sealed_by,
               &Bld::first_deployment_id, &Bld::notes, &Bld::links_json>;
using Art = ArtifactRecord;
constexpr auto ReadArtifact =
    ReadFields<&Art::application, &Art::release, &Art::build, &Art::name, &Art::sha256, &Art::size,
               &Art::file_count, &Art::manifest_json, &Art::created_at, &Art::created_by,
               &Art::blob_removed_at>;
using Glob = GlobalVariablesRecord;
constexpr auto ReadGlobals =
    ReadFields<&Glob::variables_json, &Glob::updated_at, &Glob::updated_by>;
}  // namespace

std::string SealedReason(const BuildRecord& build) {
  if (build.sealed_at != 0)
    return "sealed by " + build.sealed_by + " at " +
           FormatRfc3339Utc(FromUnixMillis(build.sealed_at));
  if (build.first_deployment_id != 0)
    return "deployed in #" + std::to_string(build.first_deployment_id);
  return "";
}

Status SqlStore::PutEnvironment(const EnvironmentRecord& env) {
  return Execute("put environment",
                 UpsertSql("environments", "name", {"name", "variables_json", "updated_at"}),
                 env.name, env.variables_json, env.updated_at);
}

Result<EnvironmentRecord> SqlStore::GetEnvironment(const std::string& name) {
  return GetByName(kEnvironmentColumns, ReadEnvironment, "environment", name);
}

Result<std::vector<EnvironmentRecord>> SqlStore::ListEnvironments(const Page& page) {
  return ListByName(kEnvironmentColumns, ReadEnvironment, page);
}

Status SqlStore::PutGlobalVariables(const GlobalVariablesRecord& g) {
  return Execute(
      "put global variables",
      UpsertSql("global_variables", "id", {"id", "variables_json", "updated_at", "updated_by"}), 1,
      g.variables_json, g.updated_at, g.updated_by);
}

Result<GlobalVariablesRecord> SqlStore::GetGlobalVariables() {
  auto g = SelectOne("global variables",
                     "SELECT variables_json, updated_at, updated_by FROM global_variables "
                     "WHERE id=1",
                     ReadGlobals);
  if (!g.ok() && g.status().code() == Code::kNotFound) return GlobalVariablesRecord{};
  return g;
}

Status SqlStore::PutTarget(const TargetRecord& t) {
  return Execute(
      "put target",
      UpsertSql("targets", "name",
                {"name", "environment", "agent", "path", "variables_json", "updated_at"}),
      t.name, t.environment, t.agent, t.path, t.variables_json, t.updated_at);
}

Result<TargetRecord> SqlStore::GetTarget(const std::string& name) {
  return GetByName(kTargetColumns, ReadTarget, "target", name);
}

Result<std::vector<TargetRecord>> SqlStore::ListTargets(const Page& page) {
  return ListByName(kTargetColumns, ReadTarget, page);
}

Result<ApplicationRecord> SqlStore::PutApplication(const ApplicationRecord& app) {
  return WriteValue("put application", app, [&](ApplicationRecord& stored) {
    stored.spec_version =
        FirstRow("SELECT spec_version FROM applications WHERE name=?", ReadInt64, app.name)
            .value_or(0) +
        1;
    Exec(UpsertSql("applications", "name",
                   {"name", "spec_version", "spec_json", "spec_text", "updated_at", "updated_by"}),
         app.name, stored.spec_version, app.spec_json, app.spec_text, app.updated_at,
         app.updated_by);
    Exec(
        "INSERT INTO application_specs(application, version, spec_json, "
        "spec_text, created_at, created_by) VALUES(?,?,?,?,?,?)",
        app.name, stored.spec_version, app.spec_json, app.spec_text, app.updated_at,
        app.updated_by);
    auto hold = HoldJson(app.name);
    if (hold.ok()) stored.hold_json = *hold;
    return Status::Ok();
  });
}

Result<ApplicationRecord> SqlStore::GetApplication(const std::string& name) {
  return GetByName(kApplicationColumns, ReadApplication, "application", name);
}

Result<std::vector<ApplicationRecord>> SqlStore::ListApplications(const Page& page) {
  return ListByName(kApplicationColumns, ReadApplication, page);
}

Status SqlStore::CreateRelease(const ReleaseRecord& r) {
  return InsertNew(
      "create release",
      InsertSql("releases", {"application", "number", "spec_version", "snapshot_json",
                             "variables_json", "created_at", "created_by", "notes", "links_json"}),
      "release '" + r.number + "' of application '" + r.application + "'", r.application, r.number,
      r.spec_version, r.snapshot_json, r.variables_json, r.created_at, r.created_by, r.notes,
      r.links_json);
}

Result<ReleaseRecord> SqlStore::GetRelease(const std::string& app, const std::string& number) {
  return SelectOne("release '" + number + "' of application '" + app + "'",
                   std::string(kReleaseColumns) + " WHERE application=? AND number=?", ReadRelease,
                   app, number);
}

Result<std::vector<ReleaseRecord>> SqlStore::ListReleases(const std::string& app,
                                                          const Page& page) {
  return SelectAll(std::string(kReleaseColumns) +
                       " WHERE application=? ORDER BY created_at DESC, number DESC "
                       "LIMIT ? OFFSET ?",
                   ReadRelease, app, ClampLimit(page), ClampOffset(page));
}

Result<BuildRecord> SqlStore::CreateBuild(const BuildRecord& b) {
  return WriteValue("create build", b, [&](BuildRecord& stored) {
    stored.number = FirstRow(
                        "SELECT COALESCE(MAX(number), 0) + 1 FROM builds "
                        "WHERE application=? AND release=?",
                        ReadInt64, b.application, b.release)
                        .value_or(1);
    Exec(
        "INSERT INTO builds(application, release, number, variables_json, "
        "created_at, created_by, notes, links_json) VALUES(?,?,?,?,?,?,?,?)",
        b.application, b.release, stored.number, b.variables_json, b.created_at, b.created_by,
        b.notes, b.links_json);
    return Status::Ok();
  });
}

Result<BuildRecord> SqlStore::GetBuild(const std::string& app, const std::string& release,
                                       int64_t number) {
  return SelectOne(
      "build " + std::to_string(number) + " of release '" + release + "' of '" + app + "'",
      std::string(kBuildColumns) + " WHERE application=? AND release=? AND number=?", ReadBuild,
      app, release, number);
}

Result<std::vector<BuildRecord>> SqlStore::ListBuilds(const std::string& app,
                                                      const std::string& release,
                                                      const Page& page) {
  return SelectAll(std::string(kBuildColumns) +
                       " WHERE application=? AND release=? ORDER BY number DESC LIMIT ? OFFSET ?",
                   ReadBuild, app, release, ClampLimit(page), ClampOffset(page));
}

Result<bool> SqlStore::SealBuild(const std::string& app, const std::string& release, int64_t number,
                                 int64_t at, const std::string& by) {
  auto sealed = Changed("seal build",
                        "UPDATE builds SET sealed_at=?, sealed_by=? WHERE application=? AND "
                        "release=? AND number=? AND sealed_at=0",
                        at, by, app, release, number);
  if (!sealed.ok() || *sealed) return sealed;
  auto b = GetBuild(app, release, number);
  if (!b.ok()) return b.status();
  return false;
}

Result<bool> SqlStore::AddArtifact(const ArtifactRecord& a) {
  return WriteValue("add artifact", false, [&](bool& added) {
    auto existing = FirstRow(
        "SELECT sha256 FROM artifacts WHERE application=? AND release=? AND build=? AND name=?",
        ReadText, a.application, a.release, a.build, a.name);
    if (existing) {
      if (*existing != a.sha256)
        return Conflict("artifact '" + a.name + "' of build " + std::to_string(a.build) +
                        " already exists with sha256 " + *existing + "; artifacts are immutable");
      return Status::Ok();
    }
    // In the same transaction as the insert: a deployment requested
    // concurrently commits wholly before (sealed) or after (it deploys this).
    auto build = GetBuild(a.application, a.release, a.build);
    if (!build.ok()) return build.status();
    if (build->sealed())
      return FailedPrecondition("build " + a.release + " #" + std::to_string(a.build) +
                                " is sealed: " + SealedReason(*build));
    Exec(
        "INSERT INTO artifacts(application, release, build, name, sha256, size, "
        "file_count, manifest_json, created_at, created_by) "
        "VALUES(?,?,?,?,?,?,?,?,?,?)",
        a.application, a.release, a.build, a.name, a.sha256, a.size, a.file_count, a.manifest_json,
        a.created_at, a.created_by);
    added = true;
    return Status::Ok();
  });
}

Result<bool> SqlStore::RestoreArtifactBlob(const std::string& app, const std::string& release,
                                           int64_t build, const std::string& name,
                                           const std::string& sha256) {
  return Changed("restore artifact",
                 "UPDATE artifacts SET blob_removed_at=0 WHERE application=? AND release=? AND "
                 "build=? AND name=? AND sha256=? AND blob_removed_at<>0",
                 app, release, build, name, sha256);
}

Result<bool> SqlStore::MarkArtifactBlobsRemoved(const std::string& app, const std::string& release,
                                                int64_t build, int64_t at) {
  return WriteValue("mark artifact blobs removed", false, [&](bool& marked) {
    if (Exists("SELECT 1 FROM deployments WHERE application=? AND release=? AND build=? AND "
               "status IN ('scheduled','waiting','queued','running') LIMIT 1",
               app, release, build))
      return Status::Ok();
    Exec(
        "UPDATE artifacts SET blob_removed_at=? WHERE application=? AND "
        "release=? AND build=? AND blob_removed_at=0",
        at, app, release, build);
    marked = true;
    return Status::Ok();
  });
}

Result<ArtifactRecord> SqlStore::GetArtifact(const std::string& app, const std::string& release,
                                             int64_t build, const std::string& name) {
  return SelectOne(
      "artifact '" + name + "' of build " + std::to_string(build),
      std::string(kArtifactColumns) + " WHERE application=? AND release=? AND build=? AND name=?",
      ReadArtifact, app, release, build, name);
}

Result<std::vector<ArtifactRecord>> SqlStore::ListArtifacts(const std::string& app,
                                                            const std::string& release,
                                                            int64_t build) {
  return SelectAll(std::string(kArtifactColumns) +
                       " WHERE application=? AND release=? AND build=? ORDER BY name",
                   ReadArtifact, app, release, build);
}

Result<std::vector<std::string>> SqlStore::ReferencedBlobs() {
  return SelectAll("SELECT DISTINCT sha256 FROM artifacts WHERE blob_removed_at=0 ORDER BY sha256",
                   ReadText);
}

Result<std::vector<ArtifactRecord>> SqlStore::FindArtifactsBySha256(const std::string& sha256) {
  // artifacts_by_sha serves the lookup.
  return SelectAll(std::string(kArtifactColumns) +
                       " WHERE sha256=? ORDER BY created_at, application, release, build, name",
                   ReadArtifact, sha256);
}

Status SqlStore::DeleteArtifacts(const std::string& app, const std::string& release,
                                 int64_t build) {
  return Execute("delete artifacts",
                 "DELETE FROM artifacts WHERE application=? AND release=? AND build=?", app,
                 release, build);
}

Result<std::vector<BuildRecord>> SqlStore::ListAllBuilds() {
  return SelectAll(
      std::string(kBuildColumns) + " ORDER BY created_at, application, release, number", ReadBuild);
}

}  // namespace reprise
