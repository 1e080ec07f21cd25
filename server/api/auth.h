// Authentication for the API: Bearer tokens (hash looked up in the store)
// and the bootstrap admin token. Thread-safe (the store is).
#pragma once

#include <filesystem>
#include <string>

#include "common/clock.h"
#include "server/http/http_types.h"
#include "server/store/store.h"

namespace reprise {

// A token's last use is written at most this often (authentication stays a read).
inline constexpr int64_t kTokenTouchIntervalMs = 60 * 1000;

// "Bearer <token>" -> the token's user and role; kUnauthenticated otherwise,
// also for an expired token and for a disabled user. Records the token's use
// (at most once per kTokenTouchIntervalMs).
Result<Principal> AuthenticateBearer(Store& store, const Clock& clock, const HttpRequest& request);

// Creates a token for `user`: 256 random bits, returned once; only its hash
// is stored. `expires_at` (Unix ms) 0: never expires. `record` (optional)
// receives what was stored.
Result<std::string> IssueToken(Store& store, const Clock& clock, const std::string& user,
                               const std::string& token_name, int64_t expires_at = 0,
                               TokenRecord* record = nullptr);

struct BootstrapResult {
  std::filesystem::path token_file;  // empty when the token came from the environment
  bool created_token = false;
  // The admin's password for the web UI: REPRISE_ADMIN_PASSWORD when set, else
  // generated on first start into DATA/admin.password (mode 0600).
  std::filesystem::path password_file;
};

// Ensures the user "admin" exists and that a bootstrap admin token works:
// `env_token` (REPRISE_ADMIN_TOKEN) when non-empty, else the token in
// DATA/admin.token, generated (mode 0600) on first start.
Result<BootstrapResult> EnsureBootstrapAdmin(Store& store, const Clock& clock,
                                             const std::filesystem::path& data_dir,
                                             const std::string& env_token,
                                             const std::string& env_password = "");

}  // namespace reprise
