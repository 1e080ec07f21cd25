// HttpServer: serves a list of Routes over HTTP/1.1 with Boost.Beast on an
// Asio io_context (Beast stays inside http_server.cpp). Sockets are read and
// written asynchronously on a few io threads, so a slow or idle client holds
// no thread; handlers (which block on SQLite) run on a small worker pool.
// Every request is authenticated and authorized before its handler runs and
// before its body is read; body size limits, header and body deadlines,
// keep-alive limits and a connection cap apply; every failure has the API's
// JSON error shape. Live log streams (HttpResponse::events) wait without a
// thread and are woken by their source.
//
// Thread-safety: Start/Stop from one thread; handlers run on the worker pool
// and must be thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/non_copyable.h"
#include "common/status.h"
#include "server/http/http_types.h"

namespace reprise {

class Metrics;

// Decides who the caller is. Returns kUnauthenticated when credentials are
// missing or wrong.
using Authenticator = std::function<Result<Principal>(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (tests)
  int io_threads = 1;
  // Handlers (and authentication) run here.
  int worker_threads = 8;
  // Upload (streaming body) handlers run here, one per upload in progress.
  int upload_threads = 8;
  int64_t max_json_body = 1 << 20;      // 413 above this
  int64_t max_upload_body = 8LL << 30;  // streaming routes
  // A request's line and headers must have arrived this long after the
  // connection opened (or after the previous response, see keep_alive_timeout).
  std::chrono::milliseconds header_timeout{10000};
  // An in-memory (JSON/YAML) body must have arrived this long after its headers.
  std::chrono::milliseconds body_timeout{30000};
  // An upload fails when no byte of its body arrives for this long.
  std::chrono::milliseconds upload_idle_timeout{60000};
  // A kept-alive connection must send its next request's headers within this.
  std::chrono::milliseconds keep_alive_timeout{5000};
  // Writing a response (or a live log event) must progress within this.
  std::chrono::milliseconds write_timeout{30000};
  // A live log stream with nothing to say sends a comment this often.
  std::chrono::milliseconds heartbeat_interval{15000};
  int max_requests_per_connection = 1000;
  // Open connections beyond this are answered 503 and closed.
  int max_connections = 10000;
  int64_t max_header_bytes = 64 * 1024;
  Authenticator authenticate;
  std::vector<Route> routes;
  // Serves paths outside /api (the web UI); may be empty.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> static_files;
  // Counts every answered request by route pattern (may be null).
  Metrics* metrics = nullptr;
};

class HttpServer : NonCopyable {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();

  // Binds and starts serving on background threads.
  Status Start();
  // Closes every connection (live streams included) and joins the threads.
  void Stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Raises this process's open-file soft limit to its hard limit (many
// connections need many descriptors). Returns the new soft limit.
uint64_t RaiseOpenFileLimit();

}  // namespace reprise
