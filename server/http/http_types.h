// Transport-neutral HTTP request/response types and routes for the API.
// Handlers see only these; Boost.Beast stays inside http_server.cpp.
// Values are plain data; not thread-safe to share while being mutated.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/utf8.h"
#include "server/store/store.h"

namespace reprise {

// Who is calling, once authenticated.
struct Principal {
  std::string user;
  Role role = Role::kViewer;
  bool via_session = false;  // browser session (cookie) rather than a Bearer token
};

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> path_params;
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // keys lower-case
  std::string body;
  std::string remote_addr;
  Principal principal;

  std::string Param(const std::string& name) const;
  std::optional<std::string> Query(const std::string& name) const;
  std::optional<std::string> Header(const std::string& lower_name) const;
};

// Streams the request body in chunks: calls `sink` for each chunk until it
// returns false or the body ends. Returns false when the connection failed.
using BodyReader = std::function<bool(const std::function<bool(const char*, size_t)>& sink)>;

// A live stream of server-sent events that holds no thread while it waits:
// the server calls `poll` (on a worker thread, never twice at once) when the
// stream starts, whenever `subscribe`'s wake-up fired, and at each heartbeat.
struct EventStream {
  // Returns the events to send now (empty: nothing new) and sets *done once
  // the stream is over (its last events are in the returned text).
  std::function<std::string(bool* done)> poll;
  // Registers `wake` (callable from any thread, quick, never blocking) to be
  // called whenever poll may have news; returns the function that
  // unregisters it, which the server calls once before letting go.
  std::function<std::function<void()>(std::function<void()> wake)> subscribe;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this file's content, streamed (Range honoured).
  std::optional<std::string> file_path;
  int64_t file_size = 0;
  // When set, the body is a live server-sent event stream (see EventStream).
  std::shared_ptr<EventStream> events;

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Error(const Status& status);
  static HttpResponse Error(int http_status, std::string_view code, std::string_view message);
};

// The HTTP status that fits a Status code.
int HttpStatusFor(Code code);

using Handler = std::function<HttpResponse(HttpRequest&)>;
using StreamingHandler = std::function<HttpResponse(HttpRequest&, const BodyReader&)>;

// Documentation of a route, declared next to it: the OpenAPI document
// (server/api/openapi.h) is generated from it, and a handler checks its JSON
// body's keys against the same field list (CheckKeys in json_io.h).
//
// One field of a JSON body. type: "string", "integer", "number", "boolean",
// "object" (members in `fields`; none: any object), "map" (an object whose
// values are objects of `fields`) or "array" (elements of type `items`;
// "object" elements have `fields`).
struct BodyField {
  std::string name{};
  std::string type{};
  bool required = false;
  std::string description{};
  std::vector<BodyField> fields{};
  std::string items{};
};

// A query parameter; type as in BodyField (scalars only).
struct QueryParam {
  std::string name{};
  std::string type{};
  std::string description{};
};

// A JSON object request body: `what` names it in error messages ("unknown
// field 'x' in user"); `fields` lists every key it may hold.
struct RequestBody {
  std::string what{};
  std::vector<BodyField> fields{};
  bool required = true;   // false: an empty body is taken as {}
  bool any_keys = false;  // true: a free-form object (fields only describe it)
};

struct RouteDoc {
  std::string summary{};
  std::string tag{};  // the resource group ("Deployments")
  std::string description{};
  std::vector<QueryParam> query{};
  std::optional<RequestBody> body{};  // JSON body; a streaming route takes raw bytes
  int success_status = 200;
  std::string success{};       // what a success returns
  std::string success_type{};  // content type when not JSON ("text/csv")
};

struct Route {
  std::string method;   // GET, POST, PUT, PATCH, DELETE
  std::string pattern;  // "/api/v1/applications/{app}"
  Role min_role = Role::kViewer;
  bool public_route = false;   // no authentication at all (health)
  Handler handler;             // for requests with a body read in memory
  StreamingHandler streaming;  // for large bodies (artifact upload)
  RouteDoc doc{};
};

// Builds a route in one expression, its documentation before its handler:
//   r.push_back(Get("/api/v1/targets/{target}", Role::kViewer, {.summary = ...}, handler));
struct RouteMethod {
  const char* method;
  Route operator()(std::string pattern, Role min_role, RouteDoc doc, Handler handler) const {
    return {method,  std::move(pattern), min_role, false, std::move(handler),
            nullptr, std::move(doc)};
  }
};
inline constexpr RouteMethod Get{"GET"}, Post{"POST"}, Put{"PUT"}, Patch{"PATCH"}, Delete{"DELETE"};
// The routes of one resource group, listed under one tag in the API
// reference: Add gives each route the group's tag, so that a route's
// documentation states only what is its own.
class RouteGroup {
 public:
  RouteGroup(std::vector<Route>& routes, std::string tag) : routes_(routes), tag_(std::move(tag)) {}
  void Add(Route route) {
    route.doc.tag = tag_;
    routes_.push_back(std::move(route));
  }

 private:
  std::vector<Route>& routes_;
  std::string tag_;
};
// The same route answered without authentication (health, the OpenAPI document, log in).
inline Route Public(Route route) {
  route.public_route = true;
  return route;
}

// Matches "/a/{x}/b" against "/a/1/b". Path parameters are percent-decoded and
// must be non-empty; a parameter never spans a '/'.
bool MatchRoute(const std::string& pattern, const std::string& path,
                std::map<std::string, std::string>& params);

// Splits a request target ("/a/b?x=1&y=%20") into req.path (still
// percent-encoded: MatchRoute decodes parameters) and req.query (decoded,
// '+' as space). kInvalidArgument naming the part when a path segment, a
// query name or value is not valid UTF-8 or not well percent-encoded; the
// message never contains the offending bytes.
[[nodiscard]] Status ParseRequestTarget(std::string_view target, HttpRequest& req);

}  // namespace reprise
