// SqliteStore, user aggregate: users, API tokens and environment grants.
#include "common/enum_names.h"
#include "server/store/sqlite_store_internal.h"

namespace reprise {

namespace {
// clang-format off
constexpr EnumName<Role> kRoleNames[] = {
    {Role::kViewer, "viewer"}, {Role::kDeployer, "deployer"},
    {Role::kReleaseManager, "release-manager"}, {Role::kAdmin, "admin"},
};
// clang-format on
}  // namespace

// The names are string literals, so data() is NUL-terminated.
const char* RoleName(Role role) { return NameOf(kRoleNames, role, "viewer").data(); }

std::optional<Role> ParseRole(std::string_view name) { return ValueOf(kRoleNames, name); }

Status SqliteStore::CreateUser(const UserRecord& u) {
  return Write("create user", [&] {
    SQLite::Statement exists(*db_, "SELECT 1 FROM users WHERE name=?");
    exists.bind(1, u.name);
    if (exists.executeStep()) return AlreadyExists("user '" + u.name + "' already exists");
    SQLite::Statement q(*db_,
                        "INSERT INTO users(name, role, password_hash, created_at) "
                        "VALUES(?,?,?,?)");
    SQLite::bind(q, u.name, RoleName(u.role), u.password_hash, u.created_at);
    q.exec();
    return Status::Ok();
  });
}

namespace {
constexpr const char* kUserColumns =
    "SELECT name, role, password_hash, created_at, disabled FROM users";
constexpr const char* kTokenColumns =
    "SELECT id, user, name, token_hash, created_at, expires_at, last_used_at FROM api_tokens";

TokenRecord ReadToken(SQLite::Statement& q) {
  return TokenRecord{q.getColumn(0).getInt64(),  q.getColumn(1).getString(),
                     q.getColumn(2).getString(), q.getColumn(3).getString(),
                     q.getColumn(4).getInt64(),  q.getColumn(5).getInt64(),
                     q.getColumn(6).getInt64()};
}
}  // namespace

Result<UserRecord> SqliteStore::GetUser(const std::string& name) {
  return One<UserRecord>(
      std::string(kUserColumns) + " WHERE name=?", [&](SQLite::Statement& q) { q.bind(1, name); },
      ReadUser, "user '" + name + "'");
}

Result<std::vector<UserRecord>> SqliteStore::ListUsers(const Page& page) {
  return Many<UserRecord>(
      std::string(kUserColumns) + " ORDER BY name LIMIT ? OFFSET ?",
      [&](SQLite::Statement& q) { BindPage(q, 1, page); }, ReadUser);
}

Status SqliteStore::UpdateUser(const UserRecord& u) {
  return Write("update user", [&] {
    SQLite::Statement q(*db_, "UPDATE users SET role=?, password_hash=?, disabled=? WHERE name=?");
    SQLite::bind(q, RoleName(u.role), u.password_hash, u.disabled ? 1 : 0, u.name);
    if (q.exec() == 0) return NotFound("user '" + u.name + "' not found");
    return Status::Ok();
  });
}

Result<TokenRecord> SqliteStore::CreateToken(const TokenRecord& t) {
  TokenRecord stored = t;
  Status st = Write("create token", [&] {
    SQLite::Statement q(*db_,
                        "INSERT INTO api_tokens(user, name, token_hash, created_at, expires_at) "
                        "VALUES(?,?,?,?,?)");
    SQLite::bind(q, t.user, t.name, t.token_hash, t.created_at, t.expires_at);
    q.exec();
    stored.id = db_->getLastInsertRowid();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return stored;
}

Result<TokenRecord> SqliteStore::FindTokenByHash(const std::string& token_hash) {
  return One<TokenRecord>(
      std::string(kTokenColumns) + " WHERE token_hash=?",
      [&](SQLite::Statement& q) { q.bind(1, token_hash); }, ReadToken, "token");
}

Result<std::vector<TokenRecord>> SqliteStore::ListTokens(const std::string& user) {
  return Many<TokenRecord>(
      std::string(kTokenColumns) + " WHERE user=? ORDER BY id",
      [&](SQLite::Statement& q) { q.bind(1, user); }, ReadToken);
}

Result<bool> SqliteStore::DeleteToken(const std::string& user, int64_t id) {
  bool removed = false;
  Status st = Write("delete token", [&] {
    SQLite::Statement q(*db_, "DELETE FROM api_tokens WHERE user=? AND id=?");
    SQLite::bind(q, user, id);
    removed = q.exec() == 1;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return removed;
}

Status SqliteStore::TouchToken(int64_t id, int64_t at, int64_t min_interval_ms) {
  return Execute("touch token",
                 "UPDATE api_tokens SET last_used_at=?1 WHERE id=?2 AND last_used_at <= ?1 - ?3",
                 at, id, min_interval_ms);
}

Result<bool> SqliteStore::PutGrant(const GrantRecord& g) {
  bool added = false;
  Status st = Write("put grant", [&] {
    SQLite::Statement q(*db_,
                        "INSERT INTO grants(environment, user, permission, granted_by, "
                        "granted_at) VALUES(?,?,?,?,?) ON CONFLICT DO NOTHING");
    SQLite::bind(q, g.environment, g.user, g.permission, g.granted_by, g.granted_at);
    added = q.exec() == 1;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return added;
}

Result<bool> SqliteStore::DeleteGrant(const std::string& environment, const std::string& user,
                                      const std::string& permission) {
  bool removed = false;
  Status st = Write("delete grant", [&] {
    SQLite::Statement q(*db_, "DELETE FROM grants WHERE environment=? AND user=? AND permission=?");
    SQLite::bind(q, environment, user, permission);
    removed = q.exec() == 1;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return removed;
}

Result<std::vector<GrantRecord>> SqliteStore::ListGrants(const std::string& environment) {
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

Result<bool> SqliteStore::HasGrant(const std::string& environment, const std::string& user,
                                   const std::string& permission) {
  bool has = false;
  Status st = Read("has grant", [&] {
    SQLite::Statement q(*db_,
                        "SELECT 1 FROM grants WHERE environment=? AND user=? AND permission=?");
    SQLite::bind(q, environment, user, permission);
    has = q.executeStep();
  });
  if (!st.ok()) return st;
  return has;
}

}  // namespace reprise
