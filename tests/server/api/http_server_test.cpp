// The HTTP transport under hostile or unusual clients: trickled headers,
// header and keep-alive deadlines, the connection cap, many live log streams,
// invalid UTF-8 anywhere in a request, and bodies sent without a length.
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/api/http_server.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

using nlohmann::json;

namespace {

std::string Get(const std::string& path, const std::string& token = "",
                const std::string& extra_headers = "") {
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  return req + extra_headers + "Connection: close\r\n\r\n";
}

// The JSON body of a raw response (discarded when it is not JSON).
json BodyOf(const std::string& response) {
  size_t start = response.find("\r\n\r\n");
  if (start == std::string::npos) return json::value_t::discarded;
  return json::parse(response.substr(start + 4), nullptr, false);
}

std::string ErrorMessageOf(const std::string& response) {
  json j = BodyOf(response);
  if (j.is_discarded() || !j.contains("error")) return "<no JSON error in: " + response + ">";
  return j["error"]["message"].get<std::string>();
}

// A server with one public route, for the transport's own limits.
struct PingServer {
  explicit PingServer(HttpServerOptions options) {
    options.routes.push_back({"GET", "/ping", Role::kViewer, true,
                              [](HttpRequest&) { return HttpResponse::Json(200, "{}"); }, nullptr});
    server = std::make_unique<HttpServer>(std::move(options));
    REQUIRE(server->Start().ok());
  }
  int port() const { return server->port(); }
  std::unique_ptr<HttpServer> server;
};

}  // namespace

TEST_CASE("connections trickling their headers do not stop health or the API from answering") {
  TestServer server;
  constexpr int kSlow = 80;  // more than the old thread-per-connection pool held
  std::vector<RawHttp> slow;
  slow.reserve(kSlow);
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back(server.port());
    REQUIRE(slow.back().connected());
    slow.back().Send("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    for (int round = 0; round < 60 && !stop; ++round) {
      for (auto& c : slow) c.Send("X-Slow-" + std::to_string(round) + ": 1\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  RawHttp health(server.port());
  health.Send(Get("/api/v1/health"));
  CHECK(health.ReadToEof(std::chrono::seconds(3)));
  CHECK(health.Status() == 200);
  RawHttp api(server.port());
  api.Send(Get("/api/v1/applications", kAdminToken));
  CHECK(api.ReadToEof(std::chrono::seconds(3)));
  CHECK(api.Status() == 200);
  stop = true;
  trickler.join();
}

TEST_CASE("a connection that never finishes its headers is closed at the header deadline") {
  HttpServerOptions options;
  options.header_timeout = std::chrono::milliseconds(200);
  PingServer ping(std::move(options));
  RawHttp stuck(ping.port());
  stuck.Send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n");  // no blank line, ever
  CHECK(stuck.ReadToEof());
  CHECK(stuck.received().find("200 OK") == std::string::npos);
  // A client that sends its request in time is served.
  RawHttp ok(ping.port());
  ok.Send(Get("/ping"));
  CHECK(ok.ReadToEof());
  CHECK(ok.Status() == 200);
}

TEST_CASE("keep-alive connections end after the idle timeout and after the request limit") {
  HttpServerOptions options;
  options.keep_alive_timeout = std::chrono::milliseconds(200);
  options.max_requests_per_connection = 3;
  PingServer ping(std::move(options));
  const std::string keep = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  RawHttp idle(ping.port());
  idle.Send(keep);
  CHECK(idle.ReadUntil("{}"));
  CHECK(idle.ReadToEof());  // idle past the keep-alive timeout: closed
  RawHttp busy(ping.port());
  busy.Send(keep + keep + keep + keep);
  CHECK(busy.ReadToEof());
  size_t answered = 0;
  for (size_t at = 0; (at = busy.received().find("HTTP/1.1 200", at)) != std::string::npos; ++at)
    ++answered;
  CHECK(answered == 3);
  CHECK(busy.received().find("Connection: close") != std::string::npos);
}

TEST_CASE("connections past the cap are refused with 503 and a reason") {
  HttpServerOptions options;
  options.max_connections = 4;
  PingServer ping(std::move(options));
  std::vector<RawHttp> held;
  for (int i = 0; i < 4; ++i) {
    held.emplace_back(ping.port());
    held.back().Send("GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    REQUIRE(held.back().ReadUntil("{}"));  // accepted and kept open
  }
  RawHttp refused(ping.port());
  refused.Send(Get("/ping"));
  CHECK(refused.ReadToEof());
  CHECK(refused.Status() == 503);
  CHECK(ErrorMessageOf(refused.received()).find("too many connections") != std::string::npos);
  held.front().Close();
  CHECK(WaitUntil([&] {
    RawHttp again(ping.port());
    again.Send(Get("/ping"));
    again.ReadToEof();
    return again.Status() == 200;
  }));
}

TEST_CASE("a hundred live log streams of one running deployment all receive every line") {
  TestServer server;
  auto admin = server.Admin();
  TempDir tmp;
  REQUIRE(admin.Put("/api/v1/environments/Production", "{}").status == 200);
  json t = {{"environment", "Production"}, {"agent", "local"}, {"path", tmp.path().string()}};
  REQUIRE(admin.Put("/api/v1/targets/prod-web", t.dump()).status == 200);
  constexpr int kLines = 20;
  std::string spec =
      "pipeline:\n  - {stage: Production, environment: Production, targets: [prod-web], plan: "
      "p}\nplans:\n  p: |\n    - manual: { message: \"wait here\" }\n";
  for (int i = 1; i <= kLines; ++i) spec += "    - log: \"line-" + std::to_string(i) + "\"\n";
  REQUIRE(admin.Put("/api/v1/applications/shop", spec, "application/yaml").status == 200);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  auto r = admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                      R"({"stage":"Production","force":true,"comment":"test"})");
  REQUIRE(r.status == 202);
  std::string id = std::to_string(json::parse(r.body)["id"].get<int64_t>());
  REQUIRE(WaitUntil(
      [&] { return json::parse(admin.Get("/api/v1/deployments/" + id).body).contains("manual"); }));

  constexpr int kClients = 100;
  std::vector<RawHttp> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(server.port());
    clients.back().Send(
        Get("/api/v1/deployments/" + id + "/log", kAdminToken, "Accept: text/event-stream\r\n"));
  }
  // Every client is streaming: it has the line that says the step waits.
  for (auto& c : clients) {
    REQUIRE(c.ReadUntil("wait here"));
    REQUIRE(c.Status() == 200);
  }
  REQUIRE(admin.Post("/api/v1/deployments/" + id + "/continue", "{}").status == 200);
  for (auto& c : clients) {
    CHECK(c.ReadUntil("event: end"));
    for (int i = 1; i <= kLines; ++i)
      CHECK(c.received().find("\"text\":\"line-" + std::to_string(i) + "\"") != std::string::npos);
    CHECK(c.received().find("succeeded") != std::string::npos);
  }
}

TEST_CASE("invalid UTF-8 anywhere in a request is a 400 naming where it was") {
  TestServer server;
  struct Case {
    const char* name;
    std::string request;
    const char* expect;
  };
  auto put_yaml = [](const std::string& body) {
    return "PUT /api/v1/applications/shop HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           std::string(kAdminToken) +
           "\r\nContent-Type: application/yaml\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  };
  auto post_json = [](const std::string& body) {
    return "POST /api/v1/applications/shop/releases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer " +
           std::string(kAdminToken) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  };
  std::vector<Case> cases = {
      {"a path without a token", Get("/%DD"), "path segment is not valid UTF-8"},
      {"a path parameter", Get("/api/v1/applications/%DD", kAdminToken),
       "path segment is not valid UTF-8"},
      {"raw bytes in the path", Get("/api/v1/applications/\xdd", kAdminToken),
       "path segment is not valid UTF-8"},
      {"a query parameter", Get("/api/v1/deployments?status=%DD", kAdminToken),
       "query parameter 'status' is not valid UTF-8"},
      {"a header", Get("/api/v1/health", "", "X-Note: \xdd\r\n"),
       "header 'x-note' is not valid UTF-8"},
      {"a YAML spec", put_yaml("pipeline: []\n# \xdd\n"), "request body is not valid UTF-8"},
      {"a release number", post_json("{\"number\":\"\xdd\"}"), "request body is not valid UTF-8"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    RawHttp conn(server.port());
    std::string response = conn.Exchange(c.request);
    CHECK(conn.Status() == 400);
    CHECK(ErrorMessageOf(response).find(c.expect) != std::string::npos);
    CHECK(response.find('\xdd') == std::string::npos);  // never echoed back
  }
}

TEST_CASE("a request without Content-Length and without chunked encoding has an empty body") {
  TestServer server;
  auto admin = server.Admin();
  REQUIRE(admin.Put("/api/v1/environments/Prod", "{}").status == 200);
  server.CreateUser("dan", "deployer");
  auto raw = [&](const std::string& method, const std::string& path, bool with_length) {
    RawHttp conn(server.port());
    conn.Exchange(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                  kAdminToken + "\r\n" + (with_length ? "Content-Length: 0\r\n" : "") +
                  "Connection: close\r\n\r\n");
    return conn.received();
  };
  RawHttp grant(server.port());
  std::string granted = raw("PUT", "/api/v1/environments/Prod/grants/dan/redeploy", false);
  CHECK(granted.rfind("HTTP/1.1 201", 0) == 0);
  for (const char* path : {"/api/v1/agents/x/approve", "/api/v1/targets/x/validate"}) {
    CAPTURE(path);
    std::string without = raw("POST", path, false);
    std::string with = raw("POST", path, true);
    CHECK(without.find("cut off") == std::string::npos);
    // The same answer as for an explicitly empty body.
    CHECK(without.substr(0, 12) == with.substr(0, 12));
    CHECK(BodyOf(without) == BodyOf(with));
  }
}

}  // namespace reprise::testing
