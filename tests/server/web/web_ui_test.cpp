// The web UI's server side against a real server: embedded static files with
// their security headers, password login, session cookies, CSRF and Origin.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/support/test_server.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

using nlohmann::json;

namespace {

struct Login {
  int status = 0;
  std::string cookie;  // "reprise_session=..."
  std::string set_cookie;
  std::string csrf;
  json body;
};

Login LogIn(TestServer& server, const std::string& user, const std::string& password,
            const std::map<std::string, std::string>& headers = {}) {
  auto c = server.Anonymous();
  auto r = c.Send("POST", "/api/v1/session", json{{"user", user}, {"password", password}}.dump(),
                  "application/json", headers);
  Login out;
  out.status = r.status;
  out.body = json::parse(r.body, nullptr, false);
  if (r.status == 200) {
    out.set_cookie = r.headers["set-cookie"];
    out.cookie = out.set_cookie.substr(0, out.set_cookie.find(';'));
    out.csrf = out.body["csrf_token"].get<std::string>();
  }
  return out;
}

void CreateUser(TestServer& server, const std::string& name, const std::string& role,
                const std::string& password) {
  auto r = server.Admin().Post("/api/v1/users",
                               json{{"name", name}, {"role", role}, {"password", password}}.dump());
  REQUIRE(r.status == 201);
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Host(const TestServer& server) { return "127.0.0.1:" + std::to_string(server.port()); }

}  // namespace

TEST_CASE("the UI is served from the binary with strict security headers") {
  TestServer server;
  auto c = server.Anonymous();
  auto index = c.Get("/");
  REQUIRE(index.status == 200);
  CHECK(index.headers["content-type"].starts_with("text/html"));
  CHECK(index.body.find("<title>Reprise</title>") != std::string::npos);
  const std::string csp = index.headers["content-security-policy"];
  CHECK(csp.find("script-src 'self'") != std::string::npos);
  CHECK(csp.find("style-src 'self'") != std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(csp.find("http") == std::string::npos);  // no CDN anywhere
  CHECK(index.headers["x-content-type-options"] == "nosniff");
  CHECK(index.headers["x-frame-options"] == "DENY");
  CHECK(index.headers["referrer-policy"] == "no-referrer");
  CHECK(index.headers["cache-control"] == "no-cache");

  SUBCASE("revalidation answers 304 for an unchanged file") {
    std::string etag = index.headers["etag"];
    REQUIRE(!etag.empty());
    auto again = c.Get("/", {{"If-None-Match", etag}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());
  }
  SUBCASE("scripts and styles have their content types") {
    auto js = c.Get("/js/app.js");
    CHECK(js.status == 200);
    CHECK(js.headers["content-type"].starts_with("text/javascript"));
    CHECK(js.headers["content-security-policy"] == csp);
    auto css = c.Get("/css/app.css");
    CHECK(css.status == 200);
    CHECK(css.headers["content-type"].starts_with("text/css"));
  }
  SUBCASE("unknown paths and traversal are 404, the API is not shadowed") {
    CHECK(c.Get("/nope.js").status == 404);
    CHECK(c.Get("/../CMakeLists.txt").status == 404);
    CHECK(c.Get("/js/../index.html").status == 404);
    CHECK(c.Get("/api/v1/applications").status == 401);
    CHECK(c.Send("POST", "/", "{}").status != 200);
  }
}

TEST_CASE("REPRISE_WEB_DIR serves the UI from disk for development, never outside it") {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "web" / "js");
  std::ofstream(dir.path() / "web" / "index.html") << "<!doctype html><title>dev copy</title>";
  std::ofstream(dir.path() / "web" / "js" / "app.js") << "export const x = 1;";
  std::ofstream(dir.path() / "secret.txt") << "not for the browser";
  std::ofstream(dir.path() / "web" / ".hidden") << "no";
  ::setenv("REPRISE_WEB_DIR", (dir.path() / "web").c_str(), 1);
  TestServer server;
  ::unsetenv("REPRISE_WEB_DIR");
  auto c = server.Anonymous();
  auto index = c.Get("/");
  CHECK(index.status == 200);
  CHECK(index.body.find("dev copy") != std::string::npos);
  CHECK(index.headers["cache-control"] == "no-store");
  CHECK(!index.headers["content-security-policy"].empty());
  auto js = c.Get("/js/app.js");
  CHECK(js.status == 200);
  CHECK(js.headers["content-type"].starts_with("text/javascript"));
  CHECK(c.Get("/../secret.txt").status == 404);
  CHECK(c.Get("/js/../../secret.txt").status == 404);
  CHECK(c.Get("/%2e%2e/secret.txt").status == 404);
  CHECK(c.Get("/.hidden").status == 404);
  CHECK(c.Get("/js").status == 404);  // a directory
}

TEST_CASE("every embedded page and script obeys the CSP: no inline script or style") {
  const char* src = std::getenv("REPRISE_SOURCE_DIR");
  REQUIRE(src != nullptr);
  const std::filesystem::path web = std::filesystem::path(src) / "web";
  REQUIRE(std::filesystem::exists(web / "index.html"));
  const std::regex inline_script(R"(<script(?![^>]*\bsrc=)[^>]*>)", std::regex::icase);
  const std::regex style_attr(R"(\sstyle\s*=)", std::regex::icase);
  const std::regex remote(R"((src|href)\s*=\s*["']?(https?:)?//)", std::regex::icase);
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(web)) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    if (ext != ".html" && ext != ".js") continue;
    ++files;
    std::string text = ReadFile(e.path());
    CAPTURE(e.path().string());
    if (ext == ".html") {
      CHECK_FALSE(std::regex_search(text, inline_script));
      CHECK(text.find("<style") == std::string::npos);
      CHECK_FALSE(std::regex_search(text, style_attr));
      CHECK_FALSE(std::regex_search(text, remote));
    } else {
      // Values reach the DOM as text, never as markup.
      CHECK(text.find("innerHTML") == std::string::npos);
      CHECK(text.find("insertAdjacentHTML") == std::string::npos);
      CHECK(text.find("document.write") == std::string::npos);
      CHECK(text.find("eval(") == std::string::npos);
    }
  }
  CHECK(files >= 3);
}

TEST_CASE("login with a password sets a strict session cookie; the session works like a token") {
  TestServer server;
  CreateUser(server, "alice", "deployer", "alice-password-1");

  SUBCASE("wrong password and unknown user get the same generic refusal") {
    auto wrong = LogIn(server, "alice", "not-her-password");
    auto unknown = LogIn(server, "mallory", "whatever-password");
    CHECK(wrong.status == 401);
    CHECK(unknown.status == 401);
    CHECK(wrong.body["error"]["code"] == "unauthenticated");
    CHECK(wrong.body["error"]["message"] == "invalid user name or password");
    CHECK(unknown.body == wrong.body);
  }
  SUBCASE("malformed logins are explained") {
    auto c = server.Anonymous();
    CHECK(c.Post("/api/v1/session", "not json").status == 400);
    auto extra = c.Post("/api/v1/session", R"({"user":"alice","password":"x","pasword":"y"})");
    CHECK(extra.status == 400);
    CHECK(extra.body.find("pasword") != std::string::npos);
    CHECK(c.Post("/api/v1/session", R"({"user":"alice"})").status == 400);
  }
  SUBCASE("a user without a password cannot log in") {
    server.CreateUser("robot", "deployer");  // token only
    CHECK(LogIn(server, "robot", "").status == 400);
    CHECK(LogIn(server, "robot", "anything-at-all").status == 401);
  }

  auto login = LogIn(server, "alice", "alice-password-1");
  REQUIRE(login.status == 200);
  CHECK(login.body["user"] == "alice");
  CHECK(login.body["role"] == "deployer");
  CHECK(login.csrf.size() == 64);
  CHECK(login.set_cookie.find("HttpOnly") != std::string::npos);
  CHECK(login.set_cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(login.set_cookie.find("Path=/") != std::string::npos);
  CHECK(login.set_cookie.find("Secure") == std::string::npos);  // plain HTTP here
  const std::string id = login.cookie.substr(login.cookie.find('=') + 1);
  CHECK(std::regex_match(id, std::regex("[0-9a-f]{64}")));  // 256 random bits
  // The password is never stored or logged in clear.
  auto audit = server.Admin().Get("/api/v1/audit?action=session");
  CHECK(audit.body.find("alice-password-1") == std::string::npos);
  CHECK(audit.body.find("session.login") != std::string::npos);

  auto c = server.Anonymous();
  const std::map<std::string, std::string> cookie = {{"Cookie", login.cookie}};
  auto info = c.Get("/api/v1/session", cookie);
  REQUIRE(info.status == 200);
  CHECK(json::parse(info.body)["csrf_token"] == login.csrf);
  CHECK(json::parse(info.body)["user"] == "alice");
  auto me = c.Get("/api/v1/me", cookie);
  CHECK(me.status == 200);
  CHECK(json::parse(me.body)["role"] == "deployer");
  CHECK(c.Get("/api/v1/applications", cookie).status == 200);

  SUBCASE("a forged or missing cookie is refused") {
    CHECK(c.Get("/api/v1/me", {{"Cookie", "reprise_session=" + std::string(64, 'a')}}).status ==
          401);
    CHECK(c.Get("/api/v1/me", {{"Cookie", "reprise_session=short"}}).status == 401);
    CHECK(c.Get("/api/v1/me").status == 401);
  }
  SUBCASE("a role still applies: a deployer cannot create users even with a valid CSRF token") {
    auto r = c.Send("POST", "/api/v1/users", R"({"name":"bob","role":"viewer"})",
                    "application/json", {{"Cookie", login.cookie}, {"X-CSRF-Token", login.csrf}});
    CHECK(r.status == 403);
    CHECK(json::parse(r.body)["error"]["message"].get<std::string>().find("admin") !=
          std::string::npos);
  }
  SUBCASE("the session ends with a restart (sessions live in memory)") {
    server.Restart();
    auto after = server.Anonymous().Get("/api/v1/me", cookie);
    CHECK(after.status == 401);
    CHECK(json::parse(after.body)["error"]["message"].get<std::string>().find("log in again") !=
          std::string::npos);
  }
}

TEST_CASE(
    "behind a TLS proxy (--secure-cookies) the session cookie is Secure and pages ask for HSTS") {
  ServerOptions options;
  options.secure_cookies = true;
  TestServer server(options);
  CreateUser(server, "sam", "deployer", "sam-password-1");
  Login login = LogIn(server, "sam", "sam-password-1");
  REQUIRE(login.status == 200);
  CHECK(login.set_cookie.find("; Secure") != std::string::npos);
  CHECK(login.set_cookie.find("HttpOnly") != std::string::npos);
  auto index = server.Anonymous().Get("/");
  REQUIRE(index.status == 200);
  CHECK(index.headers["strict-transport-security"] == "max-age=31536000");

  TestServer plain;
  CHECK(plain.Anonymous().Get("/").headers.count("strict-transport-security") == 0);
}

TEST_CASE("state-changing requests with a session need the CSRF token and a same Origin") {
  TestServer server;
  auto admin_password = ReadFile(server.data_dir() / "admin.password");
  while (!admin_password.empty() && admin_password.back() == '\n') admin_password.pop_back();
  auto login = LogIn(server, "admin", admin_password);
  REQUIRE(login.status == 200);
  CHECK(login.body["role"] == "admin");
  auto c = server.Anonymous();
  const std::string body = R"({"name":"bob","role":"viewer","password":"bob-password"})";
  auto post = [&](std::map<std::string, std::string> headers) {
    headers["Cookie"] = login.cookie;
    return c.Send("POST", "/api/v1/users", body, "application/json", headers);
  };

  auto no_token = post({});
  CHECK(no_token.status == 403);
  CHECK(json::parse(no_token.body)["error"]["code"] == "permission_denied");
  CHECK(json::parse(no_token.body)["error"]["message"].get<std::string>().find("X-CSRF-Token") !=
        std::string::npos);
  CHECK(post({{"X-CSRF-Token", std::string(64, '0')}}).status == 403);
  auto foreign = post({{"X-CSRF-Token", login.csrf}, {"Origin", "http://evil.example"}});
  CHECK(foreign.status == 403);
  CHECK(json::parse(foreign.body)["error"]["message"].get<std::string>().find("evil.example") !=
        std::string::npos);
  CHECK(post({{"X-CSRF-Token", login.csrf}, {"Sec-Fetch-Site", "cross-site"}}).status == 403);
  // Nothing was created by the refused requests.
  CHECK(server.Admin().Get("/api/v1/users").body.find("\"bob\"") == std::string::npos);

  auto same = post({{"X-CSRF-Token", login.csrf}, {"Origin", "http://" + Host(server)}});
  CHECK(same.status == 201);
  // Reads need no token.
  CHECK(c.Get("/api/v1/users", {{"Cookie", login.cookie}}).status == 200);
  // Another session's token does not fit this session.
  auto bob = LogIn(server, "bob", "bob-password");
  REQUIRE(bob.status == 200);
  CHECK(bob.body["role"] == "viewer");
  auto crossed = c.Send("POST", "/api/v1/users", R"({"name":"carl","role":"viewer"})",
                        "application/json", {{"Cookie", login.cookie}, {"X-CSRF-Token", bob.csrf}});
  CHECK(crossed.status == 403);
  // Bearer tokens need no CSRF token (not sent by browsers automatically).
  CHECK(server.Admin().Post("/api/v1/users", R"({"name":"carl","role":"viewer"})").status == 201);
}

TEST_CASE("logout ends the session and clears the cookie") {
  TestServer server;
  CreateUser(server, "alice", "viewer", "alice-password-1");
  auto login = LogIn(server, "alice", "alice-password-1");
  REQUIRE(login.status == 200);
  auto c = server.Anonymous();
  // Logout changes state: it needs the CSRF token too.
  CHECK(c.Send("DELETE", "/api/v1/session", "", "application/json", {{"Cookie", login.cookie}})
            .status == 403);
  auto out = c.Send("DELETE", "/api/v1/session", "", "application/json",
                    {{"Cookie", login.cookie}, {"X-CSRF-Token", login.csrf}});
  CHECK(out.status == 200);
  CHECK(out.headers["set-cookie"].find("Max-Age=0") != std::string::npos);
  CHECK(c.Get("/api/v1/session", {{"Cookie", login.cookie}}).status == 401);
  // A Bearer caller has no session to end.
  CHECK(server.Admin().Send("DELETE", "/api/v1/session", "").status == 400);
  // Two logins are two independent sessions.
  auto a = LogIn(server, "alice", "alice-password-1");
  auto b = LogIn(server, "alice", "alice-password-1");
  CHECK(a.cookie != b.cookie);
  CHECK(a.csrf != b.csrf);
}

TEST_CASE("repeated failed logins lock the user name out for a while from that address") {
  TestServer server;
  CreateUser(server, "alice", "viewer", "alice-password-1");
  for (int i = 0; i < 5; ++i) CHECK(LogIn(server, "alice", "wrong-password").status == 401);
  auto locked = LogIn(server, "alice", "alice-password-1");
  CHECK(locked.status == 429);
  CHECK(locked.body["error"]["message"].get<std::string>().find("try again") != std::string::npos);
  // Other users are not affected.
  CreateUser(server, "bob", "viewer", "bob-password-1");
  CHECK(LogIn(server, "bob", "bob-password-1").status == 200);
}

}  // namespace reprise::testing
