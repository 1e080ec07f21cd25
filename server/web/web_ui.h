// WebUi: the browser UI's server side — the embedded static files of web/,
// password login with session cookies, and CSRF/Origin checks for
// state-changing requests made with a session.
//
// Sessions live in memory only: a restart logs everybody out. A session id is
// 256 random bits, kept in an HttpOnly, SameSite=Strict cookie (Secure under
// TLS); the server keeps only its SHA-256. Sessions end after 12 hours without
// a request, 7 days after login at the latest, or on logout. Every
// state-changing request made with a session must carry the session's CSRF
// token in X-CSRF-Token, and an Origin header, when present, must name this
// server. Five failed logins for one user name from one address within 15
// minutes lock that pair out for 5 minutes.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "server/http/http_types.h"
#include "server/store/store.h"

namespace reprise {

struct WebUiOptions {
  Store* store = nullptr;
  const Clock* clock = nullptr;
  // The UI is served over HTTPS (by a TLS-terminating proxy in front of the
  // server): cookies get Secure and pages Strict-Transport-Security.
  bool secure_cookies = false;
};

class WebUi {
 public:
  explicit WebUi(WebUiOptions options);
  ~WebUi();

  // GET of "/" and the UI's assets; nullopt when the path is not the UI's.
  std::optional<HttpResponse> ServeStatic(const HttpRequest& request) const;

  // Authenticates a request carrying the session cookie. State-changing
  // methods also need the session's CSRF token (X-CSRF-Token) and, when sent,
  // an Origin of this server (kPermissionDenied otherwise). kUnauthenticated
  // when there is no valid session.
  Result<Principal> AuthenticateSession(const HttpRequest& request) const;

  // Login, logout and session info under /api/v1/session.
  std::vector<Route> Routes();

  // Number of live sessions (tests).
  size_t session_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
