// UserStore: the user aggregate of the store: users and their roles, API
// tokens, and per-environment grants.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

enum class Role { kViewer = 0, kDeployer = 1, kReleaseManager = 2, kAdmin = 3 };
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct UserRecord {
  std::string name;
  Role role = Role::kViewer;
  std::string password_hash;  // empty: no password login
  int64_t created_at = 0;
  bool disabled = false;  // a disabled user's sessions and tokens are refused
};

struct TokenRecord {
  int64_t id = 0;
  std::string user;
  std::string name;
  std::string token_hash;  // SHA-256 of the token; the token itself is never stored
  int64_t created_at = 0;
  int64_t expires_at = 0;    // 0: never
  int64_t last_used_at = 0;  // 0: never used; kept to the minute (see TouchToken)
};

// A permission held by one user on one environment beside their role.
struct GrantRecord {
  std::string environment;
  std::string user;
  std::string permission;  // redeploy
  std::string granted_by;
  int64_t granted_at = 0;
};

class UserStore {
 public:
  virtual ~UserStore() = default;

  virtual Status CreateUser(const UserRecord& user) = 0;
  virtual Result<UserRecord> GetUser(const std::string& name) = 0;
  virtual Result<std::vector<UserRecord>> ListUsers(const Page& page) = 0;
  // Replaces the role, the disabled flag and the password hash; kNotFound
  // when the user does not exist.
  virtual Status UpdateUser(const UserRecord& user) = 0;

  virtual Result<TokenRecord> CreateToken(const TokenRecord& token) = 0;
  // Looks a token up by its hash; kNotFound when unknown.
  virtual Result<TokenRecord> FindTokenByHash(const std::string& token_hash) = 0;
  // A user's tokens, oldest first.
  virtual Result<std::vector<TokenRecord>> ListTokens(const std::string& user) = 0;
  // Returns true when removed, false when the user has no token with that id.
  virtual Result<bool> DeleteToken(const std::string& user, int64_t id) = 0;
  // Records a use of the token at `at` unless one was recorded after
  // `at - min_interval_ms` (so authentication writes at most that often).
  virtual Status TouchToken(int64_t id, int64_t at, int64_t min_interval_ms) = 0;

  // Returns true when added, false when the user held it already.
  virtual Result<bool> PutGrant(const GrantRecord& grant) = 0;
  // Returns true when removed, false when the user did not hold it.
  virtual Result<bool> DeleteGrant(const std::string& environment, const std::string& user,
                                   const std::string& permission) = 0;
  // By user, then permission.
  virtual Result<std::vector<GrantRecord>> ListGrants(const std::string& environment) = 0;
  virtual Result<bool> HasGrant(const std::string& environment, const std::string& user,
                                const std::string& permission) = 0;
};

}  // namespace reprise
