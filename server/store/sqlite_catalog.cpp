// SqliteStore, catalog aggregate: environments, targets, applications,
// releases, builds and artifacts.
#include "common/clock.h"
#include "server/store/sqlite_store_internal.h"

namespace reprise {

std::string SealedReason(const BuildRecord& build) {
  if (build.sealed_at != 0)
    return "sealed by " + build.sealed_by + " at " +
           FormatRfc3339Utc(FromUnixMillis(build.sealed_at));
  if (build.first_deployment_id != 0)
    return "deployed in #" + std::to_string(build.first_deployment_id);
  return "";
}

Status SqliteStore::PutEnvironment(const EnvironmentRecord& env) {
  return Execute(
      "put environment",
      "INSERT INTO environments(name, variables_json, updated_at) VALUES(?,?,?) ON CONFLICT(name) "
      "DO UPDATE SET variables_json=excluded.variables_json, updated_at=excluded.updated_at",
      env.name, env.variables_json, env.updated_at);
}

Result<EnvironmentRecord> SqliteStore::GetEnvironment(const std::string& name) {
  return One<EnvironmentRecord>(
      "SELECT name, variables_json, updated_at FROM environments WHERE name=?",
      [&](SQLite::Statement& q) { q.bind(1, name); }, ReadEnvironment,
      "environment '" + name + "'");
}

Result<std::vector<EnvironmentRecord>> SqliteStore::ListEnvironments(const Page& page) {
  return Many<EnvironmentRecord>(
      "SELECT name, variables_json, updated_at FROM environments ORDER BY name LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadEnvironment);
}

Status SqliteStore::PutTarget(const TargetRecord& t) {
  return Execute("put target",
                 "INSERT INTO targets(name, environment, agent, path, variables_json, updated_at) "
                 "VALUES(?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                 "environment=excluded.environment, agent=excluded.agent, path=excluded.path, "
                 "variables_json=excluded.variables_json, updated_at=excluded.updated_at",
                 t.name, t.environment, t.agent, t.path, t.variables_json, t.updated_at);
}

Result<TargetRecord> SqliteStore::GetTarget(const std::string& name) {
  return One<TargetRecord>(
      "SELECT name, environment, agent, path, variables_json, updated_at FROM targets "
      "WHERE name=?",
      [&](SQLite::Statement& q) { q.bind(1, name); }, ReadTarget, "target '" + name + "'");
}

Result<std::vector<TargetRecord>> SqliteStore::ListTargets(const Page& page) {
  return Many<TargetRecord>(
      "SELECT name, environment, agent, path, variables_json, updated_at FROM targets "
      "ORDER BY name LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadTarget);
}

Result<ApplicationRecord> SqliteStore::PutApplication(const ApplicationRecord& app) {
  ApplicationRecord stored = app;
  Status st = Write("put application", [&] {
    SQLite::Statement cur(*db_, "SELECT spec_version FROM applications WHERE name=?");
    cur.bind(1, app.name);
    stored.spec_version = cur.executeStep() ? cur.getColumn(0).getInt64() + 1 : 1;
    SQLite::Statement q(*db_,
                        "INSERT INTO applications(name, spec_version, spec_json, spec_text, "
                        "updated_at, updated_by) VALUES(?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE "
                        "SET spec_version=excluded.spec_version, spec_json=excluded.spec_json, "
                        "spec_text=excluded.spec_text, updated_at=excluded.updated_at, "
                        "updated_by=excluded.updated_by");
    SQLite::bind(q, app.name, stored.spec_version, app.spec_json, app.spec_text, app.updated_at,
                 app.updated_by);
    q.exec();
    SQLite::Statement h(*db_,
                        "INSERT INTO application_specs(application, version, spec_json, "
                        "spec_text, created_at, created_by) VALUES(?,?,?,?,?,?)");
    SQLite::bind(h, app.name, stored.spec_version, app.spec_json, app.spec_text, app.updated_at,
                 app.updated_by);
    h.exec();
    SQLite::Statement hold(*db_, "SELECT hold_json FROM applications WHERE name=?");
    hold.bind(1, app.name);
    if (hold.executeStep()) stored.hold_json = hold.getColumn(0).getString();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return stored;
}

Result<ApplicationRecord> SqliteStore::GetApplication(const std::string& name) {
  return One<ApplicationRecord>(
      "SELECT name, spec_version, spec_json, spec_text, updated_at, updated_by, hold_json "
      "FROM applications WHERE name=?",
      [&](SQLite::Statement& q) { q.bind(1, name); }, ReadApplication,
      "application '" + name + "'");
}

Result<std::vector<ApplicationRecord>> SqliteStore::ListApplications(const Page& page) {
  return Many<ApplicationRecord>(
      "SELECT name, spec_version, spec_json, spec_text, updated_at, updated_by, hold_json "
      "FROM applications ORDER BY name LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadApplication);
}

Status SqliteStore::CreateRelease(const ReleaseRecord& r) {
  return Write("create release", [&] {
    SQLite::Statement exists(*db_, "SELECT 1 FROM releases WHERE application=? AND number=?");
    SQLite::bind(exists, r.application, r.number);
    if (exists.executeStep())
      return AlreadyExists("release '" + r.number + "' of application '" + r.application +
                           "' already exists");
    SQLite::Statement q(*db_,
                        "INSERT INTO releases(application, number, spec_version, snapshot_json, "
                        "variables_json, created_at, created_by, notes, links_json) "
                        "VALUES(?,?,?,?,?,?,?,?,?)");
    SQLite::bind(q, r.application, r.number, r.spec_version, r.snapshot_json, r.variables_json,
                 r.created_at, r.created_by, r.notes, r.links_json);
    q.exec();
    return Status::Ok();
  });
}

Result<ReleaseRecord> SqliteStore::GetRelease(const std::string& app, const std::string& number) {
  return One<ReleaseRecord>(
      "SELECT application, number, spec_version, snapshot_json, variables_json, created_at, "
      "created_by, notes, links_json FROM releases WHERE application=? AND number=?",
      [&](SQLite::Statement& q) { SQLite::bind(q, app, number); }, ReadRelease,
      "release '" + number + "' of application '" + app + "'");
}

Result<std::vector<ReleaseRecord>> SqliteStore::ListReleases(const std::string& app,
                                                             const Page& page) {
  return Many<ReleaseRecord>(
      "SELECT application, number, spec_version, snapshot_json, variables_json, created_at, "
      "created_by, notes, links_json FROM releases WHERE application=? ORDER BY created_at DESC, number DESC "
      "LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) {
        q.bind(1, app);
        BindPage(q, 2, page);
      },
      ReadRelease);
}

Result<BuildRecord> SqliteStore::CreateBuild(const BuildRecord& b) {
  BuildRecord stored = b;
  Status st = Write("create build", [&] {
    SQLite::Statement next(*db_,
                           "SELECT COALESCE(MAX(number), 0) + 1 FROM builds "
                           "WHERE application=? AND release=?");
    SQLite::bind(next, b.application, b.release);
    next.executeStep();
    stored.number = next.getColumn(0).getInt64();
    SQLite::Statement q(*db_,
                        "INSERT INTO builds(application, release, number, variables_json, "
                        "created_at, created_by, notes, links_json) VALUES(?,?,?,?,?,?,?,?)");
    SQLite::bind(q, b.application, b.release, stored.number, b.variables_json, b.created_at,
                 b.created_by, b.notes, b.links_json);
    q.exec();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return stored;
}

Result<BuildRecord> SqliteStore::GetBuild(const std::string& app, const std::string& release,
                                          int64_t number) {
  return One<BuildRecord>(
      std::string(kBuildColumns) + " WHERE application=? AND release=? AND number=?",
      [&](SQLite::Statement& q) { SQLite::bind(q, app, release, number); }, ReadBuild,
      "build " + std::to_string(number) + " of release '" + release + "' of '" + app + "'");
}

Result<std::vector<BuildRecord>> SqliteStore::ListBuilds(const std::string& app,
                                                         const std::string& release,
                                                         const Page& page) {
  return Many<BuildRecord>(
      std::string(kBuildColumns) +
          " WHERE application=? AND release=? ORDER BY number DESC LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) {
        SQLite::bind(q, app, release);
        BindPage(q, 3, page);
      },
      ReadBuild);
}

Result<bool> SqliteStore::SealBuild(const std::string& app, const std::string& release,
                                    int64_t number, int64_t at, const std::string& by) {
  bool sealed = false;
  Status st = Write("seal build", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE builds SET sealed_at=?, sealed_by=? WHERE application=? AND "
                        "release=? AND number=? AND sealed_at=0");
    SQLite::bind(q, at, by, app, release, number);
    sealed = q.exec() > 0;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  if (sealed) return true;
  auto b = GetBuild(app, release, number);
  if (!b.ok()) return b.status();
  return false;
}

Result<bool> SqliteStore::AddArtifact(const ArtifactRecord& a) {
  bool added = false;
  Status st = Write("add artifact", [&] {
    SQLite::Statement cur(*db_,
                          "SELECT sha256 FROM artifacts WHERE application=? AND release=? AND "
                          "build=? AND name=?");
    SQLite::bind(cur, a.application, a.release, a.build, a.name);
    if (cur.executeStep()) {
      if (cur.getColumn(0).getString() != a.sha256)
        return Conflict("artifact '" + a.name + "' of build " + std::to_string(a.build) +
                        " already exists with sha256 " + cur.getColumn(0).getString() +
                        "; artifacts are immutable");
      return Status::Ok();
    }
    // In the same transaction as the insert: a deployment requested
    // concurrently commits wholly before (sealed) or after (it deploys this).
    auto build = GetBuild(a.application, a.release, a.build);
    if (!build.ok()) return build.status();
    if (build->sealed())
      return FailedPrecondition("build " + a.release + " #" + std::to_string(a.build) +
                                " is sealed: " + SealedReason(*build));
    SQLite::Statement q(*db_,
                        "INSERT INTO artifacts(application, release, build, name, sha256, size, "
                        "file_count, manifest_json, created_at, created_by) "
                        "VALUES(?,?,?,?,?,?,?,?,?,?)");
    SQLite::bind(q, a.application, a.release, a.build, a.name, a.sha256, a.size, a.file_count,
                 a.manifest_json, a.created_at, a.created_by);
    q.exec();
    added = true;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return added;
}

Result<bool> SqliteStore::RestoreArtifactBlob(const std::string& app, const std::string& release,
                                              int64_t build, const std::string& name,
                                              const std::string& sha256) {
  bool restored = false;
  Status st = Write("restore artifact", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE artifacts SET blob_removed_at=0 WHERE application=? AND "
                        "release=? AND build=? AND name=? AND sha256=? AND blob_removed_at!=0");
    SQLite::bind(q, app, release, build, name, sha256);
    restored = q.exec() > 0;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return restored;
}

Result<bool> SqliteStore::MarkArtifactBlobsRemoved(const std::string& app,
                                                   const std::string& release, int64_t build,
                                                   int64_t at) {
  bool marked = false;
  Status st = Write("mark artifact blobs removed", [&] {
    SQLite::Statement pending(*db_,
                              "SELECT 1 FROM deployments WHERE application=? AND release=? AND "
                              "build=? AND status IN ('scheduled','waiting','queued','running') "
                              "LIMIT 1");
    SQLite::bind(pending, app, release, build);
    if (pending.executeStep()) return Status::Ok();
    SQLite::Statement q(*db_,
                        "UPDATE artifacts SET blob_removed_at=? WHERE application=? AND "
                        "release=? AND build=? AND blob_removed_at=0");
    SQLite::bind(q, at, app, release, build);
    q.exec();
    marked = true;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return marked;
}

Result<ArtifactRecord> SqliteStore::GetArtifact(const std::string& app, const std::string& release,
                                                int64_t build, const std::string& name) {
  return One<ArtifactRecord>(
      std::string(kArtifactColumns) + " WHERE application=? AND release=? AND build=? AND name=?",
      [&](SQLite::Statement& q) { SQLite::bind(q, app, release, build, name); }, ReadArtifact,
      "artifact '" + name + "' of build " + std::to_string(build));
}

Result<std::vector<ArtifactRecord>> SqliteStore::ListArtifacts(const std::string& app,
                                                               const std::string& release,
                                                               int64_t build) {
  return Many<ArtifactRecord>(
      std::string(kArtifactColumns) +
          " WHERE application=? AND release=? AND build=? ORDER BY name",
      [&](SQLite::Statement& q) { SQLite::bind(q, app, release, build); }, ReadArtifact);
}

Result<std::vector<std::string>> SqliteStore::ReferencedBlobs() {
  return Many<std::string>(
      "SELECT DISTINCT sha256 FROM artifacts WHERE blob_removed_at=0 ORDER BY sha256",
      [](SQLite::Statement&) {}, [](SQLite::Statement& q) { return q.getColumn(0).getString(); });
}

Result<std::vector<ArtifactRecord>> SqliteStore::FindArtifactsBySha256(const std::string& sha256) {
  // artifacts_by_sha serves the lookup.
  return Many<ArtifactRecord>(
      std::string(kArtifactColumns) +
          " WHERE sha256=? ORDER BY created_at, application, release, build, name",
      [&](SQLite::Statement& q) { q.bind(1, sha256); }, ReadArtifact);
}

Status SqliteStore::DeleteArtifacts(const std::string& app, const std::string& release,
                                    int64_t build) {
  return Execute("delete artifacts",
                 "DELETE FROM artifacts WHERE application=? AND release=? AND build=?", app,
                 release, build);
}

Result<std::vector<BuildRecord>> SqliteStore::ListAllBuilds() {
  return Many<BuildRecord>(
      std::string(kBuildColumns) + " ORDER BY created_at, application, release, number",
      [](SQLite::Statement&) {}, ReadBuild);
}

}  // namespace reprise
