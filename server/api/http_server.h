// HttpServer: serves a list of Routes over HTTP with cpp-httplib (the only
// httplib user on the server side). It authenticates and authorizes every
// request before a handler runs, enforces body size limits and turns every
// failure into the API's JSON error shape.
//
// Thread-safety: Start/Stop from one thread; handlers run on the server's
// worker pool and must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/api/http_types.h"

namespace reprise {

// Decides who the caller is. Returns kUnauthenticated when credentials are
// missing or wrong.
using Authenticator = std::function<Result<Principal>(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (tests)
  // Every open connection holds a worker, live log streams included.
  int worker_threads = 64;
  int64_t max_json_body = 1 << 20;              // 413 above this
  int64_t max_upload_body = 8LL << 30;          // streaming routes
  int keep_alive_timeout_seconds = 5;
  Authenticator authenticate;
  std::vector<Route> routes;
  // Serves paths outside /api (the web UI); may be empty.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> static_files;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a background thread.
  Status Start();
  void Stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
