// SqlStore, user aggregate: users, API tokens and environment grants.
#include "common/enum_names.h"
#include "server/store/sql_store_internal.h"

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
    "SELECT id, \"user\", name, token_hash, created_at, expires_at, last_used_at FROM api_tokens";

using Usr = UserRecord;
constexpr auto ReadUser =
    ReadFields<&Usr::name, &Usr::role, &Usr::password_hash, &Usr::created_at, &Usr::disabled>;
using Tok = TokenRecord;
constexpr auto ReadToken = ReadFields<&Tok::id, &Tok::user, &Tok::name, &Tok::token_hash,
                                      &Tok::created_at, &Tok::expires_at, &Tok::last_used_at>;
using Grt = GrantRecord;
constexpr auto ReadGrant =
    ReadFields<&Grt::environment, &Grt::user, &Grt::permission, &Grt::granted_by, &Grt::granted_at>;

}  // namespace

// The names are string literals, so data() is NUL-terminated.
const char* RoleName(Role role) { return NameOf(kRoleNames, role, "viewer").data(); }

std::optional<Role> ParseRole(std::string_view name) { return ValueOf(kRoleNames, name); }

void ReadColumn(const SqlRow& row, int column, Role& field) {
  field = ParseRole(row.Text(column)).value_or(Role::kViewer);
}

Status SqlStore::CreateUser(const UserRecord& u) {
  return InsertNew(
      "create user", InsertSql("users", {"name", "role", "password_hash", "created_at"}),
      "user '" + u.name + "'", u.name, RoleName(u.role), u.password_hash, u.created_at);
}

Result<UserRecord> SqlStore::GetUser(const std::string& name) {
  return GetByName(kUserColumns, ReadUser, "user", name);
}

Result<std::vector<UserRecord>> SqlStore::ListUsers(const Page& page) {
  return ListByName(kUserColumns, ReadUser, page);
}

Status SqlStore::UpdateUser(const UserRecord& u) {
  return Write("update user", [&] {
    if (Exec("UPDATE users SET role=?, password_hash=?, disabled=? WHERE name=?", RoleName(u.role),
             u.password_hash, u.disabled, u.name) == 0)
      return NotFound("user '" + u.name + "' not found");
    return Status::Ok();
  });
}

Result<TokenRecord> SqlStore::CreateToken(const TokenRecord& t) {
  return WriteValue("create token", t, [&](TokenRecord& stored) {
    stored.id = InsertId(
        InsertSql("api_tokens", {"\"user\"", "name", "token_hash", "created_at", "expires_at"}),
        t.user, t.name, t.token_hash, t.created_at, t.expires_at);
    return Status::Ok();
  });
}

Result<TokenRecord> SqlStore::FindTokenByHash(const std::string& token_hash) {
  return SelectOne("token", std::string(kTokenColumns) + " WHERE token_hash=?", ReadToken,
                   token_hash);
}

Result<std::vector<TokenRecord>> SqlStore::ListTokens(const std::string& user) {
  return SelectAll(std::string(kTokenColumns) + " WHERE \"user\"=? ORDER BY id", ReadToken, user);
}

Result<bool> SqlStore::DeleteToken(const std::string& user, int64_t id) {
  return Changed("delete token", "DELETE FROM api_tokens WHERE \"user\"=? AND id=?", user, id);
}

Status SqlStore::TouchToken(int64_t id, int64_t at, int64_t min_interval_ms) {
  return Execute("touch token",
                 "UPDATE api_tokens SET last_used_at=?1 WHERE id=?2 AND last_used_at <= ?1 - ?3",
                 at, id, min_interval_ms);
}

Result<bool> SqlStore::PutGrant(const GrantRecord& g) {
  return Changed(
      "put grant",
      InsertSql("grants", {"environment", "\"user\"", "permission", "granted_by", "granted_at"}) +
          " ON CONFLICT DO NOTHING",
      g.environment, g.user, g.permission, g.granted_by, g.granted_at);
}

Result<bool> SqlStore::DeleteGrant(const std::string& environment, const std::string& user,
                                   const std::string& permission) {
  return Changed("delete grant",
                 "DELETE FROM grants WHERE environment=? AND \"user\"=? AND permission=?",
                 environment, user, permission);
}

Result<std::vector<GrantRecord>> SqlStore::ListGrants(const std::string& environment) {
  return SelectAll(
      "SELECT environment, \"user\", permission, granted_by, granted_at FROM grants "
      "WHERE environment=? ORDER BY \"user\", permission",
      ReadGrant, environment);
}

Result<bool> SqlStore::HasGrant(const std::string& environment, const std::string& user,
                                const std::string& permission) {
  bool has = false;
  Status st = Read("has grant", [&] {
    has = Exists("SELECT 1 FROM grants WHERE environment=? AND \"user\"=? AND permission=?",
                 environment, user, permission);
  });
  if (!st.ok()) return st;
  return has;
}

}  // namespace reprise
