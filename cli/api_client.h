// ApiClient: the CLI's connection to one Reprise server's HTTP API — JSON
// requests, artifact uploads streamed from a file, and Server-Sent Events
// (live deployment logs). cpp-httplib stays behind this header.
//
// Transport failures (connection refused, timeouts, TLS) come back as a
// non-OK Status (kUnavailable, or kCancelled after Stop()); HTTP answers of
// any status come back as an ApiResponse for the caller to judge.
//
// Thread-safety: one ApiClient belongs to one thread, except Stop(), which
// any thread may call to abort the request in progress (the CLI's --timeout).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/non_copyable.h"
#include "common/status.h"

namespace reprise::cli {

// "http://host:port/prefix" split for the HTTP library: the origin and a
// path prefix (for a server mounted below a reverse proxy's path).
struct ServerUrl {
  std::string origin;  // "http://127.0.0.1:8080"
  std::string prefix;  // "" or "/reprise" (no trailing slash)
};
// Accepts http:// and https:// URLs with an optional port and path.
Result<ServerUrl> ParseServerUrl(std::string_view url);

// Percent-encodes one path segment (everything but unreserved characters).
std::string PathSegment(std::string_view segment);
// Percent-encodes a query value.
std::string QueryValue(std::string_view value);

// Builds "?k1=v1&k2=v2" from the pairs whose value is set ("" when none is).
class QueryString {
 public:
  QueryString& Add(std::string_view key, const std::optional<std::string>& value);
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

struct ApiResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// One Server-Sent Event; comments (keep-alives) are not reported.
struct SseEvent {
  std::string id;
  std::string event = "message";
  std::string data;
};

// Feeds bytes of a text/event-stream and reports each complete event.
// Not thread-safe.
class SseParser {
 public:
  // Returns false when `on_event` asked to stop.
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);

 private:
  bool Line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event);
  std::string pending_;
  SseEvent event_;
  bool has_data_ = false;
};

class ApiClient : NonCopyable {
 public:
  // `token` is sent as "Authorization: Bearer <token>" when not empty; it is
  // never printed or put into error messages.
  ApiClient(ServerUrl url, std::string token);
  ~ApiClient();

  const std::string& origin() const { return url_.origin; }

  // `path` starts with "/api/v1"; the URL's prefix is prepended.
  [[nodiscard]] Result<ApiResponse> Send(const std::string& method, const std::string& path,
                                         const std::string& body = "",
                                         const std::string& content_type = "application/json");
  [[nodiscard]] Result<ApiResponse> Get(const std::string& path) { return Send("GET", path); }

  // PUTs the file's bytes as the body (with Content-Length, read in blocks,
  // never whole in memory). `on_block` sees every block as it is sent.
  [[nodiscard]] Result<ApiResponse> PutFile(
      const std::string& path, const std::filesystem::path& file,
      const std::function<void(const char*, size_t)>& on_block);

  // GETs `path` with "Accept: text/event-stream" and reports each event until
  // the server ends the stream or `on_event` returns false. A non-200 answer
  // is returned with its body and no events.
  [[nodiscard]] Result<ApiResponse> Events(const std::string& path,
                                           const std::string& last_event_id,
                                           const std::function<bool(const SseEvent&)>& on_event);

  // Aborts the request in progress (from any thread); it fails with kCancelled.
  void Stop();

 private:
  struct Impl;
  ServerUrl url_;
  std::string token_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stopped_{false};
};

}  // namespace reprise::cli
