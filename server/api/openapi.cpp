#include "server/api/openapi.h"

#include <memory>
#include <set>

#include "server/api/json_io.h"

namespace reprise {
namespace {

// Keeps members in the order declared (fields read as written next to the route).
using OrderedJson = nlohmann::ordered_json;

// The path parameters of a pattern, in order: "/a/{x}/b/{y}" -> x, y.
std::vector<std::string> PathParams(const std::string& pattern) {
  std::vector<std::string> out;
  size_t open = pattern.find('{');
  while (open != std::string::npos) {
    size_t close = pattern.find('}', open);
    if (close == std::string::npos) break;
    out.push_back(pattern.substr(open + 1, close - open - 1));
    open = pattern.find('{', close);
  }
  return out;
}

// "post" + "/api/v1/users/{user}/tokens" -> "post_users_user_tokens".
std::string OperationId(const std::string& method, const std::string& pattern) {
  std::string id;
  for (char c : method) id += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string path = pattern.rfind("/api/v1/", 0) == 0 ? pattern.substr(8) : pattern;
  bool sep = true;
  for (char c : path) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (word) {
      if (sep) id += '_';
      id += c;
    }
    sep = !word;
  }
  return id;
}

OrderedJson FieldSchema(const BodyField& f);

// An object whose members are `fields`; no other keys (the handlers refuse them).
OrderedJson ObjectSchema(const std::vector<BodyField>& fields, bool closed = true) {
  OrderedJson schema = {{"type", "object"}};
  if (fields.empty()) {
    if (closed) schema["additionalProperties"] = false;  // takes no fields at all
    return schema;
  }
  OrderedJson properties = OrderedJson::object();
  OrderedJson required = OrderedJson::array();
  for (const auto& f : fields) {
    properties[f.name] = FieldSchema(f);
    if (f.required) required.push_back(f.name);
  }
  schema["properties"] = std::move(properties);
  if (!required.empty()) schema["required"] = std::move(required);
  if (closed) schema["additionalProperties"] = false;
  return schema;
}

OrderedJson ScalarSchema(const std::string& type) {
  if (type.empty()) return OrderedJson::object();
  return {{"type", type}};
}

OrderedJson FieldSchema(const BodyField& f) {
  OrderedJson schema;
  if (f.type == "object") {
    schema = ObjectSchema(f.fields, !f.fields.empty());
  } else if (f.type == "map") {
    schema = {{"type", "object"}, {"additionalProperties", ObjectSchema(f.fields)}};
  } else if (f.type == "array") {
    schema = {{"type", "array"},
              {"items", f.items == "object" ? ObjectSchema(f.fields) : ScalarSchema(f.items)}};
  } else {
    schema = ScalarSchema(f.type);
  }
  if (!f.description.empty()) schema["description"] = f.description;
  return schema;
}

OrderedJson Parameters(const Route& route) {
  OrderedJson out = OrderedJson::array();
  for (const auto& name : PathParams(route.pattern))
    out.push_back(
        {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
  for (const auto& q : route.doc.query) {
    OrderedJson p = {
        {"name", q.name}, {"in", "query"}, {"required", false}, {"schema", ScalarSchema(q.type)}};
    if (!q.description.empty()) p["description"] = q.description;
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<OrderedJson> RequestBodyJson(const Route& route) {
  if (route.streaming) {
    OrderedJson binary = {{"schema", {{"type", "string"}, {"format", "binary"}}}};
    return OrderedJson{{"required", true},
                       {"description", "the raw bytes, streamed"},
                       {"content", {{"application/octet-stream", std::move(binary)}}}};
  }
  if (!route.doc.body) return std::nullopt;
  const RequestBody& body = *route.doc.body;
  OrderedJson schema = ObjectSchema(body.fields, !body.any_keys);
  schema["title"] = body.what;
  return OrderedJson{{"required", body.required},
                     {"content", {{"application/json", {{"schema", std::move(schema)}}}}}};
}

OrderedJson ErrorResponse(const char* description) {
  return {
      {"description", description},
      {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
}

OrderedJson Responses(const Route& route) {
  const RouteDoc& doc = route.doc;
  OrderedJson success = {{"description", doc.success.empty() ? "success" : doc.success}};
  const std::string type = doc.success_type.empty() ? "application/json" : doc.success_type;
  OrderedJson schema = {{"type", type == "application/json" ? "object" : "string"}};
  success["content"][type] = {{"schema", std::move(schema)}};
  OrderedJson out = {{std::to_string(doc.success_status), std::move(success)}};
  if (doc.body || !doc.query.empty() || route.streaming)
    out["400"] = ErrorResponse("the request is invalid (the message names what)");
  if (!route.public_route) {
    out["401"] = ErrorResponse("no valid token or session");
    out["403"] = ErrorResponse("the caller's role is below the one this needs");
  }
  if (!PathParams(route.pattern).empty()) out["404"] = ErrorResponse("no such resource");
  out["default"] = ErrorResponse("an error: {error: {code, message}}");
  return out;
}

// Bearer token, or the browser session's cookie (plus its CSRF header on
// requests that change something).
OrderedJson Security(const Route& route) {
  if (route.public_route) return OrderedJson::array();
  OrderedJson session = {{"sessionCookie", OrderedJson::array()}};
  if (route.method != "GET") session["csrfHeader"] = OrderedJson::array();
  return OrderedJson::array({{{"bearerToken", OrderedJson::array()}}, std::move(session)});
}

OrderedJson Operation(const Route& route, std::set<std::string>& operation_ids) {
  const RouteDoc& doc = route.doc;
  const std::string role = route.public_route ? "public" : RoleName(route.min_role);
  std::string id = OperationId(route.method, route.pattern);
  for (int n = 2; !operation_ids.insert(id).second; ++n)
    id = OperationId(route.method, route.pattern) + "_" + std::to_string(n);
  std::string description = doc.description;
  if (!description.empty()) description += "\n\n";
  description += route.public_route ? std::string("No authentication needed.")
                                    : "Needs the role " + role + " or above.";
  OrderedJson op = {
      {"operationId", id},
      {"tags", OrderedJson::array({doc.tag.empty() ? std::string("Other") : doc.tag})},
      {"summary", doc.summary.empty() ? route.method + " " + route.pattern : doc.summary},
      {"description", description},
      {"x-reprise-role", role},
      {"security", Security(route)},
      {"responses", Responses(route)}};
  OrderedJson params = Parameters(route);
  if (!params.empty()) op["parameters"] = std::move(params);
  if (auto body = RequestBodyJson(route)) op["requestBody"] = std::move(*body);
  return op;
}

OrderedJson Components() {
  OrderedJson error = {
      {"type", "object"},
      {"required", {"error"}},
      {"properties",
       {{"error",
         {{"type", "object"},
          {"required", {"code", "message"}},
          {"properties",
           {{"code", {{"type", "string"}, {"description", "e.g. invalid_argument, not_found"}}},
            {"message",
             {{"type", "string"}, {"description", "what went wrong, for people"}}}}}}}}}};
  return {{"schemas", {{"Error", error}}},
          {"securitySchemes",
           {{"bearerToken",
             {{"type", "http"},
              {"scheme", "bearer"},
              {"description", "an API token (Authorization: Bearer <token>)"}}},
            {"sessionCookie",
             {{"type", "apiKey"},
              {"in", "cookie"},
              {"name", "reprise_session"},
              {"description", "the web UI's session, from POST /api/v1/session"}}},
            {"csrfHeader",
             {{"type", "apiKey"},
              {"in", "header"},
              {"name", "X-CSRF-Token"},
              {"description", "the session's csrf_token; needed with the cookie on changes"}}}}}};
}

}  // namespace

std::string OpenApiDocument(const std::vector<Route>& routes, std::string_view version) {
  OrderedJson paths = OrderedJson::object();
  OrderedJson tags = OrderedJson::array();
  std::set<std::string> seen_tags;
  std::set<std::string> operation_ids;
  for (const auto& route : routes) {
    std::string method;
    for (char c : route.method) method += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    paths[route.pattern][method] = Operation(route, operation_ids);
    const std::string tag = route.doc.tag.empty() ? "Other" : route.doc.tag;
    if (seen_tags.insert(tag).second) tags.push_back({{"name", tag}});
  }
  OrderedJson doc = {
      {"openapi", "3.1.0"},
      {"info",
       {{"title", "Reprise API"},
        {"version", std::string(version)},
        {"description",
         "Release orchestration: applications, releases, immutable builds, deployments "
         "and agents. Errors answer {\"error\": {\"code\", \"message\"}}."}}},
      {"servers", OrderedJson::array({{{"url", "/"}}})},
      {"tags", std::move(tags)},
      {"paths", std::move(paths)},
      {"components", Components()}};
  return doc.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

void AddOpenApiRoute(std::vector<Route>& routes, std::string_view version) {
  auto document = std::make_shared<std::string>();
  routes.push_back(
      Public(Get("/api/v1/openapi.json", Role::kViewer,
                 {.summary = "This API's OpenAPI 3.1 description",
                  .tag = "Meta",
                  .success = "the OpenAPI document, generated from the route table"},
                 [document](HttpRequest&) { return HttpResponse::Json(200, *document); })));
  *document = OpenApiDocument(routes, version);
}

}  // namespace reprise
