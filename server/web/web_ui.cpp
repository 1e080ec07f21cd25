#include "server/web/web_ui.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "common/crypto.h"
#include "common/embedded.h"

namespace reprise {

const EmbeddedFile* WebFiles(size_t* count);

namespace {

using nlohmann::json;
using std::chrono::hours;
using std::chrono::minutes;

constexpr const char* kCookieName = "reprise_session";

// POST /api/v1/session's body: the document's schema and the key check.
const RequestBody& LoginBody() {
  static const RequestBody body{
      "login",
      {{"user", "string", true, "the user name"}, {"password", "string", true, "the password"}}};
  return body;
}
constexpr auto kIdleTimeout = hours(12);
constexpr auto kMaxLifetime = hours(24 * 7);
constexpr int kMaxFailures = 5;
constexpr auto kFailureWindow = minutes(15);
constexpr auto kLockout = minutes(5);
constexpr size_t kMaxSessions = 10000;
constexpr const char* kBadLogin = "invalid user name or password";

// No inline scripts or styles, nothing from elsewhere, never framed.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'";

struct Asset {
  std::string path;  // "/index.html"
  std::string content_type;
  std::string etag;
  const EmbeddedFile* file = nullptr;
};

struct Session {
  std::string user;
  std::string csrf_token;
  TimePoint created;
  TimePoint last_seen;
};

struct Failures {
  int count = 0;
  TimePoint first;
  TimePoint locked_until;
};

std::string ContentTypeFor(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json") || ends(".webmanifest")) return "application/json";
  if (ends(".txt") || ends(".md")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

void AddSecurityHeaders(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy", kCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  r.headers.emplace_back("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r = HttpResponse::Json(status, body.dump());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  return JsonResponse(status, json{{"error", {{"code", code}, {"message", message}}}});
}

HttpResponse ErrorFrom(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument:
      return ErrorResponse(400, "invalid_argument", st.message());
    case Code::kUnauthenticated:
      return ErrorResponse(401, "unauthenticated", st.message());
    case Code::kPermissionDenied:
      return ErrorResponse(403, "permission_denied", st.message());
    case Code::kNotFound:
      return ErrorResponse(404, "not_found", st.message());
    default:
      return ErrorResponse(500, "internal", st.message());
  }
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// The value of cookie `name` in a Cookie header ("a=1; b=2").
std::optional<std::string> CookieValue(const HttpRequest& req, std::string_view name) {
  auto header = req.Header("cookie");
  if (!header) return std::nullopt;
  std::string_view rest = *header;
  while (!rest.empty()) {
    size_t semi = rest.find(';');
    std::string part = Trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    size_t eq = part.find('=');
    if (eq == std::string::npos) continue;
    if (std::string_view(part).substr(0, eq) == name) return part.substr(eq + 1);
  }
  return std::nullopt;
}

bool IsSafeMethod(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

// True when `origin` ("http://host:port") names the host the request was sent to.
bool SameOrigin(const std::string& origin, const std::string& host) {
  if (host.empty()) return false;
  return origin == "http://" + host || origin == "https://" + host;
}

// Development only (REPRISE_WEB_DIR): the file under `dir`, re-read on every
// request. No "..", no hidden files, regular files only.
std::optional<HttpResponse> ServeFromDisk(const std::filesystem::path& dir,
                                          const std::string& path) {
  if (path.find("..") != std::string::npos || path.find("/.") != std::string::npos ||
      path.find('\\') != std::string::npos)
    return std::nullopt;
  std::filesystem::path file = dir / path.substr(1);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  HttpResponse r;
  AddSecurityHeaders(r);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.content_type = ContentTypeFor(path);
  r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

}  // namespace

struct WebUi::Impl {
  WebUiOptions options;
  std::vector<Asset> assets;
  std::filesystem::path dev_dir;  // REPRISE_WEB_DIR: serve web/ from disk (UI development)

  mutable std::mutex mu;
  mutable std::unordered_map<std::string, Session> sessions;  // by SHA-256 of the id
  std::unordered_map<std::string, Failures> failures;         // by "user|address"
  std::once_flag dummy_once;
  std::string dummy_hash;  // verified against when the user is unknown

  TimePoint Now() const { return options.clock->Now(); }

  std::string SetCookie(const std::string& value, bool expire) const {
    std::string c = std::string(kCookieName) + "=" + value + "; Path=/; HttpOnly; SameSite=Strict";
    if (options.secure_cookies) c += "; Secure";
    if (expire)
      c += "; Max-Age=0";
    else
      c += "; Max-Age=" +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kMaxLifetime).count());
    return c;
  }

  // The live session for the request's cookie, under `mu`; nullptr if none.
  Session* FindLocked(const HttpRequest& req, std::string* key_out) const {
    auto id = CookieValue(req, kCookieName);
    if (!id || id->size() != 64) return nullptr;
    std::string key = Sha256Hex(*id);
    auto it = sessions.find(key);
    if (it == sessions.end()) return nullptr;
    TimePoint now = Now();
    if (now - it->second.last_seen > kIdleTimeout || now - it->second.created > kMaxLifetime) {
      sessions.erase(it);
      return nullptr;
    }
    if (key_out) *key_out = key;
    return &it->second;
  }

  void PruneLocked() {
    TimePoint now = Now();
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (now - it->second.last_seen > kIdleTimeout || now - it->second.created > kMaxLifetime)
        it = sessions.erase(it);
      else
        ++it;
    }
    while (sessions.size() >= kMaxSessions) {
      auto oldest = std::min_element(sessions.begin(), sessions.end(), [](auto& a, auto& b) {
        return a.second.last_seen < b.second.last_seen;
      });
      sessions.erase(oldest);
    }
    for (auto it = failures.begin(); it != failures.end();) {
      if (now - it->second.first > kFailureWindow && now >= it->second.locked_until)
        it = failures.erase(it);
      else
        ++it;
    }
  }

  HttpResponse Login(const HttpRequest& req) {
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::exception&) {
      return ErrorResponse(400, "invalid_argument", "request body is not valid JSON");
    }
    if (!body.is_object())
      return ErrorResponse(400, "invalid_argument", "expected a JSON object {user, password}");
    const RequestBody& declared = LoginBody();
    for (const auto& [key, value] : body.items()) {
      if (std::none_of(declared.fields.begin(), declared.fields.end(),
                       [&key](const BodyField& f) { return f.name == key; }))
        return ErrorResponse(400, "invalid_argument",
                             "unknown field '" + key + "' in login (expected: user, password)");
      if (!value.is_string())
        return ErrorResponse(400, "invalid_argument", "'" + key + "' must be a string");
    }
    std::string user = body.value("user", "");
    std::string password = body.value("password", "");
    if (user.empty() || password.empty())
      return ErrorResponse(400, "invalid_argument", "enter a user name and a password");
    if (user.size() > 256 || password.size() > 1024)
      return ErrorResponse(401, "unauthenticated", kBadLogin);

    const std::string failure_key = user + "|" + req.remote_addr;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = failures.find(failure_key);
      if (it != failures.end() && Now() < it->second.locked_until) {
        auto left =
            std::chrono::duration_cast<std::chrono::seconds>(it->second.locked_until - Now())
                .count();
        HttpResponse r = ErrorResponse(
            429, "too_many_requests",
            "too many failed logins; try again in " + std::to_string(left / 60 + 1) + " minute(s)");
        r.headers.emplace_back("Retry-After", std::to_string(left + 1));
        return r;
      }
    }

    // Unknown users cost a password verification too, so timing does not
    // tell which user names exist.
    auto record = options.store->GetUser(user);
    bool ok = false;
    if (record.ok() && !record->password_hash.empty()) {
      ok = VerifyPassword(password, record->password_hash);
    } else {
      std::call_once(dummy_once, [this] { dummy_hash = HashPassword(RandomHex(16)); });
      (void)VerifyPassword(password, dummy_hash);
      if (!record.ok() && record.status().code() != Code::kNotFound)
        return ErrorFrom(record.status());
    }

    std::lock_guard<std::mutex> lock(mu);
    if (!ok) {
      TimePoint now = Now();
      Failures& f = failures[failure_key];
      if (f.count == 0 || now - f.first > kFailureWindow) f = Failures{0, now, {}};
      if (++f.count >= kMaxFailures) {
        f.locked_until = now + kLockout;
        f.count = 0;
      }
      return ErrorResponse(401, "unauthenticated", kBadLogin);
    }
    failures.erase(failure_key);
    // Only after the right password, so a disabled account is not revealed to guessers.
    if (record->disabled)
      return ErrorResponse(403, "permission_denied",
                           "the user '" + record->name + "' is disabled; ask an admin");
    PruneLocked();
    std::string id = RandomHex(32);  // 256 bits
    Session s{record->name, RandomHex(32), Now(), Now()};
    sessions[Sha256Hex(id)] = s;
    (void)options.store->AppendAudit({0, ToUnixMillis(Now()), record->name, "session.login",
                                      record->name, "web login from " + req.remote_addr});
    HttpResponse r = JsonResponse(
        200,
        json{{"user", s.user}, {"role", RoleName(record->role)}, {"csrf_token", s.csrf_token}});
    r.headers.emplace_back("Set-Cookie", SetCookie(id, false));
    return r;
  }

  HttpResponse Info(const HttpRequest& req) const {
    json out = {{"user", req.principal.user}, {"role", RoleName(req.principal.role)}};
    if (req.principal.via_session) {
      std::lock_guard<std::mutex> lock(mu);
      if (Session* s = FindLocked(req, nullptr)) out["csrf_token"] = s->csrf_token;
    }
    out["session"] = req.principal.via_session;
    return JsonResponse(200, out);
  }

  HttpResponse Logout(const HttpRequest& req) {
    if (!req.principal.via_session)
      return ErrorResponse(400, "invalid_argument",
                           "no browser session to end: API tokens are revoked by an admin");
    {
      std::lock_guard<std::mutex> lock(mu);
      std::string key;
      if (FindLocked(req, &key)) sessions.erase(key);
    }
    (void)options.store->AppendAudit({0, ToUnixMillis(Now()), req.principal.user, "session.logout",
                                      req.principal.user, "web logout"});
    HttpResponse r = JsonResponse(200, json{{"logged_out", true}});
    r.headers.emplace_back("Set-Cookie", SetCookie("", true));
    return r;
  }
};

WebUi::WebUi(WebUiOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (impl_->options.clock == nullptr) impl_->options.clock = &SystemClock::Instance();
  if (const char* dir = std::getenv("REPRISE_WEB_DIR"); dir != nullptr && *dir != '\0')
    impl_->dev_dir = dir;
  size_t count = 0;
  const EmbeddedFile* files = WebFiles(&count);
  for (size_t i = 0; i < count; ++i) {
    Asset a;
    a.path = std::string("/") + files[i].path;
    a.content_type = ContentTypeFor(a.path);
    a.etag = "\"" + Sha256Hex(std::string_view(files[i].data, files[i].size)).substr(0, 32) + "\"";
    a.file = &files[i];
    impl_->assets.push_back(std::move(a));
  }
}

WebUi::~WebUi() = default;

std::optional<HttpResponse> WebUi::ServeStatic(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") return std::nullopt;
  std::string path = request.path == "/" ? "/index.html" : request.path;
  if (!impl_->dev_dir.empty()) return ServeFromDisk(impl_->dev_dir, path);
  auto it = std::find_if(impl_->assets.begin(), impl_->assets.end(),
                         [&](const Asset& a) { return a.path == path; });
  if (it == impl_->assets.end()) return std::nullopt;
  HttpResponse r;
  AddSecurityHeaders(r);
  if (impl_->options.secure_cookies)
    r.headers.emplace_back("Strict-Transport-Security", "max-age=31536000");
  // Files are not fingerprinted: the browser revalidates each time (cheap 304s).
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", it->etag);
  r.content_type = it->content_type;
  auto inm = request.Header("if-none-match");
  if (inm && inm->find(it->etag) != std::string::npos) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.body.assign(it->file->data, it->file->size);
  return r;
}

Result<Principal> WebUi::AuthenticateSession(const HttpRequest& request) const {
  if (!CookieValue(request, kCookieName))
    return Unauthenticated(
        "not logged in: missing Authorization header (expected 'Bearer <token>') or session "
        "cookie");
  std::string user;
  std::string csrf;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    Session* s = impl_->FindLocked(request, nullptr);
    if (s == nullptr) return Unauthenticated("your session has expired or ended; log in again");
    user = s->user;
    csrf = s->csrf_token;
    s->last_seen = impl_->Now();
  }
  if (!IsSafeMethod(request.method)) {
    auto origin = request.Header("origin");
    if (origin && !SameOrigin(*origin, request.Header("host").value_or("")))
      return PermissionDenied("cross-origin request refused: Origin '" + *origin +
                              "' is not this server");
    auto site = request.Header("sec-fetch-site");
    if (site && *site == "cross-site") return PermissionDenied("cross-site request refused");
    auto token = request.Header("x-csrf-token");
    if (!token || !ConstantTimeEquals(*token, csrf))
      return PermissionDenied(
          "missing or wrong X-CSRF-Token header for this session; reload the page and try "
          "again");
  }
  auto record = impl_->options.store->GetUser(user);
  if (!record.ok()) {
    if (record.status().code() == Code::kNotFound)
      return Unauthenticated("the user '" + user + "' no longer exists");
    return record.status();
  }
  if (record->disabled) return Unauthenticated("the user '" + user + "' is disabled");
  return Principal{record->name, record->role, true};
}

std::vector<Route> WebUi::Routes() {
  Impl* impl = impl_.get();
  std::vector<Route> r;
  RouteGroup group(r, "Session");
  group.Add(Public(
      Post("/api/v1/session", Role::kViewer,
           {.summary = "Log in to the web UI",
            .description = "Sets the session cookie; the answer carries the CSRF token to send "
                           "as X-CSRF-Token on changes.",
            .body = LoginBody(),
            .success = "{user, role, csrf_token}"},
           [impl](HttpRequest& req) { return impl->Login(req); })));
  group.Add(Get("/api/v1/session", Role::kViewer,
                {.summary = "The current session", .success = "{user, role, csrf_token?}"},
                [impl](HttpRequest& req) { return impl->Info(req); }));
  group.Add(Delete("/api/v1/session", Role::kViewer,
                   {.summary = "Log out", .success = "the session ended"},
                   [impl](HttpRequest& req) { return impl->Logout(req); }));
  return r;
}

size_t WebUi::session_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace reprise
