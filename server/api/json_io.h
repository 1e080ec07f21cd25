// Helpers shared by the route files to read request JSON and write responses.
// Includes nlohmann/json: include only from server/api/*.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json_members.h"
#include "planner/variables.h"
#include "server/http/http_types.h"
#include "server/store/audit_store.h"
#include "server/store/catalog_store.h"
#include "server/store/deployment_store.h"

namespace reprise {

using Json = nlohmann::json;

// Parses the body as a JSON object; an empty body is {} when `allow_empty`.
Result<Json> ParseJsonBody(const HttpRequest& req, bool allow_empty = false);

// Rejects keys outside `allowed`, naming the first unknown one.
Status CheckKeys(const Json& obj, std::initializer_list<const char*> allowed,
                 std::string_view what);

// The same against a route's declared body (RouteDoc::body): one list serves
// the handler and the API's OpenAPI document.
Status CheckKeys(const Json& obj, const RequestBody& declared);

// Optional string field; kInvalidArgument naming the field when of another type.
Result<std::string> StringField(const Json& obj, const char* key, bool required);

// The "variables" field of a request (absent: empty).
Result<VariableMap> VariablesField(const Json& obj);

// The documentation of a "variables" field: name -> {value, sensitive}.
BodyField VariablesFieldDoc(std::string description = "variables by name");

// Variables for a response: sensitive values replaced by "******".
Json VariablesOut(const VariableMap& vars);
Json VariablesOut(const std::string& canonical_json);

std::string Time(int64_t unix_millis);
// The same for a moment that may not have come yet: null when 0.
Json TimeOrNull(int64_t unix_millis);
// An artifact of a build: name, hash, size, who stored it, whether retention
// removed its bytes (the build's own fields are the caller's).
Json ArtifactSummaryJson(const ArtifactRecord& a);
// An irreversible step that ran: where, when, its note (previews and records).
Json IrreversibleStepJson(const IrreversibleStepRecord& s);
// The newest 100 audit entries about `subject` ("deployment 7"), as
// [{at, actor, action, summary}]; empty when they cannot be read.
Json AuditTrailJson(AuditStore& store, const std::string& subject);
// A whole number from a path or query parameter; `what` names it in errors.
Result<int64_t> ParseNumber(const std::string& text, const char* what);
Page PageFrom(const HttpRequest& req);
// {"items": [...], "limit", "offset"}
HttpResponse ListResponse(Json items, const Page& page);
// The same for records, each turned into JSON by `to_json`.
template <typename T, typename ToJson>
HttpResponse ListResponse(const std::vector<T>& list, const Page& page, ToJson to_json) {
  Json items = Json::array();
  for (const auto& item : list) items.push_back(to_json(item));
  return ListResponse(std::move(items), page);
}
HttpResponse Ok(const Json& body, int status = 200);
// Serialises a response body; never throws: invalid UTF-8 becomes U+FFFD.
std::string DumpJson(const Json& value);

// In a handler: assign the value of a Result or return its error as a response.
#define TRY_OR_ERROR(lhs, expr)                                         \
  auto REPRISE_CONCAT(_r_, __LINE__) = (expr);                          \
  if (!REPRISE_CONCAT(_r_, __LINE__).ok())                              \
    return HttpResponse::Error(REPRISE_CONCAT(_r_, __LINE__).status()); \
  lhs = std::move(REPRISE_CONCAT(_r_, __LINE__)).value()

#define STATUS_OR_ERROR(expr)                     \
  do {                                            \
    ::reprise::Status _s = (expr);                \
    if (!_s.ok()) return HttpResponse::Error(_s); \
  } while (0)

}  // namespace reprise
