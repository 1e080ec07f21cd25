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

constexpr const char* kUserColumns =
    "SELECT name, role, password_hash, created_at, disabled FROM users";
constexpr const char* kTokenColumns =
    "SELECT id, user, name, token_hash, created_at, expires_at, last_used_at FROM api_tokens";

TokenRecord ReadToken(SQLite::Statement& q) {
  TokenRecord t;
  ReadColumns(q, t.id, t.user, t.name, t.token_hash, t.created_at, t.expires_at, t.last_used_at);
  return t;
}

GrantRecord ReadGrant(SQLite::Statement& q) {
  GrantRecord g;
  ReadColumns(q, g.environment, g.user, g.permission, g.granted_by, g.granted_at);
  return g;
}

}  // namespace

// The names are string literals, so data() is NUL-terminated.
const char* RoleName(Role role) { return NameOf(kRoleNames, role, "viewer").data(); }

std::optional<Role> ParseRole(std::string_view name) { return ValueOf(kRoleNames, name); }

Status SqliteStore::CreateUser(const UserRecord& u) {
  return Write("create user", [&] {
    if (Exists("SELECT 1 FROM users WHERE name=?", u.name))
      return AlreadyExists("user '" + u.name + "' already exists");
    Exec(
        "INSERT INTO users(name, role, password_hash, created_at) "
        "VALUES(?,?,?,?)",
        u.name, RoleName(u.role), u.password_hash, u.created_at);
    return Status::Ok();
  });
}

Result<UserRecord> SqliteStore::GetUser(const std::string& name) {
  return GetByName(kUserColumns, ReadUser, "user", name);
}

Result<std::vector<UserRecord>> SqliteStore::ListUsers(const Page& page) {
  return ListByName(kUserColumns, ReadUser, page);
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
  return WriteValue("create token", t, [&](TokenRecord& stored) {
    Exec(
        "INSERT INTO api_tokens(user, name, token_hash, created_at, expires_at) "
        "VALUES(?,?,?,?,?)",
        t.user, t.name, t.token_hash, t.created_at, t.expires_at);
    stored.id = db_->getLastInsertRowid();
    return Status::Ok();
  });
}

Result<TokenRecord> SqliteStore::FindTokenByHash(const std::string& token_hash) {
  return SelectOne("token", std::string(kTokenColumns) + " WHERE token_hash=?", ReadToken,
                   token_hash);
}

Result<std::vector<TokenRecord>> SqliteStore::ListTokens(const std::string& user) {
  return SelectAll(std::string(kTokenColumns) + " WHERE user=? ORDER BY id", ReadToken, user);
}

Result<bool> SqliteStore::DeleteToken(const std::string& user, int64_t id) {
  return Changed("delete token", "DELETE FROM api_tokens WHERE user=? AND id=?", user, id);
}

Status SqliteStore::TouchToken(int64_t id, int64_t at, int64_t min_interval_ms) {
  return Execute("touch token",
                 "UPDATE api_tokens SET last_used_at=?1 WHERE id=?2 AND last_used_at <= ?1 - ?3",
                 at, id, min_interval_ms);
}

Result<bool> SqliteStore::PutGrant(const GrantRecord& g) {
  return Changed("put grant",
                 "INSERT INTO grants(environment, user, permission, granted_by, granted_at) "
                 "VALUES(?,?,?,?,?) ON CONFLICT DO NOTHING",
                 g.environment, g.user, g.permission, g.granted_by, g.granted_at);
}

Result<bool> SqliteStore::DeleteGrant(const std::string& environment, const std::string& user,
                                      const std::string& permission) {
  return Changed("delete grant",
                 "DELETE FROM grants WHERE environment=? AND user=? AND permission=?", environment,
                 user, permission);
}

Result<std::vector<GrantRecord>> SqliteStore::ListGrants(const std::string& environment) {
  return SelectAll(
      "SELECT environment, user, permission, granted_by, granted_at FROM grants "
      "WHERE environment=? ORDER BY user, permission",
      ReadGrant, environment);
}

Result<bool> SqliteStore::HasGrant(const std::string& environment, const std::string& user,
                                   const std::string& permission) {
  bool has = false;
  Status st = Read("has grant", [&] {
    has = Exists("SELECT 1 FROM grants WHERE environment=? AND user=? AND permission=?",
                 environment, user, permission);
  });
  if (!st.ok()) return st;
  return has;
}

}  // namespace reprise
