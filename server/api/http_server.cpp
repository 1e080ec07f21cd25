#include "server/api/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <thread>

namespace reprise {

namespace {

// Bodies past the limit are drained up to this much so the client can read
// the 413; beyond it the connection is dropped.
constexpr int64_t kDrainCap = 64LL << 20;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

HttpRequest Convert(const httplib::Request& req) {
  HttpRequest out;
  out.method = req.method;
  out.path = req.path;
  for (const auto& [k, v] : req.params) out.query.emplace(k, v);
  for (const auto& [k, v] : req.headers) out.headers[Lower(k)] = v;
  out.remote_addr = req.remote_addr;
  return out;
}

void Apply(const HttpResponse& in, httplib::Response& res) {
  if (in.stream) {
    auto stream = in.stream;
    res.status = in.status;
    // Exactly "text/event-stream": with a charset appended the response got compressed.
    res.set_chunked_content_provider(
        "text/event-stream", [stream](size_t, httplib::DataSink& sink) {
          bool more = stream([&](std::string_view data) {
            return sink.is_writable() && sink.write(data.data(), data.size());
          });
          if (!more) sink.done();
          return sink.is_writable() || !more;
        });
    return;
  }
  // Left unset for a successful file, httplib answers 200, or 206 for a Range.
  if (!(in.file_path && in.status == 200)) res.status = in.status;
  for (const auto& [k, v] : in.headers) res.set_header(k, v);
  if (in.file_path) {
    auto file = std::make_shared<std::ifstream>(*in.file_path, std::ios::binary);
    if (!*file) {
      HttpResponse err = HttpResponse::Error(500, "io_error", "cannot open stored file");
      res.status = err.status;
      res.set_content(err.body, err.content_type);
      return;
    }
    res.set_content_provider(
        static_cast<size_t>(in.file_size), in.content_type,
        [file](size_t offset, size_t length, httplib::DataSink& sink) {
          std::vector<char> buf(std::min<size_t>(length, 1 << 20));
          file->seekg(static_cast<std::streamoff>(offset));
          size_t left = length;
          while (left > 0) {
            size_t want = std::min(left, buf.size());
            file->read(buf.data(), static_cast<std::streamsize>(want));
            std::streamsize got = file->gcount();
            if (got <= 0) return false;
            if (!sink.write(buf.data(), static_cast<size_t>(got))) return false;
            left -= static_cast<size_t>(got);
          }
          return true;
        });
    return;
  }
  res.set_content(in.body, in.content_type);
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::atomic<bool> started{false};

  const Route* Find(HttpRequest& req) const {
    for (const auto& r : options.routes) {
      if (r.method != req.method) continue;
      if (MatchRoute(r.pattern, req.path, req.path_params)) return &r;
    }
    return nullptr;
  }

  bool PathExistsForOtherMethod(const HttpRequest& req) const {
    std::map<std::string, std::string> ignored;
    for (const auto& r : options.routes)
      if (MatchRoute(r.pattern, req.path, ignored)) return true;
    return false;
  }

  // Authentication and authorization, in that order. Returns an error response
  // to send, or nullopt to proceed.
  std::optional<HttpResponse> Guard(const Route& route, HttpRequest& req) const {
    if (route.public_route) return std::nullopt;
    if (!options.authenticate)
      return HttpResponse::Error(401, "unauthenticated", "authentication is not configured");
    auto who = options.authenticate(req);
    if (!who.ok()) return HttpResponse::Error(who.status());
    req.principal = *who;
    if (static_cast<int>(req.principal.role) < static_cast<int>(route.min_role))
      return HttpResponse::Error(403, "permission_denied",
                                 std::string("this needs the role ") + RoleName(route.min_role) +
                                     "; '" + req.principal.user + "' is " +
                                     RoleName(req.principal.role));
    return std::nullopt;
  }

  void Dispatch(const httplib::Request& raw, httplib::Response& res,
                const httplib::ContentReader* reader) {
    HttpRequest req = Convert(raw);
    HttpResponse out;
    try {
      out = DispatchInner(req, reader);
    } catch (const std::exception& e) {
      out = HttpResponse::Error(500, "internal", std::string("unexpected error: ") + e.what());
    }
    Apply(out, res);
  }

  HttpResponse DispatchInner(HttpRequest& req, const httplib::ContentReader* reader) {
    const Route* route = Find(req);
    if (route == nullptr) {
      if (req.path.rfind("/api/", 0) != 0 && options.static_files) {
        if (auto r = options.static_files(req)) return *r;
      }
      if (PathExistsForOtherMethod(req))
        return HttpResponse::Error(405, "method_not_allowed",
                                   req.method + " is not allowed on " + req.path);
      return HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path);
    }
    // Authenticate before reading any body: an anonymous caller cannot make
    // the server read (or store) anything.
    if (auto refused = Guard(*route, req)) {
      if (reader) Drain(*reader);
      return *refused;
    }
    if (route->streaming) {
      BodyReader body = [reader](const std::function<bool(const char*, size_t)>& sink) {
        if (reader == nullptr) return true;
        return (*reader)([&](const char* data, size_t len) { return sink(data, len); });
      };
      return route->streaming(req, body);
    }
    if (reader) {
      bool too_large = false;
      int64_t seen = 0;
      bool ok = (*reader)([&](const char* data, size_t len) {
        seen += static_cast<int64_t>(len);
        if (seen > options.max_json_body) {
          too_large = true;
          return seen <= kDrainCap;  // keep draining so the client reads our answer
        }
        req.body.append(data, len);
        return true;
      });
      if (too_large)
        return HttpResponse::Error(413, "too_large",
                                   "request body is larger than " +
                                       std::to_string(options.max_json_body) + " bytes");
      if (!ok) return HttpResponse::Error(400, "invalid_argument", "request body was cut off");
    }
    return route->handler(req);
  }

  static void Drain(const httplib::ContentReader& reader) {
    int64_t seen = 0;
    reader([&](const char*, size_t len) {
      seen += static_cast<int64_t>(len);
      return seen <= kDrainCap;
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  auto& svr = impl_->server;
  int threads = impl_->options.worker_threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_payload_max_length(static_cast<size_t>(
      std::max(impl_->options.max_upload_body, impl_->options.max_json_body)));
  svr.set_keep_alive_timeout(impl_->options.keep_alive_timeout_seconds);
  svr.set_read_timeout(30);
  svr.set_write_timeout(30);
  Impl* impl = impl_.get();
  auto plain = [impl](const httplib::Request& req, httplib::Response& res) {
    impl->Dispatch(req, res, nullptr);
  };
  auto with_body = [impl](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& reader) {
    impl->Dispatch(req, res, &reader);
  };
  svr.Get(".*", plain);
  svr.Delete(".*", with_body);
  svr.Post(".*", with_body);
  svr.Put(".*", with_body);
  svr.Patch(".*", with_body);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    // Errors raised by httplib itself (payload too large, bad request line).
    std::string code = res.status == 413 ? "too_large" : "http_error";
    HttpResponse err = HttpResponse::Error(res.status, code, "HTTP error " + std::to_string(res.status));
    res.set_content(err.body, err.content_type);
  });

  // httplib listens with a backlog of 5, which drops connections when many
  // clients connect at once; capture the socket and widen the backlog.
  auto listen_fd = std::make_shared<int>(-1);
  svr.set_socket_options([listen_fd](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = sock;
  });
  int port = impl_->options.port == 0
                 ? svr.bind_to_any_port(impl_->options.host)
                 : (svr.bind_to_port(impl_->options.host, impl_->options.port)
                        ? impl_->options.port
                        : -1);
  if (port < 0)
    return Unavailable("cannot listen on " + impl_->options.host + ":" +
                       std::to_string(impl_->options.port));
  impl_->port = port;
  if (*listen_fd >= 0) ::listen(*listen_fd, 1024);
  impl_->thread = std::thread([impl] { impl->server.listen_after_bind(); });
  while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->started = true;
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->started.exchange(false)) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace reprise
