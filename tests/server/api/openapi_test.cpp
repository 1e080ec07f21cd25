// GET /api/v1/openapi.json against a real server: an OpenAPI 3.1 document
// that lists every route of the route table, and every operation it lists
// is served (the router knows it: no "no such endpoint", no 405).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/support/test_server.h"

namespace reprise::testing {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return s;
}

// The "{x}" names of a pattern, in order.
std::vector<std::string> PathParams(const std::string& pattern) {
  static const std::regex param(R"(\{([a-z_]+)\})");
  std::vector<std::string> out;
  for (std::sregex_iterator it(pattern.begin(), pattern.end(), param), end; it != end; ++it)
    out.push_back((*it)[1]);
  return out;
}

// Fills every "{x}" with a value that names nothing stored ("1" for numbers).
std::string Concrete(std::string pattern) {
  for (const auto& name : PathParams(pattern)) {
    const std::string value = name == "n" || name == "id" || name == "rid" ? "1" : "no-" + name;
    pattern.replace(pattern.find("{" + name + "}"), name.size() + 2, value);
  }
  return pattern;
}

json FetchDocument(const TestServer& server) {
  auto r = server.Anonymous().Get("/api/v1/openapi.json");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].find("application/json") == 0);
  json doc = json::parse(r.body, nullptr, false);
  REQUIRE(doc.is_object());
  return doc;
}

// Every {"$ref": "#/a/b"} inside `node` names something in `doc`.
void CheckRefs(const json& doc, const json& node) {
  if (node.is_object()) {
    if (auto ref = node.find("$ref"); ref != node.end()) {
      const std::string text = ref->get<std::string>();
      REQUIRE(text.rfind("#/", 0) == 0);
      CHECK_MESSAGE(doc.contains(json::json_pointer(text.substr(1))), text);
    }
    for (const auto& [_, v] : node.items()) CheckRefs(doc, v);
  } else if (node.is_array()) {
    for (const auto& v : node) CheckRefs(doc, v);
  }
}

const std::set<std::string> kMethods = {"get", "put", "post", "patch", "delete"};

}  // namespace

TEST_CASE("the OpenAPI document is served without a token and is OpenAPI 3.1 in structure") {
  TestServer server;
  json doc = FetchDocument(server);
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["info"]["title"].is_string());
  CHECK(!doc["info"]["version"].get<std::string>().empty());
  REQUIRE(doc["paths"].is_object());
  REQUIRE(doc["components"]["securitySchemes"].is_object());
  const json& schemes = doc["components"]["securitySchemes"];
  CHECK(schemes["bearerToken"]["scheme"] == "bearer");
  CHECK(schemes["sessionCookie"]["in"] == "cookie");
  std::set<std::string> operation_ids;
  int operations = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    CHECK(path.rfind("/", 0) == 0);
    for (const auto& [method, op] : item.items()) {
      CAPTURE(method);
      CAPTURE(path);
      REQUIRE(kMethods.count(method) == 1);
      ++operations;
      CHECK(operation_ids.insert(op["operationId"].get<std::string>()).second);
      CHECK(!op["summary"].get<std::string>().empty());
      CHECK(op["tags"].size() == 1);
      CHECK(op["x-reprise-role"].is_string());
      REQUIRE(op["responses"].is_object());
      CHECK(!op["responses"].empty());
      for (const auto& [code, response] : op["responses"].items())
        CHECK(response["description"].is_string());
      // Every {x} of the path is a required path parameter, and nothing else is.
      std::set<std::string> declared;
      for (const auto& p : op.value("parameters", json::array())) {
        CHECK((p["in"] == "path" || p["in"] == "query"));
        if (p["in"] == "path") {
          CHECK(p["required"] == true);
          declared.insert(p["name"].get<std::string>());
        }
      }
      auto expected = PathParams(path);
      CHECK(declared == std::set<std::string>(expected.begin(), expected.end()));
      for (const auto& requirement : op["security"])
        for (const auto& [scheme, _] : requirement.items()) CHECK(schemes.contains(scheme));
      if (op.contains("requestBody")) CHECK(!op["requestBody"]["content"].empty());
    }
  }
  CHECK(operations > 40);
  CheckRefs(doc, doc);
  // The health check and the document itself are public; a user list is not.
  CHECK(doc["paths"]["/api/v1/health"]["get"]["security"] == json::array());
  CHECK(doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == json::array());
  CHECK(doc["paths"]["/api/v1/users"]["get"]["x-reprise-role"] == "admin");
  CHECK(!doc["paths"]["/api/v1/users"]["get"]["security"].empty());
}

TEST_CASE("request bodies carry the schema their handlers check") {
  TestServer server;
  json doc = FetchDocument(server);
  const json& deploy =
      doc["paths"]["/api/v1/applications/{app}/releases/{rel}/builds/{n}/deploy"]["post"];
  const json& schema = deploy["requestBody"]["content"]["application/json"]["schema"];
  CHECK(schema["additionalProperties"] == false);
  CHECK(schema["required"] == json::array({"stage"}));
  CHECK(schema["properties"]["force"]["type"] == "boolean");
  CHECK(schema["properties"]["variables"]["additionalProperties"]["properties"]["value"]["type"] ==
        "string");
  // A field the document does not list is refused, with the list it gives.
  auto refused = server.Admin().Post("/api/v1/users", R"({"name":"a","role":"viewer","x":1})");
  CHECK(refused.status == 400);
  CHECK(refused.body.find("unknown field 'x' in user (expected: name, role, password)") !=
        std::string::npos);
  const json& users = doc["paths"]["/api/v1/users"]["post"];
  json listed = json::array();
  for (const auto& [name, _] :
       users["requestBody"]["content"]["application/json"]["schema"]["properties"].items())
    listed.push_back(name);
  CHECK(listed.size() == 3);
  // The artifact upload streams raw bytes.
  const json& upload =
      doc["paths"]["/api/v1/applications/{app}/releases/{rel}/builds/{n}/artifacts/{name}"]["put"];
  CHECK(upload["requestBody"]["content"].contains("application/octet-stream"));
  CHECK(doc["paths"]["/api/v1/deployments"]["get"]["parameters"].size() > 5);
}

TEST_CASE("every route of the route table is documented, and nothing else") {
  TestServer server;
  json doc = FetchDocument(server);
  std::set<std::string> in_table;
  for (const auto& route : server.Routes()) {
    const std::string key = route.method + " " + route.pattern;
    CAPTURE(key);
    in_table.insert(key);
    REQUIRE(doc["paths"].contains(route.pattern));
    CHECK(doc["paths"][route.pattern].contains(Lower(route.method)));
    const json& op = doc["paths"][route.pattern][Lower(route.method)];
    CHECK(op["security"].empty() == route.public_route);
    // Declared with its documentation: a summary of its own and a group.
    CHECK(op["summary"] != key);
    CHECK_FALSE(op["tags"].empty());
  }
  CHECK(in_table.count("GET /metrics") == 1);
  CHECK(in_table.count("POST /api/v1/session") == 1);
  CHECK(in_table.count("POST /api/v1/agents/enrollment-tokens") == 1);
  for (const auto& [path, item] : doc["paths"].items())
    for (const auto& [method, _] : item.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(c - 32);
      const std::string key = upper + " " + path;
      CHECK_MESSAGE(in_table.count(key) == 1, key);
    }
}

TEST_CASE("every documented operation is served: the router never answers 404 or 405") {
  TestServer server;
  json doc = FetchDocument(server);
  auto admin = server.Admin();
  int called = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, _] : item.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(c - 32);
      const std::string concrete = Concrete(path);
      CAPTURE(upper);
      CAPTURE(concrete);
      // The session's own logout would end nothing here (the admin uses a token).
      auto r = upper == "GET" ? admin.Get(concrete) : admin.Send(upper, concrete, "{}");
      ++called;
      REQUIRE(r.status != 0);
      CHECK(r.status != 405);
      if (r.status == 404) {
        // A missing resource, said by the handler in the API's error shape;
        // never the router's "no such endpoint".
        json body = json::parse(r.body, nullptr, false);
        REQUIRE(body.is_object());
        CHECK(body["error"]["code"] == "not_found");
        CHECK(body["error"]["message"].get<std::string>().find("no such endpoint") ==
              std::string::npos);
      }
    }
  }
  CHECK(called > 40);
  // The router's own answer for an unknown path, for contrast.
  auto unknown = admin.Get("/api/v1/no-such-thing");
  CHECK(unknown.status == 404);
  CHECK(unknown.body.find("no such endpoint") != std::string::npos);
}

}  // namespace reprise::testing
