// RequestRouter: what the HTTP server does with a request once its headers
// are in, apart from any transport: target and UTF-8 validation, route
// lookup, authentication and authorization, and calling handlers (an
// exception becomes a 500 that does not echo the exception's text).
//
// Thread-safety: immutable after construction; every method may be called
// from any worker thread at once.
#pragma once

#include <optional>
#include <string>

#include "server/api/http_server.h"
#include "server/http/http_types.h"

namespace reprise {

class RequestRouter {
 public:
  explicit RequestRouter(const HttpServerOptions& options) : options_(options) {}

  struct Decision {
    const Route* route = nullptr;          // set: read the body, then Run/RunStreaming
    std::optional<HttpResponse> response;  // set: answer this without reading a body
    const Route* matched = nullptr;        // the route the path and method matched, if any
  };
  // `req` has method, headers and remote_addr; `target` is the raw request
  // target. Fills req.path, req.query, req.path_params and req.principal.
  Decision Prepare(std::string_view target, HttpRequest& req) const;
  // Runs a handler whose body is in req.body (checked to be UTF-8 here).
  HttpResponse Run(const Route& route, HttpRequest& req) const;
  HttpResponse RunStreaming(const Route& route, HttpRequest& req, const BodyReader& body) const;
  int64_t BodyLimit(const Route& route) const {
    return route.streaming ? options_.max_upload_body : options_.max_json_body;
  }

 private:
  const Route* Find(HttpRequest& req) const;
  bool PathExistsForOtherMethod(const HttpRequest& req) const;
  std::optional<HttpResponse> Guard(const Route& route, HttpRequest& req) const;

  const HttpServerOptions& options_;
};

}  // namespace reprise
