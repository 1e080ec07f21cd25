// SqliteStore: the Store on one SQLite file through SQLiteCpp. The only
// SQLiteCpp user: its exceptions are caught here and become Status values.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <functional>
#include <map>
#include <mutex>

#include "common/clock.h"
#include "server/store/migrations.h"
#include "server/store/store.h"

namespace reprise {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kDeployer: return "deployer";
    case Role::kReleaseManager: return "release-manager";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

std::string SealedReason(const BuildRecord& build) {
  if (build.sealed_at != 0)
    return "sealed by " + build.sealed_by + " at " +
           FormatRfc3339Utc(FromUnixMillis(build.sealed_at));
  if (build.first_deployment_id != 0)
    return "deployed in #" + std::to_string(build.first_deployment_id);
  return "";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "deployer") return Role::kDeployer;
  if (name == "release-manager") return Role::kReleaseManager;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

namespace {

int64_t ClampLimit(const Page& p) { return p.limit < 1 ? 1 : (p.limit > 1000 ? 1000 : p.limit); }
int64_t ClampOffset(const Page& p) { return p.offset < 0 ? 0 : p.offset; }

Status FromException(const std::exception& e, std::string_view what) {
  return Internal(std::string("store: ") + std::string(what) + ": " + e.what());
}

bool IsConstraint(const SQLite::Exception& e) {
  return (e.getErrorCode() & 0xff) == SQLITE_CONSTRAINT;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

  int64_t SchemaVersion() override {
    std::lock_guard lock(mu_);
    return db_->execAndGet("PRAGMA user_version").getInt64();
  }

  Status Ping() override {
    return Read("ping", [&] { db_->execAndGet("SELECT 1"); });
  }

  // ---- environments
  Status PutEnvironment(const EnvironmentRecord& env) override {
    return Write("put environment", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO environments(name, variables_json, updated_at) VALUES(?,?,?) "
                          "ON CONFLICT(name) DO UPDATE SET variables_json=excluded.variables_json, "
                          "updated_at=excluded.updated_at");
      q.bind(1, env.name);
      q.bind(2, env.variables_json);
      q.bind(3, env.updated_at);
      q.exec();
      return Status::Ok();
    });
  }
  Result<EnvironmentRecord> GetEnvironment(const std::string& name) override {
    return One<EnvironmentRecord>(
        "SELECT name, variables_json, updated_at FROM environments WHERE name=?",
        [&](SQLite::Statement& q) { q.bind(1, name); }, ReadEnvironment,
        "environment '" + name + "'");
  }
  Result<std::vector<EnvironmentRecord>> ListEnvironments(const Page& page) override {
    return Many<EnvironmentRecord>(
        "SELECT name, variables_json, updated_at FROM environments ORDER BY name LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadEnvironment);
  }

  // ---- targets
  Status PutTarget(const TargetRecord& t) override {
    return Write("put target", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO targets(name, environment, agent, path, variables_json, "
                          "updated_at) VALUES(?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                          "environment=excluded.environment, agent=excluded.agent, "
                          "path=excluded.path, variables_json=excluded.variables_json, "
                          "updated_at=excluded.updated_at");
      q.bind(1, t.name);
      q.bind(2, t.environment);
      q.bind(3, t.agent);
      q.bind(4, t.path);
      q.bind(5, t.variables_json);
      q.bind(6, t.updated_at);
      q.exec();
      return Status::Ok();
    });
  }
  Result<TargetRecord> GetTarget(const std::string& name) override {
    return One<TargetRecord>(
        "SELECT name, environment, agent, path, variables_json, updated_at FROM targets "
        "WHERE name=?",
        [&](SQLite::Statement& q) { q.bind(1, name); }, ReadTarget, "target '" + name + "'");
  }
  Result<std::vector<TargetRecord>> ListTargets(const Page& page) override {
    return Many<TargetRecord>(
        "SELECT name, environment, agent, path, variables_json, updated_at FROM targets "
        "ORDER BY name LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadTarget);
  }

  // ---- agents
  Status PutAgent(const AgentRecord& a) override {
    return Write("put agent", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO agents(name, status, secret_hash, key_fingerprint, "
                          "version, created_at, last_seen, public_key) VALUES(?,?,?,?,?,?,?,?) "
                          "ON CONFLICT(name) DO UPDATE SET status=excluded.status, "
                          "secret_hash=excluded.secret_hash, "
                          "key_fingerprint=excluded.key_fingerprint, version=excluded.version, "
                          "last_seen=excluded.last_seen, public_key=excluded.public_key");
      q.bind(1, a.name);
      q.bind(2, a.status);
      q.bind(3, a.secret_hash);
      q.bind(4, a.key_fingerprint);
      q.bind(5, a.version);
      q.bind(6, a.created_at);
      q.bind(7, a.last_seen);
      q.bind(8, a.public_key);
      q.exec();
      return Status::Ok();
    });
  }
  Result<AgentRecord> GetAgent(const std::string& name) override {
    return One<AgentRecord>(
        "SELECT name, status, secret_hash, key_fingerprint, version, created_at, last_seen, "
        "public_key FROM agents WHERE name=?",
        [&](SQLite::Statement& q) { q.bind(1, name); }, ReadAgent, "agent '" + name + "'");
  }
  Result<std::vector<AgentRecord>> ListAgents(const Page& page) override {
    return Many<AgentRecord>(
        "SELECT name, status, secret_hash, key_fingerprint, version, created_at, last_seen, "
        "public_key FROM agents ORDER BY name LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadAgent);
  }

  Status CreateEnrollToken(const EnrollTokenRecord& t) override {
    return Write("create enroll token", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO enroll_tokens(token_hash, pre_approved, created_by, "
                          "created_at, expires_at, used_by) VALUES(?,?,?,?,?,?)");
      q.bind(1, t.token_hash);
      q.bind(2, t.pre_approved ? 1 : 0);
      q.bind(3, t.created_by);
      q.bind(4, t.created_at);
      q.bind(5, t.expires_at);
      q.bind(6, t.used_by);
      q.exec();
      return Status::Ok();
    });
  }
  Result<EnrollTokenRecord> FindEnrollToken(const std::string& token_hash) override {
    return One<EnrollTokenRecord>(
        "SELECT token_hash, pre_approved, created_by, created_at, expires_at, used_by "
        "FROM enroll_tokens WHERE token_hash=?",
        [&](SQLite::Statement& q) { q.bind(1, token_hash); },
        [](SQLite::Statement& q) {
          return EnrollTokenRecord{q.getColumn(0).getString(), q.getColumn(1).getInt() != 0,
                                   q.getColumn(2).getString(), q.getColumn(3).getInt64(),
                                   q.getColumn(4).getInt64(), q.getColumn(5).getString()};
        },
        "enrollment token");
  }
  Status MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) override {
    return Write("mark enroll token used", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE enroll_tokens SET used_by = CASE WHEN used_by = '' THEN ?1 "
                          "ELSE used_by || ',' || ?1 END WHERE token_hash = ?2");
      q.bind(1, agent);
      q.bind(2, token_hash);
      if (q.exec() == 0) return NotFound("enrollment token not found");
      return Status::Ok();
    });
  }

  // ---- applications
  Result<ApplicationRecord> PutApplication(const ApplicationRecord& app) override {
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
      q.bind(1, app.name);
      q.bind(2, stored.spec_version);
      q.bind(3, app.spec_json);
      q.bind(4, app.spec_text);
      q.bind(5, app.updated_at);
      q.bind(6, app.updated_by);
      q.exec();
      SQLite::Statement h(*db_,
                          "INSERT INTO application_specs(application, version, spec_json, "
                          "spec_text, created_at, created_by) VALUES(?,?,?,?,?,?)");
      h.bind(1, app.name);
      h.bind(2, stored.spec_version);
      h.bind(3, app.spec_json);
      h.bind(4, app.spec_text);
      h.bind(5, app.updated_at);
      h.bind(6, app.updated_by);
      h.exec();
      SQLite::Statement hold(*db_, "SELECT hold_json FROM applications WHERE name=?");
      hold.bind(1, app.name);
      if (hold.executeStep()) stored.hold_json = hold.getColumn(0).getString();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return stored;
  }
  Result<ApplicationRecord> GetApplication(const std::string& name) override {
    return One<ApplicationRecord>(
        "SELECT name, spec_version, spec_json, spec_text, updated_at, updated_by, hold_json "
        "FROM applications WHERE name=?",
        [&](SQLite::Statement& q) { q.bind(1, name); }, ReadApplication,
        "application '" + name + "'");
  }
  Result<std::vector<ApplicationRecord>> ListApplications(const Page& page) override {
    return Many<ApplicationRecord>(
        "SELECT name, spec_version, spec_json, spec_text, updated_at, updated_by, hold_json "
        "FROM applications ORDER BY name LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadApplication);
  }

  // ---- releases
  Status CreateRelease(const ReleaseRecord& r) override {
    return Write("create release", [&] {
      SQLite::Statement exists(*db_,
                               "SELECT 1 FROM releases WHERE application=? AND number=?");
      exists.bind(1, r.application);
      exists.bind(2, r.number);
      if (exists.executeStep())
        return AlreadyExists("release '" + r.number + "' of application '" + r.application +
                             "' already exists");
      SQLite::Statement q(*db_,
                          "INSERT INTO releases(application, number, spec_version, snapshot_json, "
                          "variables_json, created_at, created_by) VALUES(?,?,?,?,?,?,?)");
      q.bind(1, r.application);
      q.bind(2, r.number);
      q.bind(3, r.spec_version);
      q.bind(4, r.snapshot_json);
      q.bind(5, r.variables_json);
      q.bind(6, r.created_at);
      q.bind(7, r.created_by);
      q.exec();
      return Status::Ok();
    });
  }
  Result<ReleaseRecord> GetRelease(const std::string& app, const std::string& number) override {
    return One<ReleaseRecord>(
        "SELECT application, number, spec_version, snapshot_json, variables_json, created_at, "
        "created_by FROM releases WHERE application=? AND number=?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, number);
        },
        ReadRelease, "release '" + number + "' of application '" + app + "'");
  }
  Result<std::vector<ReleaseRecord>> ListReleases(const std::string& app,
                                                 const Page& page) override {
    return Many<ReleaseRecord>(
        "SELECT application, number, spec_version, snapshot_json, variables_json, created_at, "
        "created_by FROM releases WHERE application=? ORDER BY created_at DESC, number DESC "
        "LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          BindPage(q, 2, page);
        },
        ReadRelease);
  }

  // ---- builds
  Result<BuildRecord> CreateBuild(const BuildRecord& b) override {
    BuildRecord stored = b;
    Status st = Write("create build", [&] {
      SQLite::Statement next(*db_,
                             "SELECT COALESCE(MAX(number), 0) + 1 FROM builds "
                             "WHERE application=? AND release=?");
      next.bind(1, b.application);
      next.bind(2, b.release);
      next.executeStep();
      stored.number = next.getColumn(0).getInt64();
      SQLite::Statement q(*db_,
                          "INSERT INTO builds(application, release, number, variables_json, "
                          "created_at, created_by) VALUES(?,?,?,?,?,?)");
      q.bind(1, b.application);
      q.bind(2, b.release);
      q.bind(3, stored.number);
      q.bind(4, b.variables_json);
      q.bind(5, b.created_at);
      q.bind(6, b.created_by);
      q.exec();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return stored;
  }
  Result<BuildRecord> GetBuild(const std::string& app, const std::string& release,
                               int64_t number) override {
    return One<BuildRecord>(
        std::string(kBuildColumns) + " WHERE application=? AND release=? AND number=?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, release);
          q.bind(3, number);
        },
        ReadBuild,
        "build " + std::to_string(number) + " of release '" + release + "' of '" + app + "'");
  }
  Result<std::vector<BuildRecord>> ListBuilds(const std::string& app, const std::string& release,
                                             const Page& page) override {
    return Many<BuildRecord>(
        std::string(kBuildColumns) +
            " WHERE application=? AND release=? ORDER BY number DESC LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, release);
          BindPage(q, 3, page);
        },
        ReadBuild);
  }

  Result<bool> SealBuild(const std::string& app, const std::string& release, int64_t number,
                         int64_t at, const std::string& by) override {
    bool sealed = false;
    Status st = Write("seal build", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE builds SET sealed_at=?, sealed_by=? WHERE application=? AND "
                          "release=? AND number=? AND sealed_at=0");
      q.bind(1, at);
      q.bind(2, by);
      q.bind(3, app);
      q.bind(4, release);
      q.bind(5, number);
      sealed = q.exec() > 0;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    if (sealed) return true;
    auto b = GetBuild(app, release, number);
    if (!b.ok()) return b.status();
    return false;
  }

  // ---- artifacts
  Result<bool> AddArtifact(const ArtifactRecord& a) override {
    bool added = false;
    Status st = Write("add artifact", [&] {
      SQLite::Statement cur(*db_,
                            "SELECT sha256 FROM artifacts WHERE application=? AND release=? AND "
                            "build=? AND name=?");
      cur.bind(1, a.application);
      cur.bind(2, a.release);
      cur.bind(3, a.build);
      cur.bind(4, a.name);
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
      q.bind(1, a.application);
      q.bind(2, a.release);
      q.bind(3, a.build);
      q.bind(4, a.name);
      q.bind(5, a.sha256);
      q.bind(6, a.size);
      q.bind(7, a.file_count);
      q.bind(8, a.manifest_json);
      q.bind(9, a.created_at);
      q.bind(10, a.created_by);
      q.exec();
      added = true;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return added;
  }
  Result<bool> RestoreArtifactBlob(const std::string& app, const std::string& release,
                                   int64_t build, const std::string& name,
                                   const std::string& sha256) override {
    bool restored = false;
    Status st = Write("restore artifact", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE artifacts SET blob_removed_at=0 WHERE application=? AND "
                          "release=? AND build=? AND name=? AND sha256=? AND blob_removed_at!=0");
      q.bind(1, app);
      q.bind(2, release);
      q.bind(3, build);
      q.bind(4, name);
      q.bind(5, sha256);
      restored = q.exec() > 0;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return restored;
  }
  Result<bool> MarkArtifactBlobsRemoved(const std::string& app, const std::string& release,
                                        int64_t build, int64_t at) override {
    bool marked = false;
    Status st = Write("mark artifact blobs removed", [&] {
      SQLite::Statement pending(*db_,
                                "SELECT 1 FROM deployments WHERE application=? AND release=? AND "
                                "build=? AND status IN ('scheduled','waiting','queued','running') "
                                "LIMIT 1");
      pending.bind(1, app);
      pending.bind(2, release);
      pending.bind(3, build);
      if (pending.executeStep()) return Status::Ok();
      SQLite::Statement q(*db_,
                          "UPDATE artifacts SET blob_removed_at=? WHERE application=? AND "
                          "release=? AND build=? AND blob_removed_at=0");
      q.bind(1, at);
      q.bind(2, app);
      q.bind(3, release);
      q.bind(4, build);
      q.exec();
      marked = true;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return marked;
  }
  Result<ArtifactRecord> GetArtifact(const std::string& app, const std::string& release,
                                     int64_t build, const std::string& name) override {
    return One<ArtifactRecord>(
        std::string(kArtifactColumns) +
            " WHERE application=? AND release=? AND build=? AND name=?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, release);
          q.bind(3, build);
          q.bind(4, name);
        },
        ReadArtifact, "artifact '" + name + "' of build " + std::to_string(build));
  }
  Result<std::vector<ArtifactRecord>> ListArtifacts(const std::string& app,
                                                   const std::string& release,
                                                   int64_t build) override {
    return Many<ArtifactRecord>(
        std::string(kArtifactColumns) +
            " WHERE application=? AND release=? AND build=? ORDER BY name",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, release);
          q.bind(3, build);
        },
        ReadArtifact);
  }
  Result<std::vector<std::string>> ReferencedBlobs() override {
    return Many<std::string>(
        "SELECT DISTINCT sha256 FROM artifacts WHERE blob_removed_at=0 ORDER BY sha256",
        [](SQLite::Statement&) {}, [](SQLite::Statement& q) { return q.getColumn(0).getString(); });
  }
  Result<std::vector<ArtifactRecord>> FindArtifactsBySha256(const std::string& sha256) override {
    // artifacts_by_sha serves the lookup.
    return Many<ArtifactRecord>(
        std::string(kArtifactColumns) +
            " WHERE sha256=? ORDER BY created_at, application, release, build, name",
        [&](SQLite::Statement& q) { q.bind(1, sha256); }, ReadArtifact);
  }

  // ---- retention helpers
  Status DeleteArtifacts(const std::string& app, const std::string& release,
                         int64_t build) override {
    return Write("delete artifacts", [&] {
      SQLite::Statement q(*db_,
                          "DELETE FROM artifacts WHERE application=? AND release=? AND build=?");
      q.bind(1, app);
      q.bind(2, release);
      q.bind(3, build);
      q.exec();
      return Status::Ok();
    });
  }
  Result<std::vector<BuildRecord>> ListAllBuilds() override {
    return Many<BuildRecord>(
        std::string(kBuildColumns) + " ORDER BY created_at, application, release, number",
        [](SQLite::Statement&) {}, ReadBuild);
  }

  // ---- deployments
  Result<DeploymentRecord> CreateDeployment(const DeploymentRecord& d) override {
    DeploymentRecord stored = d;
    Status st = Write("create deployment", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO deployments(application, release, build, stage, kind, "
                          "status, scheduled_at, expires_after_ms, forced, context_choice, "
                          "variables_json, comment, requested_by, created_at, targets_csv, "
                          "automatic) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      q.bind(1, d.application);
      q.bind(2, d.release);
      q.bind(3, d.build);
      q.bind(4, d.stage);
      q.bind(5, d.kind);
      q.bind(6, d.status);
      if (d.scheduled_at != 0) q.bind(7, d.scheduled_at); else q.bind(7);
      q.bind(8, d.expires_after_ms);
      q.bind(9, d.forced ? 1 : 0);
      q.bind(10, d.context_choice);
      q.bind(11, d.variables_json);
      q.bind(12, d.comment);
      q.bind(13, d.requested_by);
      q.bind(14, d.created_at);
      q.bind(15, d.targets_csv);
      q.bind(16, d.automatic ? 1 : 0);
      q.exec();
      stored.id = db_->getLastInsertRowid();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return stored;
  }
  Result<DeploymentRecord> GetDeployment(int64_t id) override {
    return One<DeploymentRecord>(std::string(kDeploymentColumns) + " WHERE id=?",
                                 [&](SQLite::Statement& q) { q.bind(1, id); }, ReadDeployment,
                                 "deployment " + std::to_string(id));
  }
  Result<std::vector<DeploymentRecord>> ListDeployments(const DeploymentFilter& f,
                                                       const Page& page) override {
    std::string sql = std::string(kDeploymentColumns) +
                      " WHERE (?1 = '' OR application = ?1) AND (?2 = '' OR stage = ?2) AND "
                      "(?3 = '' OR instr(',' || targets_csv || ',', ',' || ?3 || ',') > 0)";
    if (!f.statuses.empty()) {
      sql += " AND status IN (";
      for (size_t i = 0; i < f.statuses.size(); ++i) sql += i ? ",?" : "?";
      sql += ")";
    }
    sql += f.oldest_first ? " ORDER BY id ASC LIMIT ? OFFSET ?" : " ORDER BY id DESC LIMIT ? OFFSET ?";
    return Many<DeploymentRecord>(
        sql,
        [&](SQLite::Statement& q) {
          q.bind(1, f.application);
          q.bind(2, f.stage);
          q.bind(3, f.target);
          int i = 4;
          for (const auto& st : f.statuses) q.bind(i++, st);
          BindPage(q, i, page);
        },
        ReadDeployment);
  }
  Result<bool> TransitionDeployment(int64_t id, const std::vector<std::string>& from,
                                    const std::string& to, int64_t started_at,
                                    int64_t finished_at, const std::string& error) override {
    bool changed = false;
    Status st = Write("transition deployment", [&] {
      std::string sql =
          "UPDATE deployments SET status=?1, started_at=CASE WHEN ?2 != 0 THEN ?2 ELSE "
          "started_at END, finished_at=CASE WHEN ?3 != 0 THEN ?3 ELSE finished_at END, "
          "error=CASE WHEN ?4 != '' THEN ?4 ELSE error END WHERE id=?5 AND status IN (";
      for (size_t i = 0; i < from.size(); ++i) sql += i ? ",?" : "?";
      sql += ")";
      SQLite::Statement q(*db_, sql);
      q.bind(1, to);
      q.bind(2, started_at);
      q.bind(3, finished_at);
      q.bind(4, error);
      q.bind(5, id);
      int i = 6;
      for (const auto& f : from) q.bind(i++, f);
      changed = q.exec() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return changed;
  }
  Result<std::vector<DeploymentRecord>> DueScheduled(int64_t until, int64_t limit) override {
    return Many<DeploymentRecord>(
        std::string(kDeploymentColumns) +
            " WHERE status='scheduled' AND scheduled_at<=? ORDER BY scheduled_at, id LIMIT ?",
        [&](SQLite::Statement& q) {
          q.bind(1, until);
          q.bind(2, limit);
        },
        ReadDeployment);
  }
  Result<int64_t> NextScheduledAt() override {
    int64_t next = 0;
    Status st = Read("next scheduled", [&] {
      SQLite::Statement q(*db_,
                          "SELECT COALESCE(MIN(scheduled_at), 0) FROM deployments "
                          "WHERE status='scheduled'");
      if (q.executeStep()) next = q.getColumn(0).getInt64();
    });
    if (!st.ok()) return st;
    return next;
  }
  Result<std::vector<int64_t>> FireScheduled(const std::vector<ScheduledFiring>& firings,
                                             int64_t due_by, int64_t now) override {
    std::vector<int64_t> moved;
    if (firings.empty()) return moved;
    Status st = Write("fire scheduled deployments", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE deployments SET status=?1, "
                          "finished_at=CASE WHEN ?2 != 0 THEN ?2 ELSE finished_at END, "
                          "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END "
                          "WHERE id=?4 AND status='scheduled' AND scheduled_at<=?5");
      for (const auto& f : firings) {
        bool final_status = f.to != "queued" && f.to != "waiting";
        q.reset();
        q.bind(1, f.to);
        q.bind(2, final_status ? now : int64_t{0});
        q.bind(3, final_status ? f.error : std::string());
        q.bind(4, f.id);
        q.bind(5, due_by);
        if (q.exec() == 1) moved.push_back(f.id);
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return moved;
  }
  Result<std::vector<int64_t>> TransitionDeployments(const std::vector<int64_t>& ids,
                                                     const std::vector<std::string>& from,
                                                     const std::string& to) override {
    std::vector<int64_t> moved;
    if (ids.empty()) return moved;
    Status st = Write("transition deployments", [&] {
      std::string sql = "UPDATE deployments SET status=? WHERE id=? AND status IN (";
      for (size_t i = 0; i < from.size(); ++i) sql += i ? ",?" : "?";
      sql += ")";
      SQLite::Statement q(*db_, sql);
      for (int64_t id : ids) {
        q.reset();
        q.bind(1, to);
        q.bind(2, id);
        int i = 3;
        for (const auto& f : from) q.bind(i++, f);
        if (q.exec() == 1) moved.push_back(id);
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return moved;
  }
  Result<bool> RescheduleDeployment(int64_t id, int64_t scheduled_at) override {
    bool changed = false;
    Status st = Write("reschedule deployment", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE deployments SET scheduled_at=? WHERE id=? AND "
                          "status='scheduled'");
      q.bind(1, scheduled_at);
      q.bind(2, id);
      changed = q.exec() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return changed;
  }
  Status SetDeploymentContext(int64_t id, const std::string& context_json,
                              const std::string& kind) override {
    return Write("set deployment context", [&] {
      SQLite::Statement q(*db_, "UPDATE deployments SET context_json=?, kind=? WHERE id=?");
      q.bind(1, context_json);
      q.bind(2, kind);
      q.bind(3, id);
      if (q.exec() != 1) return NotFound("deployment " + std::to_string(id) + " not found");
      return Status::Ok();
    });
  }
  Status PutDeploymentTarget(const DeploymentTargetRecord& t) override {
    return Write("put deployment target", [&] {
      PutDeploymentTargets({t});
      return Status::Ok();
    });
  }
  Status StartDeployment(int64_t id, const std::string& context_json, const std::string& kind,
                         const std::vector<DeploymentTargetRecord>& targets) override {
    return Write("start deployment", [&] {
      SQLite::Statement q(*db_, "UPDATE deployments SET context_json=?, kind=? WHERE id=?");
      q.bind(1, context_json);
      q.bind(2, kind);
      q.bind(3, id);
      if (q.exec() != 1) return NotFound("deployment " + std::to_string(id) + " not found");
      PutDeploymentTargets(targets);
      return Status::Ok();
    });
  }
  Result<bool> FinishDeployment(int64_t id, const std::vector<std::string>& from,
                                const std::string& to, int64_t finished_at,
                                const std::string& error,
                                const std::vector<DeploymentTargetRecord>& targets,
                                const std::vector<TargetStateRecord>& target_states,
                                const std::vector<DeploymentLogRecord>& logs,
                                const std::vector<DeploymentLogRecord>& final_logs) override {
    bool moved = false;
    Status st = Write("finish deployment", [&] {
      AppendLogs(logs);
      PutDeploymentTargets(targets);
      for (const auto& t : target_states)
        PutTargetStateRow(t.application, t.stage, t.current, t.release_dir);
      std::string sql =
          "UPDATE deployments SET status=?1, finished_at=?2, "
          "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END WHERE id=?4 AND status IN (";
      for (size_t i = 0; i < from.size(); ++i) sql += i ? ",?" : "?";
      sql += ")";
      SQLite::Statement q(*db_, sql);
      q.bind(1, to);
      q.bind(2, finished_at);
      q.bind(3, error);
      q.bind(4, id);
      int i = 5;
      for (const auto& f : from) q.bind(i++, f);
      moved = q.exec() == 1;
      if (moved) AppendLogs(final_logs);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return moved;
  }
  Result<std::vector<DeploymentTargetRecord>> ListDeploymentTargets(int64_t id) override {
    return Many<DeploymentTargetRecord>(
        "SELECT deployment_id, target, status, message, release_dir, manifest_sha256, "
        "COALESCE(started_at, 0), COALESCE(finished_at, 0) FROM deployment_targets "
        "WHERE deployment_id=? ORDER BY target",
        [&](SQLite::Statement& q) { q.bind(1, id); },
        [](SQLite::Statement& q) {
          return DeploymentTargetRecord{q.getColumn(0).getInt64(),  q.getColumn(1).getString(),
                                        q.getColumn(2).getString(), q.getColumn(3).getString(),
                                        q.getColumn(4).getString(), q.getColumn(5).getString(),
                                        q.getColumn(6).getInt64(),  q.getColumn(7).getInt64()};
        });
  }
  Result<int64_t> AppendDeploymentLog(const DeploymentLogRecord& l) override {
    int64_t seq = 0;
    Status st = Write("append deployment log", [&] {
      SQLite::Statement next(*db_,
                             "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_logs "
                             "WHERE deployment_id=?");
      next.bind(1, l.deployment_id);
      next.executeStep();
      seq = next.getColumn(0).getInt64();
      SQLite::Statement q(*db_,
                          "INSERT INTO deployment_logs(deployment_id, seq, at, target, line, "
                          "level) VALUES(?,?,?,?,?,?)");
      q.bind(1, l.deployment_id);
      q.bind(2, seq);
      q.bind(3, l.at);
      q.bind(4, l.target);
      q.bind(5, l.text);
      q.bind(6, l.level);
      q.exec();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return seq;
  }
  Status AppendDeploymentLogs(const std::vector<DeploymentLogRecord>& lines) override {
    if (lines.empty()) return Status::Ok();
    return Write("append deployment logs", [&] {
      AppendLogs(lines);
      return Status::Ok();
    });
  }
  Result<std::vector<DeploymentLogRecord>> ListDeploymentLog(int64_t id, int64_t after_seq,
                                                            int64_t limit) override {
    return Many<DeploymentLogRecord>(
        "SELECT deployment_id, seq, at, target, level, line FROM deployment_logs "
        "WHERE deployment_id=? AND seq>? ORDER BY seq LIMIT ?",
        [&](SQLite::Statement& q) {
          q.bind(1, id);
          q.bind(2, after_seq);
          q.bind(3, limit);
        },
        [](SQLite::Statement& q) {
          return DeploymentLogRecord{q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                                     q.getColumn(2).getInt64(), q.getColumn(3).getString(),
                                     q.getColumn(4).getString(), q.getColumn(5).getString()};
        });
  }
  Result<ApprovalRecord> AddApproval(const ApprovalRecord& a) override {
    ApprovalRecord stored = a;
    Status st = Write("add approval", [&] {
      SQLite::Statement standing(*db_,
                                 "SELECT decision FROM approvals WHERE deployment_id=? AND "
                                 "user=? AND revoked=0");
      standing.bind(1, a.deployment_id);
      standing.bind(2, a.user);
      if (standing.executeStep()) {
        std::string decision = standing.getColumn(0).getString();
        if (a.decision == "approved" || decision == "rejected")
          return AlreadyExists("'" + a.user + "' has already " + decision + " deployment " +
                               std::to_string(a.deployment_id) +
                               "; one decision per user counts (revoke it first to change it)");
        SQLite::Statement revoke(*db_,
                                 "UPDATE approvals SET revoked=1 WHERE deployment_id=? AND "
                                 "user=? AND revoked=0");
        revoke.bind(1, a.deployment_id);
        revoke.bind(2, a.user);
        revoke.exec();
      }
      SQLite::Statement q(*db_,
                          "INSERT INTO approvals(deployment_id, user, decision, comment, at) "
                          "VALUES(?,?,?,?,?)");
      q.bind(1, a.deployment_id);
      q.bind(2, a.user);
      q.bind(3, a.decision);
      q.bind(4, a.comment);
      q.bind(5, a.at);
      q.exec();
      stored.id = db_->getLastInsertRowid();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return stored;
  }
  Result<std::vector<ApprovalRecord>> ListApprovals(int64_t deployment_id) override {
    return Many<ApprovalRecord>(
        "SELECT id, deployment_id, user, decision, comment, at, revoked FROM approvals "
        "WHERE deployment_id=? ORDER BY id",
        [&](SQLite::Statement& q) { q.bind(1, deployment_id); },
        [](SQLite::Statement& q) {
          return ApprovalRecord{q.getColumn(0).getInt64(),  q.getColumn(1).getInt64(),
                                q.getColumn(2).getString(), q.getColumn(3).getString(),
                                q.getColumn(4).getString(), q.getColumn(5).getInt64(),
                                q.getColumn(6).getInt() != 0};
        });
  }
  Result<int64_t> RevokeApprovals(int64_t deployment_id, const std::string& user) override {
    int64_t n = 0;
    Status st = Write("revoke approvals", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE approvals SET revoked=1 WHERE deployment_id=? AND user=? AND "
                          "revoked=0");
      q.bind(1, deployment_id);
      q.bind(2, user);
      n = q.exec();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return n;
  }
  Result<std::vector<TargetCurrent>> CurrentBuilds(const std::string& app,
                                                  const std::string& stage) override {
    return Many<TargetCurrent>(
        "SELECT target, release, build, deployment_id, at, by FROM target_states "
        "WHERE application=? AND stage=? ORDER BY target",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, stage);
        },
        [](SQLite::Statement& q) {
          return TargetCurrent{q.getColumn(0).getString(), q.getColumn(1).getString(),
                               q.getColumn(2).getInt64(),  q.getColumn(3).getInt64(),
                               q.getColumn(4).getInt64(),  q.getColumn(5).getString()};
        });
  }
  Status PutTargetState(const std::string& app, const std::string& stage, const TargetCurrent& c,
                        const std::string& release_dir) override {
    return Write("put target state", [&] {
      PutTargetStateRow(app, stage, c, release_dir);
      return Status::Ok();
    });
  }
  // Inside a write transaction.
  void PutTargetStateRow(const std::string& app, const std::string& stage, const TargetCurrent& c,
                         const std::string& release_dir) {
    SQLite::Statement q(*db_,
                        "INSERT INTO target_states(target, application, stage, release, build, "
                        "deployment_id, at, by, release_dir) VALUES(?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT(target) DO UPDATE SET application=excluded.application, "
                        "stage=excluded.stage, release=excluded.release, build=excluded.build, "
                        "deployment_id=excluded.deployment_id, at=excluded.at, by=excluded.by, "
                        "release_dir=excluded.release_dir");
    q.bind(1, c.target);
    q.bind(2, app);
    q.bind(3, stage);
    q.bind(4, c.release);
    q.bind(5, c.build);
    q.bind(6, c.deployment_id);
    q.bind(7, c.at);
    q.bind(8, c.by);
    q.bind(9, release_dir);
    q.exec();
  }
  Result<TargetStateRecord> GetTargetState(const std::string& target) override {
    return One<TargetStateRecord>(
        "SELECT application, stage, target, release, build, deployment_id, at, by, release_dir "
        "FROM target_states WHERE target=?",
        [&](SQLite::Statement& q) { q.bind(1, target); },
        [](SQLite::Statement& q) {
          return TargetStateRecord{
              q.getColumn(0).getString(), q.getColumn(1).getString(),
              TargetCurrent{q.getColumn(2).getString(), q.getColumn(3).getString(),
                            q.getColumn(4).getInt64(), q.getColumn(5).getInt64(),
                            q.getColumn(6).getInt64(), q.getColumn(7).getString()},
              q.getColumn(8).getString()};
        },
        "the state of target '" + target + "'");
  }
  Status ClearTargetState(const std::string& target) override {
    return Write("clear target state", [&] {
      SQLite::Statement q(*db_, "DELETE FROM target_states WHERE target=?");
      q.bind(1, target);
      q.exec();
      return Status::Ok();
    });
  }
  Result<std::vector<StageBuild>> SucceededBuilds(const std::string& app, const std::string& stage,
                                                 int64_t limit) override {
    return Many<StageBuild>(
        "SELECT release, build, deployment_id, finished_at, requested_by FROM stage_builds "
        "WHERE application=? AND stage=? ORDER BY finished_at DESC, deployment_id DESC LIMIT ?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, stage);
          q.bind(3, limit);
        },
        [](SQLite::Statement& q) {
          return StageBuild{q.getColumn(0).getString(), q.getColumn(1).getInt64(),
                            q.getColumn(2).getInt64(), q.getColumn(3).getInt64(),
                            q.getColumn(4).getString()};
        });
  }
  Result<DeploymentRecord> LastSuccess(const std::string& app, const std::string& release,
                                       int64_t build, const std::string& stage) override {
    return One<DeploymentRecord>(
        std::string(kDeploymentColumns) +
            " WHERE id = (SELECT deployment_id FROM stage_builds WHERE application=? AND "
            "stage=? AND release=? AND build=?)",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, stage);
          q.bind(3, release);
          q.bind(4, build);
        },
        ReadDeployment, "a successful deployment of that build to stage '" + stage + "'");
  }
  // SQLite's JSON functions edit the one stage's key inside the transaction
  // (json_object quotes any stage name; a merge patch with null removes it).
  Status PlaceHold(const std::string& app, const std::string& stage,
                   const std::string& hold_json) override {
    return Write("place hold", [&] {
      SQLite::Statement q(*db_,
                          "UPDATE applications SET hold_json=json_patch(hold_json, "
                          "json_object(?, json(?))) WHERE name=?");
      q.bind(1, stage);
      q.bind(2, hold_json);
      q.bind(3, app);
      if (q.exec() != 1) return NotFound("application '" + app + "' not found");
      return Status::Ok();
    });
  }

  Result<bool> ClearHold(const std::string& app, const std::string& stage) override {
    bool removed = false;
    Status st = Write("clear hold", [&] {
      SQLite::Statement read(*db_,
                             "SELECT json(hold_json), json_patch(hold_json, json_object(?, "
                             "json('null'))) FROM applications WHERE name=?");
      read.bind(1, stage);
      read.bind(2, app);
      if (!read.executeStep()) return NotFound("application '" + app + "' not found");
      std::string before = read.getColumn(0).getString();
      std::string after = read.getColumn(1).getString();
      if (before == after) return Status::Ok();
      SQLite::Statement q(*db_, "UPDATE applications SET hold_json=? WHERE name=?");
      q.bind(1, after);
      q.bind(2, app);
      q.exec();
      removed = true;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return removed;
  }

  // ---- users and tokens
  Status CreateUser(const UserRecord& u) override {
    return Write("create user", [&] {
      SQLite::Statement exists(*db_, "SELECT 1 FROM users WHERE name=?");
      exists.bind(1, u.name);
      if (exists.executeStep()) return AlreadyExists("user '" + u.name + "' already exists");
      SQLite::Statement q(*db_,
                          "INSERT INTO users(name, role, password_hash, created_at) "
                          "VALUES(?,?,?,?)");
      q.bind(1, u.name);
      q.bind(2, RoleName(u.role));
      q.bind(3, u.password_hash);
      q.bind(4, u.created_at);
      q.exec();
      return Status::Ok();
    });
  }
  Result<UserRecord> GetUser(const std::string& name) override {
    return One<UserRecord>("SELECT name, role, password_hash, created_at FROM users WHERE name=?",
                           [&](SQLite::Statement& q) { q.bind(1, name); }, ReadUser,
                           "user '" + name + "'");
  }
  Result<std::vector<UserRecord>> ListUsers(const Page& page) override {
    return Many<UserRecord>(
        "SELECT name, role, password_hash, created_at FROM users ORDER BY name LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadUser);
  }
  Result<TokenRecord> CreateToken(const TokenRecord& t) override {
    TokenRecord stored = t;
    Status st = Write("create token", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO api_tokens(user, name, token_hash, created_at) "
                          "VALUES(?,?,?,?)");
      q.bind(1, t.user);
      q.bind(2, t.name);
      q.bind(3, t.token_hash);
      q.bind(4, t.created_at);
      q.exec();
      stored.id = db_->getLastInsertRowid();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return stored;
  }
  Result<TokenRecord> FindTokenByHash(const std::string& token_hash) override {
    return One<TokenRecord>(
        "SELECT id, user, name, token_hash, created_at FROM api_tokens WHERE token_hash=?",
        [&](SQLite::Statement& q) { q.bind(1, token_hash); },
        [](SQLite::Statement& q) {
          return TokenRecord{q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                             q.getColumn(2).getString(), q.getColumn(3).getString(),
                             q.getColumn(4).getInt64()};
        },
        "token");
  }

  // ---- grants
  Result<bool> PutGrant(const GrantRecord& g) override {
    bool added = false;
    Status st = Write("put grant", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO grants(environment, user, permission, granted_by, "
                          "granted_at) VALUES(?,?,?,?,?) ON CONFLICT DO NOTHING");
      q.bind(1, g.environment);
      q.bind(2, g.user);
      q.bind(3, g.permission);
      q.bind(4, g.granted_by);
      q.bind(5, g.granted_at);
      added = q.exec() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return added;
  }
  Result<bool> DeleteGrant(const std::string& environment, const std::string& user,
                           const std::string& permission) override {
    bool removed = false;
    Status st = Write("delete grant", [&] {
      SQLite::Statement q(*db_,
                          "DELETE FROM grants WHERE environment=? AND user=? AND permission=?");
      q.bind(1, environment);
      q.bind(2, user);
      q.bind(3, permission);
      removed = q.exec() == 1;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return removed;
  }
  Result<std::vector<GrantRecord>> ListGrants(const std::string& environment) override {
    return Many<GrantRecord>(
        "SELECT environment, user, permission, granted_by, granted_at FROM grants "
        "WHERE environment=? ORDER BY user, permission",
        [&](SQLite::Statement& q) { q.bind(1, environment); },
        [](SQLite::Statement& q) {
          return GrantRecord{q.getColumn(0).getString(), q.getColumn(1).getString(),
                             q.getColumn(2).getString(), q.getColumn(3).getString(),
                             q.getColumn(4).getInt64()};
        });
  }
  Result<bool> HasGrant(const std::string& environment, const std::string& user,
                        const std::string& permission) override {
    bool has = false;
    Status st = Read("has grant", [&] {
      SQLite::Statement q(*db_,
                          "SELECT 1 FROM grants WHERE environment=? AND user=? AND permission=?");
      q.bind(1, environment);
      q.bind(2, user);
      q.bind(3, permission);
      has = q.executeStep();
    });
    if (!st.ok()) return st;
    return has;
  }

  // ---- audit
  Status AppendAudit(const AuditRecord& e) override {
    return Write("append audit", [&] {
      SQLite::Statement q(*db_,
                          "INSERT INTO audit_log(at, actor, action, subject, summary) "
                          "VALUES(?,?,?,?,?)");
      q.bind(1, e.at);
      q.bind(2, e.actor);
      q.bind(3, e.action);
      q.bind(4, e.subject);
      q.bind(5, e.summary);
      q.exec();
      return Status::Ok();
    });
  }
  Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& f, const Page& page) override {
    return Many<AuditRecord>(
        "SELECT id, at, actor, action, subject, summary FROM audit_log "
        "WHERE (?1 = '' OR substr(action, 1, length(?1)) = ?1) AND (?2 = '' OR subject = ?2) "
        "ORDER BY id DESC LIMIT ?3 OFFSET ?4",
        [&](SQLite::Statement& q) {
          q.bind(1, f.action_prefix);
          q.bind(2, f.subject);
          BindPage(q, 3, page);
        },
        [](SQLite::Statement& q) {
          return AuditRecord{q.getColumn(0).getInt64(), q.getColumn(1).getInt64(),
                             q.getColumn(2).getString(), q.getColumn(3).getString(),
                             q.getColumn(4).getString(), q.getColumn(5).getString()};
        });
  }

 private:
  static constexpr const char* kArtifactColumns =
      "SELECT application, release, build, name, sha256, size, file_count, manifest_json, "
      "created_at, created_by, blob_removed_at FROM artifacts";
  static constexpr const char* kBuildColumns =
      "SELECT application, release, number, variables_json, created_at, created_by, sealed_at, "
      "sealed_by, COALESCE((SELECT MIN(d.id) FROM deployments d WHERE d.application="
      "builds.application AND d.release=builds.release AND d.build=builds.number), 0) "
      "FROM builds";

  static constexpr const char* kDeploymentColumns =
      "SELECT id, application, release, build, stage, kind, status, COALESCE(scheduled_at, 0), "
      "expires_after_ms, forced, context_choice, variables_json, comment, requested_by, "
      "created_at, COALESCE(started_at, 0), COALESCE(finished_at, 0), COALESCE(context_json, ''), "
      "error, targets_csv, automatic FROM deployments";

  static DeploymentRecord ReadDeployment(SQLite::Statement& q) {
    DeploymentRecord d;
    d.id = q.getColumn(0).getInt64();
    d.application = q.getColumn(1).getString();
    d.release = q.getColumn(2).getString();
    d.build = q.getColumn(3).getInt64();
    d.stage = q.getColumn(4).getString();
    d.kind = q.getColumn(5).getString();
    d.status = q.getColumn(6).getString();
    d.scheduled_at = q.getColumn(7).getInt64();
    d.expires_after_ms = q.getColumn(8).getInt64();
    d.forced = q.getColumn(9).getInt() != 0;
    d.context_choice = q.getColumn(10).getString();
    d.variables_json = q.getColumn(11).getString();
    d.comment = q.getColumn(12).getString();
    d.requested_by = q.getColumn(13).getString();
    d.created_at = q.getColumn(14).getInt64();
    d.started_at = q.getColumn(15).getInt64();
    d.finished_at = q.getColumn(16).getInt64();
    d.context_json = q.getColumn(17).getString();
    d.error = q.getColumn(18).getString();
    d.targets_csv = q.getColumn(19).getString();
    d.automatic = q.getColumn(20).getInt() != 0;
    return d;
  }

  static void BindPage(SQLite::Statement& q, int index, const Page& page) {
    q.bind(index, ClampLimit(page));
    q.bind(index + 1, ClampOffset(page));
  }

  static EnvironmentRecord ReadEnvironment(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64()};
  }
  static TargetRecord ReadTarget(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64()};
  }
  static AgentRecord ReadAgent(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getInt64(), q.getColumn(7).getString()};
  }
  static ApplicationRecord ReadApplication(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getInt64(), q.getColumn(5).getString(),
            q.getColumn(6).getString()};
  }
  static ReleaseRecord ReadRelease(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getString()};
  }
  static BuildRecord ReadBuild(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getInt64(),  q.getColumn(5).getString(),
            q.getColumn(6).getInt64(),  q.getColumn(7).getString(), q.getColumn(8).getInt64()};
  }
  static ArtifactRecord ReadArtifact(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getInt64(),  q.getColumn(7).getString(), q.getColumn(8).getInt64(),
            q.getColumn(9).getString(), q.getColumn(10).getInt64()};
  }
  static UserRecord ReadUser(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), ParseRole(q.getColumn(1).getString()).value_or(Role::kViewer),
            q.getColumn(2).getString(), q.getColumn(3).getInt64()};
  }

  // Inside a write transaction: appends lines, numbering each deployment's
  // lines on from its last one.
  void AppendLogs(const std::vector<DeploymentLogRecord>& lines) {
    if (lines.empty()) return;
    std::map<int64_t, int64_t> next;
    SQLite::Statement last(*db_,
                           "SELECT COALESCE(MAX(seq), 0) FROM deployment_logs "
                           "WHERE deployment_id=?");
    SQLite::Statement q(*db_,
                        "INSERT INTO deployment_logs(deployment_id, seq, at, target, line, "
                        "level) VALUES(?,?,?,?,?,?)");
    for (const auto& l : lines) {
      auto it = next.find(l.deployment_id);
      if (it == next.end()) {
        last.reset();
        last.bind(1, l.deployment_id);
        last.executeStep();
        it = next.emplace(l.deployment_id, last.getColumn(0).getInt64()).first;
      }
      q.reset();
      q.bind(1, l.deployment_id);
      q.bind(2, ++it->second);
      q.bind(3, l.at);
      q.bind(4, l.target);
      q.bind(5, l.text);
      q.bind(6, l.level);
      q.exec();
    }
  }

  // Inside a write transaction.
  void PutDeploymentTargets(const std::vector<DeploymentTargetRecord>& targets) {
    if (targets.empty()) return;
    SQLite::Statement q(*db_,
                        "INSERT INTO deployment_targets(deployment_id, target, status, message, "
                        "release_dir, manifest_sha256, started_at, finished_at) "
                        "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(deployment_id, target) DO UPDATE "
                        "SET status=excluded.status, message=excluded.message, "
                        "release_dir=excluded.release_dir, "
                        "manifest_sha256=excluded.manifest_sha256, "
                        "started_at=excluded.started_at, finished_at=excluded.finished_at");
    for (const auto& t : targets) {
      q.reset();
      q.clearBindings();
      q.bind(1, t.deployment_id);
      q.bind(2, t.target);
      q.bind(3, t.status);
      q.bind(4, t.message);
      q.bind(5, t.release_dir);
      q.bind(6, t.manifest_sha256);
      if (t.started_at)
        q.bind(7, t.started_at);
      else
        q.bind(7);
      if (t.finished_at)
        q.bind(8, t.finished_at);
      else
        q.bind(8);
      q.exec();
    }
  }

  Status Atomically(const std::function<Status()>& body) override {
    return Write("atomic change", body);
  }

  // Runs `body` in one IMMEDIATE transaction; commits when it returns OK.
  // Inside another Write (Atomically) on this thread it is a savepoint of
  // that transaction instead: undone alone when it fails.
  Status Write(std::string_view what, const std::function<Status()>& body) {
    std::lock_guard lock(mu_);
    const bool nested = write_depth_ > 0;
    auto undo = [&] {
      try {
        if (nested) {
          db_->exec("ROLLBACK TO nested_write");
          db_->exec("RELEASE nested_write");
        } else {
          db_->exec("ROLLBACK");
        }
      } catch (const std::exception&) {
        // Nested: the outer transaction is rolled back when the error
        // reaches it. Outermost: SQLite has rolled back already.
      }
    };
    bool begun = false;
    try {
      db_->exec(nested ? "SAVEPOINT nested_write" : "BEGIN IMMEDIATE");
      begun = true;
      Status st;
      {
        ++write_depth_;
        struct Leave {
          int& depth;
          ~Leave() { --depth; }
        } leave{write_depth_};
        st = body();
      }
      if (!st.ok()) {
        undo();
        return st;
      }
      db_->exec(nested ? "RELEASE nested_write" : "COMMIT");
      return Status::Ok();
    } catch (const SQLite::Exception& e) {
      if (begun) undo();
      if (IsConstraint(e)) return Conflict(std::string(what) + ": " + e.what());
      return FromException(e, what);
    } catch (const std::exception& e) {
      if (begun) undo();
      return FromException(e, what);
    }
  }

  Status Read(std::string_view what, const std::function<void()>& body) {
    std::lock_guard lock(mu_);
    try {
      body();
      return Status::Ok();
    } catch (const std::exception& e) {
      return FromException(e, what);
    }
  }

  template <typename T, typename Bind, typename Row>
  Result<T> One(const std::string& sql, Bind bind, Row row, const std::string& what) {
    std::optional<T> out;
    Status st = Read(what, [&] {
      SQLite::Statement q(*db_, sql);
      bind(q);
      if (q.executeStep()) out = row(q);
    });
    if (!st.ok()) return st;
    if (!out) return NotFound(what + " not found");
    return std::move(*out);
  }

  template <typename T, typename Bind, typename Row>
  Result<std::vector<T>> Many(const std::string& sql, Bind bind, Row row) {
    std::vector<T> out;
    Status st = Read("list", [&] {
      SQLite::Statement q(*db_, sql);
      bind(q);
      while (q.executeStep()) out.push_back(row(q));
    });
    if (!st.ok()) return st;
    return out;
  }

  // Recursive: a call inside Atomically() runs on the thread holding it.
  std::recursive_mutex mu_;
  int write_depth_ = 0;  // guarded by mu_
  std::unique_ptr<SQLite::Database> db_;
};

Status Migrate(SQLite::Database& db) {
  const auto& migrations = SqliteMigrations();
  int64_t version = db.execAndGet("PRAGMA user_version").getInt64();
  if (version > static_cast<int64_t>(migrations.size()))
    return FailedPrecondition("database schema version " + std::to_string(version) +
                              " is newer than this server knows (" +
                              std::to_string(migrations.size()) + ")");
  for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    db.exec(std::string(migrations[i]));
    db.exec("PRAGMA user_version = " + std::to_string(i + 1));
    tx.commit();
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        options.path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
        options.busy_timeout_ms);
    db->exec("PRAGMA journal_mode=WAL");
    // FULL: a committed transaction survives power loss; deployments depend on it.
    db->exec("PRAGMA synchronous=FULL");
    db->exec("PRAGMA foreign_keys=ON");
    REPRISE_RETURN_IF_ERROR(Migrate(*db));
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
  } catch (const std::exception& e) {
    return IoError("cannot open store " + options.path + ": " + e.what());
  }
}

}  // namespace reprise
