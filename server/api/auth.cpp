#include "server/api/auth.h"

#include <sys/stat.h>

#include "common/crypto.h"
#include "common/fs.h"

namespace reprise {

Result<Principal> AuthenticateBearer(Store& store, const Clock& clock, const HttpRequest& request) {
  auto header = request.Header("authorization");
  if (!header) return Unauthenticated("missing Authorization header (expected 'Bearer <token>')");
  constexpr std::string_view kPrefix = "Bearer ";
  if (header->size() <= kPrefix.size() || header->compare(0, kPrefix.size(), kPrefix) != 0)
    return Unauthenticated("Authorization header must be 'Bearer <token>'");
  std::string token = header->substr(kPrefix.size());
  auto found = store.FindTokenByHash(Sha256Hex(token));
  if (!found.ok()) {
    if (found.status().code() == Code::kNotFound) return Unauthenticated("invalid token");
    return found.status();
  }
  const int64_t now = ToUnixMillis(clock.Now());
  if (found->expires_at != 0 && now >= found->expires_at)
    return Unauthenticated("this token expired at " +
                           FormatRfc3339Utc(FromUnixMillis(found->expires_at)));
  auto user = store.GetUser(found->user);
  if (!user.ok()) return Unauthenticated("invalid token");
  if (user->disabled) return Unauthenticated("the user '" + user->name + "' is disabled");
  // Written at most once a minute (most requests stay reads); best effort:
  // a failed write must not refuse a valid token.
  if (now - found->last_used_at >= kTokenTouchIntervalMs)
    (void)store.TouchToken(found->id, now, kTokenTouchIntervalMs);
  return Principal{user->name, user->role, false};
}

Result<std::string> IssueToken(Store& store, const Clock& clock, const std::string& user,
                               const std::string& token_name, int64_t expires_at,
                               TokenRecord* record) {
  std::string token = "rpr_" + RandomHex(32);
  TokenRecord rec;
  rec.user = user;
  rec.name = token_name;
  rec.token_hash = Sha256Hex(token);
  rec.created_at = ToUnixMillis(clock.Now());
  rec.expires_at = expires_at;
  auto created = store.CreateToken(rec);
  if (!created.ok()) return created.status();
  if (record != nullptr) *record = *created;
  return token;
}

namespace {

Status EnsureTokenFor(Store& store, const Clock& clock, const std::string& token) {
  std::string hash = Sha256Hex(token);
  auto existing = store.FindTokenByHash(hash);
  if (existing.ok()) {
    if (existing->user != "admin") return Conflict("the bootstrap token belongs to another user");
    return Status::Ok();
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  TokenRecord rec{0, "admin", "bootstrap", hash, ToUnixMillis(clock.Now())};
  auto created = store.CreateToken(rec);
  return created.ok() ? Status::Ok() : created.status();
}

}  // namespace

Result<BootstrapResult> EnsureBootstrapAdmin(Store& store, const Clock& clock,
                                             const std::filesystem::path& data_dir,
                                             const std::string& env_token,
                                             const std::string& env_password) {
  BootstrapResult result;
  auto admin = store.GetUser("admin");
  if (!admin.ok()) {
    if (admin.status().code() != Code::kNotFound) return admin.status();
    std::string password = env_password;
    if (password.empty()) {
      password = RandomHex(12);
      result.password_file = data_dir / "admin.password";
      REPRISE_RETURN_IF_ERROR(WriteFileAtomic(result.password_file, password + "\n", 0600));
    } else if (password.size() < 8) {
      return InvalidArgument("REPRISE_ADMIN_PASSWORD must be at least 8 characters");
    }
    UserRecord u{"admin", Role::kAdmin, HashPassword(password), ToUnixMillis(clock.Now())};
    Status st = store.CreateUser(u);
    if (!st.ok() && st.code() != Code::kAlreadyExists) return st;
  } else if (std::filesystem::exists(data_dir / "admin.password")) {
    result.password_file = data_dir / "admin.password";
  }
  if (!env_token.empty()) {
    if (env_token.size() < 16)
      return InvalidArgument("REPRISE_ADMIN_TOKEN must be at least 16 characters");
    REPRISE_RETURN_IF_ERROR(EnsureTokenFor(store, clock, env_token));
    return result;
  }
  result.token_file = data_dir / "admin.token";
  std::error_code ec;
  if (std::filesystem::exists(result.token_file, ec)) {
    auto text = ReadFileToString(result.token_file);
    if (!text.ok()) return text.status();
    std::string token = *text;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    ::chmod(result.token_file.c_str(), 0600);
    REPRISE_RETURN_IF_ERROR(EnsureTokenFor(store, clock, token));
    return result;
  }
  std::string token = "rpr_" + RandomHex(32);
  REPRISE_RETURN_IF_ERROR(EnsureTokenFor(store, clock, token));
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(result.token_file, token + "\n", 0600));
  result.created_token = true;
  return result;
}

}  // namespace reprise
