// The usual kinds of API route, each built in one call so that a route file
// states only what differs: one record, a paged list, and a change that takes a JSON body
// checked against the route's declared fields (RouteDoc::body).
// Includes nlohmann/json: include only from server/api/*.cpp.
// Pure builders; the routes they return are immutable, like any Route.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "server/api/json_io.h"
#include "server/http/list_params.h"

namespace reprise {

// GET of one record: `get(req)` reads it (a Result) and `to_json` turns it
// into the answer.
template <typename GetOne, typename ToJson>
Route ItemRoute(std::string pattern, Role min_role, RouteDoc doc, GetOne get, ToJson to_json) {
  return Get(std::move(pattern), min_role, std::move(doc),
             [get, to_json](HttpRequest& req) -> HttpResponse {
               TRY_OR_ERROR(auto record, get(req));
               return Ok(to_json(record));
             });
}

// GET of a paged list (?limit=&offset=): `list(req, page)` reads the records
// (a Result of a vector) and `to_json` turns each into JSON; the answer is
// {items, limit, offset, next_offset?}. The documentation gets the page query
// and, unless `doc` names another, that answer.
template <typename List, typename ToJson>
Route ListRoute(std::string pattern, Role min_role, RouteDoc doc, List list, ToJson to_json) {
  doc.query = PageQuery();
  if (doc.success.empty()) doc.success = "{items, limit, offset, next_offset?}";
  return Get(std::move(pattern), min_role, std::move(doc),
             [list, to_json](HttpRequest& req) -> HttpResponse {
               TRY_OR_ERROR(Page page, ListParams(req));
               TRY_OR_ERROR(auto records, list(req, page));
               return ListResponse(records, page, to_json);
             });
}

// A handler of a route with a JSON body, given the body once it is read.
using JsonBodyHandler = std::function<HttpResponse(HttpRequest&, const Json& body)>;

// A route whose body `doc.body` declares: it is parsed as a JSON object (an
// empty body is {} when the declaration says it is optional) and its keys are
// checked against the declared fields before `handler` sees it.
inline Route JsonBodyRoute(RouteMethod method, std::string pattern, Role min_role, RouteDoc doc,
                           JsonBodyHandler handler) {
  const RequestBody declared = doc.body.value();
  return method(std::move(pattern), min_role, std::move(doc),
                [declared, handler = std::move(handler)](HttpRequest& req) -> HttpResponse {
                  TRY_OR_ERROR(Json body, ParseJsonBody(req, !declared.required));
                  STATUS_OR_ERROR(CheckKeys(body, declared));
                  return handler(req, body);
                });
}

}  // namespace reprise
