// WebUi: the browser UI's server side — the embedded static files of web/,
// password login with session cookies, and CSRF/Origin checks for
// state-changing requests made with a session.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "server/api/http_types.h"
#include "server/store/store.h"

namespace reprise {

struct WebUiOptions {
  Store* store = nullptr;
  const Clock* clock = nullptr;
  bool secure_cookies = false;  // set under TLS
};

class WebUi {
 public:
  explicit WebUi(WebUiOptions options);
  ~WebUi();

  // GET of "/" and the UI's assets; nullopt when the path is not the UI's.
  std::optional<HttpResponse> ServeStatic(const HttpRequest& request) const;

  // Authenticates a request carrying the session cookie. State-changing
  // methods also need the session's CSRF token (X-CSRF-Token) and, when sent,
  // an Origin of this server. kUnauthenticated otherwise.
  Result<Principal> AuthenticateSession(const HttpRequest& request) const;

  // Login, logout and session info under /api/v1/session.
  std::vector<Route> Routes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
