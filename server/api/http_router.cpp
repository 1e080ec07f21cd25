#include "server/api/http_router.h"

#include <cstdio>

namespace reprise {

namespace {

template <typename Fn>
HttpResponse Guarded(const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    // The exception's text may hold request bytes or internals: log it, answer plainly.
    std::fprintf(stderr, "http: %s failed: %s\n", what, e.what());
  } catch (...) {
    std::fprintf(stderr, "http: %s failed\n", what);
  }
  return HttpResponse::Error(500, "internal", "internal error while handling the request");
}

}  // namespace

const Route* RequestRouter::Find(HttpRequest& req) const {
  for (const auto& r : options_.routes) {
    if (r.method != req.method) continue;
    if (MatchRoute(r.pattern, req.path, req.path_params)) return &r;
  }
  return nullptr;
}

bool RequestRouter::PathExistsForOtherMethod(const HttpRequest& req) const {
  std::map<std::string, std::string> ignored;
  for (const auto& r : options_.routes)
    if (MatchRoute(r.pattern, req.path, ignored)) return true;
  return false;
}

std::optional<HttpResponse> RequestRouter::Guard(const Route& route, HttpRequest& req) const {
  if (route.public_route) return std::nullopt;
  if (!options_.authenticate)
    return HttpResponse::Error(401, "unauthenticated", "authentication is not configured");
  auto who = options_.authenticate(req);
  if (!who.ok()) return HttpResponse::Error(who.status());
  req.principal = *who;
  if (static_cast<int>(req.principal.role) < static_cast<int>(route.min_role))
    return HttpResponse::Error(403, "permission_denied",
                               std::string("this needs the role ") + RoleName(route.min_role) +
                                   "; '" + req.principal.user + "' is " +
                                   RoleName(req.principal.role));
  return std::nullopt;
}

RequestRouter::Decision RequestRouter::Prepare(std::string_view target, HttpRequest& req) const {
  Decision out;
  Status parsed = ParseRequestTarget(target, req);
  if (!parsed.ok()) {
    out.response = HttpResponse::Error(parsed);
    return out;
  }
  for (const auto& [name, value] : req.headers) {
    if (!IsValidUtf8(value)) {
      out.response = HttpResponse::Error(
          400, "invalid_argument",
          "header '" + (IsValidUtf8(name) ? name : std::string("?")) + "' is not valid UTF-8");
      return out;
    }
  }
  out.response = Guarded("routing", [&]() -> HttpResponse {
    const Route* route = Find(req);
    out.matched = route;
    if (route == nullptr) {
      if (req.path.rfind("/api/", 0) != 0 && options_.static_files) {
        if (auto r = options_.static_files(req)) return *r;
      }
      if (PathExistsForOtherMethod(req))
        return HttpResponse::Error(405, "method_not_allowed",
                                   req.method + " is not allowed on " + req.path);
      return HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path);
    }
    // Authenticate before reading any body: an anonymous caller cannot make
    // the server read (or store) anything.
    if (auto refused = Guard(*route, req)) return *refused;
    out.route = route;
    return HttpResponse{};
  });
  if (out.route != nullptr) out.response.reset();
  return out;
}

HttpResponse RequestRouter::Run(const Route& route, HttpRequest& req) const {
  if (!IsValidUtf8(req.body))
    return HttpResponse::Error(400, "invalid_argument", "request body is not valid UTF-8");
  return Guarded("handler", [&] { return route.handler(req); });
}

HttpResponse RequestRouter::RunStreaming(const Route& route, HttpRequest& req,
                                         const BodyReader& body) const {
  return Guarded("handler", [&] { return route.streaming(req, body); });
}

}  // namespace reprise
