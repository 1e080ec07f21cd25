// Authentication and authorization across every endpoint of the route table.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <regex>

#include "tests/support/test_server.h"

namespace reprise::testing {

using nlohmann::json;

namespace {

// Fills "{param}" with a plausible value so the route matches.
std::string Concrete(const std::string& pattern) {
  static const std::regex param(R"(\{([a-z]+)\})");
  std::string out;
  std::sregex_iterator it(pattern.begin(), pattern.end(), param), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += pattern.substr(last, it->position() - last);
    std::string name = (*it)[1];
    out += name == "n" || name == "id" ? "1" : (name == "rel" ? "1.0" : "x" + name);
    last = it->position() + it->length();
  }
  return out + pattern.substr(last);
}

int64_t AuditCount(const TestServer& server) {
  auto r = server.Admin().Get("/api/v1/audit?limit=1000");
  REQUIRE(r.status == 200);
  return static_cast<int64_t>(json::parse(r.body)["items"].size());
}

}  // namespace

TEST_CASE("every endpoint but health needs a valid token; a viewer cannot change anything") {
  TestServer server;
  std::string viewer = server.CreateUser("vera", "viewer");
  int64_t audit_before = AuditCount(server);
  auto routes = server.Routes();
  REQUIRE(routes.size() > 10);
  int mutating = 0;
  for (const auto& route : routes) {
    std::string path = Concrete(route.pattern);
    CAPTURE(route.method);
    CAPTURE(path);
    auto anonymous = server.Anonymous();
    auto wrong = server.As("rpr_not-a-real-token");
    auto as_viewer = server.As(viewer);
    auto send = [&](HttpClient& c) {
      return route.method == "GET" ? c.Get(path) : c.Send(route.method, path, "{}");
    };
    if (route.public_route) {
      // Only the health check, the API description and the login form are open to everyone.
      bool allowed = route.pattern == "/api/v1/health" || route.pattern == "/api/v1/openapi.json" ||
                     (route.pattern == "/api/v1/session" && route.method == "POST");
      CHECK(allowed);
      if (route.pattern == "/api/v1/health") CHECK(send(anonymous).status == 200);
      continue;
    }
    auto none = send(anonymous);
    CHECK(none.status == 401);
    CHECK(json::parse(none.body)["error"]["code"] == "unauthenticated");
    CHECK(send(wrong).status == 401);
    // Reading with a body (a preview) and ending one's own session are not changes.
    bool read_only = route.pattern.ends_with("/preview") ||
                     (route.pattern == "/api/v1/session" && route.method == "DELETE");
    if (route.method != "GET" && !read_only) {
      ++mutating;
      CHECK(route.min_role > 0);
      auto refused = send(as_viewer);
      CHECK(refused.status == 403);
      CHECK(json::parse(refused.body)["error"]["code"] == "permission_denied");
    } else if (route.min_role == 0) {
      CHECK(send(as_viewer).status != 403);
    } else {
      // Reads above the viewer's role (the audit log, users) are refused too.
      CHECK(send(as_viewer).status == 403);
    }
  }
  CHECK(mutating >= 6);
  CHECK(AuditCount(server) == audit_before);
}

TEST_CASE("every endpoint refuses the role just below the one it needs") {
  TestServer server;
  const char* kRoles[] = {"viewer", "deployer", "release-manager", "admin"};
  std::vector<std::string> tokens;
  for (const char* role : kRoles) tokens.push_back(server.CreateUser(std::string("u-") + role, role));
  int checked = 0;
  for (const auto& route : server.Routes()) {
    if (route.public_route || route.min_role <= 0) continue;
    std::string path = Concrete(route.pattern);
    CAPTURE(route.method);
    CAPTURE(path);
    auto below = server.As(tokens[route.min_role - 1]);
    auto r = route.method == "GET" ? below.Get(path) : below.Send(route.method, path, "{}");
    CHECK(r.status == 403);
    CHECK(json::parse(r.body)["error"]["code"] == "permission_denied");
    ++checked;
  }
  CHECK(checked >= 10);
}

TEST_CASE("roles are ordered: a deployer creates builds but cannot edit environments") {
  TestServer server;
  std::string deployer = server.CreateUser("dana", "deployer");
  auto admin = server.Admin();
  REQUIRE(admin.Put("/api/v1/environments/Integration", "{}").status == 200);
  REQUIRE(admin.Put("/api/v1/targets/int-web",
                    R"({"environment":"Integration","agent":"a","path":"/srv/x"})")
              .status == 200);
  REQUIRE(admin.Put("/api/v1/applications/app",
                    "pipeline:\n  - {stage: I, environment: Integration, targets: [int-web], "
                    "plan: p}\nplans:\n  p: |\n    - log: hi\n",
                    "application/yaml")
              .status == 200);
  auto c = server.As(deployer);
  CHECK(c.Put("/api/v1/environments/Other", "{}").status == 403);
  CHECK(c.Put("/api/v1/applications/app", "x: 1", "application/yaml").status == 403);
  CHECK(c.Post("/api/v1/applications/app/releases", R"({"number":"1"})").status == 201);
  CHECK(c.Post("/api/v1/applications/app/releases/1/builds", "{}").status == 201);
  CHECK(c.Get("/api/v1/audit").status == 403);
  auto me = json::parse(c.Get("/api/v1/me").body);
  CHECK(me["user"] == "dana");
  CHECK(me["role"] == "deployer");
}

TEST_CASE("tokens are shown once and only their hash is stored") {
  TestServer server;
  std::string token = server.CreateUser("tom", "viewer");
  CHECK(token.size() >= 64);
  CHECK(server.As(token).Get("/api/v1/me").status == 200);
  // The token does not appear anywhere in the database file.
  auto db = ReadFile(server.data_dir() / "reprise.db");
  CHECK(db.find(token) == std::string::npos);
  auto dup = server.Admin().Post("/api/v1/users", R"({"name":"tom","role":"viewer"})");
  CHECK(dup.status == 409);
  auto bad_role = server.Admin().Post("/api/v1/users", R"({"name":"x","role":"god"})");
  CHECK(bad_role.status == 400);
}

TEST_CASE("the bootstrap token is generated into DATA/admin.token with mode 0600") {
  TempDir dir;
  ServerOptions o;
  o.data_dir = dir.path() / "data";
  o.http_port = 0;
  o.quiet = true;
  std::string token;
  {
    ServerApp app(o);
    REQUIRE(app.Start().ok());
    auto file = app.admin_token_file();
    REQUIRE(file == o.data_dir / "admin.token");
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    token = ReadFile(file);
    while (!token.empty() && token.back() == '\n') token.pop_back();
    HttpClient c("127.0.0.1", app.http_port());
    c.set_token(token);
    CHECK(c.Get("/api/v1/me").status == 200);
    app.Stop();
  }
  ServerApp again(o);  // the same token keeps working after a restart
  REQUIRE(again.Start().ok());
  HttpClient c("127.0.0.1", again.http_port());
  c.set_token(token);
  CHECK(c.Get("/api/v1/me").status == 200);
}

}  // namespace reprise::testing
