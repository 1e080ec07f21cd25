// SqliteStore: the Store on one SQLite file through SQLiteCpp. The only
// SQLiteCpp user: its exceptions are caught here and become Status values.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <functional>
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
        "SELECT application, release, number, variables_json, created_at, created_by FROM builds "
        "WHERE application=? AND release=? AND number=?",
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
        "SELECT application, release, number, variables_json, created_at, created_by FROM builds "
        "WHERE application=? AND release=? ORDER BY number DESC LIMIT ? OFFSET ?",
        [&](SQLite::Statement& q) {
          q.bind(1, app);
          q.bind(2, release);
          BindPage(q, 3, page);
        },
        ReadBuild);
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
        "SELECT DISTINCT sha256 FROM artifacts ORDER BY sha256", [](SQLite::Statement&) {},
        [](SQLite::Statement& q) { return q.getColumn(0).getString(); });
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
      "created_at, created_by FROM artifacts";

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
            q.getColumn(3).getString(), q.getColumn(4).getInt64(), q.getColumn(5).getString()};
  }
  static ArtifactRecord ReadArtifact(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getInt64(), q.getColumn(7).getString(), q.getColumn(8).getInt64(),
            q.getColumn(9).getString()};
  }
  static UserRecord ReadUser(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), ParseRole(q.getColumn(1).getString()).value_or(Role::kViewer),
            q.getColumn(2).getString(), q.getColumn(3).getInt64()};
  }

  // Runs `body` in one IMMEDIATE transaction; commits when it returns OK.
  Status Write(std::string_view what, const std::function<Status()>& body) {
    std::lock_guard lock(mu_);
    try {
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      Status st = body();
      if (!st.ok()) return st;  // rolled back by the destructor
      tx.commit();
      return Status::Ok();
    } catch (const SQLite::Exception& e) {
      if (IsConstraint(e)) return Conflict(std::string(what) + ": " + e.what());
      return FromException(e, what);
    } catch (const std::exception& e) {
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

  std::mutex mu_;
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
