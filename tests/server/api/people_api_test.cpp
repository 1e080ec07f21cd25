// Users, API tokens, the audit log and "waiting for my approval" through the
// API of a real server: role changes, disabling (sessions and tokens refused
// at once), password resets, token expiry, last use and revocation, audit
// filters and the CSV export.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/support/seed.h"

namespace reprise::testing {

using nlohmann::json;

namespace {


std::string Message(const HttpResult& r) { return Body(r)["error"]["message"].get<std::string>(); }

// A user with a password; returns the session cookie and CSRF token of a login.
struct WebLogin {
  std::string cookie;
  std::string csrf;
};

WebLogin CreateAndLogIn(TestServer& server, const std::string& name, const std::string& role) {
  const std::string password = name + "-password-1";
  auto created = server.Admin().Post(
      "/api/v1/users", json{{"name", name}, {"role", role}, {"password", password}}.dump());
  REQUIRE(created.status == 201);
  auto r = server.Anonymous().Post("/api/v1/session",
                                   json{{"user", name}, {"password", password}}.dump());
  REQUIRE(r.status == 200);
  std::string set_cookie = r.headers["set-cookie"];
  return {set_cookie.substr(0, set_cookie.find(';')), Body(r)["csrf_token"].get<std::string>()};
}

HttpResult Patch(TestServer& server, const std::string& user, const json& body) {
  return server.Admin().Send("PATCH", "/api/v1/users/" + user, body.dump());
}

json Audit(TestServer& server, const std::string& query) {
  auto r = server.Admin().Get("/api/v1/audit" + query);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return Body(r)["items"];
}

json Tokens(TestServer& server, const std::string& user) {
  auto r = server.Admin().Get("/api/v1/users/" + user + "/tokens");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return Body(r)["items"];
}

// Application "app" with one stage `stage` (in an environment of the same
// name, on a target whose agent never connects), the stage line's `extra`
// (e.g. gates) and `plan`, and its release 1.0 with build 1.
void SeedOneStageApp(HttpClient& admin, const std::string& stage, const std::string& extra,
                     const std::string& plan) {
  REQUIRE(admin.Put("/api/v1/environments/" + stage, "{}").status == 200);
  REQUIRE(admin
              .Put("/api/v1/targets/t1",
                   R"({"environment":")" + stage + R"(","agent":"nowhere","path":"/srv/x"})")
              .status == 200);
  std::string spec = "pipeline:\n  - {stage: " + stage + ", environment: " + stage +
                     ", targets: [t1], plan: p" + extra + "}\nplans:\n  p: |\n" + plan;
  auto put = admin.Put("/api/v1/applications/app", spec, "application/yaml");
  REQUIRE_MESSAGE(put.status == 200, put.body);
  REQUIRE(admin.Post("/api/v1/applications/app/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post("/api/v1/applications/app/releases/1.0/builds", "{}").status == 201);
}

}  // namespace

TEST_CASE("an admin changes a user's role and password; each change is audited") {
  TestServer server;
  auto login = CreateAndLogIn(server, "paula", "viewer");
  auto changed = Patch(server, "paula", {{"role", "deployer"}});
  REQUIRE_MESSAGE(changed.status == 200, changed.body);
  CHECK(Body(changed)["role"] == "deployer");
  CHECK(Body(changed)["disabled"] == false);
  // The role applies to the session at once.
  auto me = server.Anonymous().Get("/api/v1/me", {{"Cookie", login.cookie}});
  CHECK(Body(me)["role"] == "deployer");

  REQUIRE(Patch(server, "paula", {{"password", "a-new-password"}}).status == 200);
  auto old_pw = server.Anonymous().Post(
      "/api/v1/session", json{{"user", "paula"}, {"password", "paula-password-1"}}.dump());
  CHECK(old_pw.status == 401);
  auto new_pw = server.Anonymous().Post(
      "/api/v1/session", json{{"user", "paula"}, {"password", "a-new-password"}}.dump());
  CHECK(new_pw.status == 200);

  auto entries = Audit(server, "?action=user.update&subject=paula");
  REQUIRE(entries.size() == 2);
  CHECK(entries[0]["summary"] == "password reset");
  CHECK(entries[1]["summary"] == "role viewer -> deployer");
  CHECK(entries[0]["actor"] == "admin");
  CHECK(server.Admin().Get("/api/v1/audit").body.find("a-new-password") == std::string::npos);

  SUBCASE("bad changes are refused naming what was wrong; nothing changes") {
    CHECK(Message(Patch(server, "paula", {{"role", "boss"}})).find("role 'boss'") !=
          std::string::npos);
    CHECK(Message(Patch(server, "paula", {{"disabled", "yes"}})).find("'disabled'") !=
          std::string::npos);
    CHECK(Message(Patch(server, "paula", {{"password", "short"}})).find("8 characters") !=
          std::string::npos);
    CHECK(Message(Patch(server, "paula", {{"nickname", "p"}})).find("nickname") !=
          std::string::npos);
    CHECK(Patch(server, "nobody", {{"role", "viewer"}}).status == 404);
    CHECK(Body(server.Admin().Get("/api/v1/users/paula"))["role"] == "deployer");
    CHECK(Audit(server, "?action=user.update&subject=paula").size() == 2);
  }
  SUBCASE("the last enabled admin can be neither demoted nor disabled") {
    auto demote = Patch(server, "admin", {{"role", "viewer"}});
    CHECK(demote.status == 409);
    CHECK(Message(demote).find("last enabled admin") != std::string::npos);
    CHECK(Patch(server, "admin", {{"disabled", true}}).status == 409);
    REQUIRE(Patch(server, "paula", {{"role", "admin"}}).status == 200);
    CHECK(Patch(server, "admin", {{"disabled", true}}).status == 200);
  }
}

TEST_CASE("a disabled user's session and token are refused at once; enabling restores them") {
  TestServer server;
  auto login = CreateAndLogIn(server, "dora", "deployer");
  auto token_r = server.Admin().Post("/api/v1/users/dora/tokens", R"({"name":"ci"})");
  REQUIRE(token_r.status == 201);
  std::string token = Body(token_r)["token"];
  const std::map<std::string, std::string> cookie = {{"Cookie", login.cookie}};
  REQUIRE(server.Anonymous().Get("/api/v1/me", cookie).status == 200);
  REQUIRE(server.As(token).Get("/api/v1/me").status == 200);

  auto disabled = Patch(server, "dora", {{"disabled", true}});
  REQUIRE_MESSAGE(disabled.status == 200, disabled.body);
  CHECK(Body(disabled)["disabled"] == true);
  auto by_session = server.Anonymous().Get("/api/v1/applications", cookie);
  CHECK(by_session.status == 401);
  CHECK(Message(by_session).find("disabled") != std::string::npos);
  auto by_token = server.As(token).Get("/api/v1/applications");
  CHECK(by_token.status == 401);
  CHECK(Message(by_token).find("disabled") != std::string::npos);
  // A change with the session's CSRF token is refused too.
  CHECK(server.Anonymous()
            .Send("PUT", "/api/v1/environments/x", "{}", "application/json",
                  {{"Cookie", login.cookie}, {"X-CSRF-Token", login.csrf}})
            .status == 401);
  // Logging in again is refused, with the right password only saying why.
  auto relogin = server.Anonymous().Post(
      "/api/v1/session", json{{"user", "dora"}, {"password", "dora-password-1"}}.dump());
  CHECK(relogin.status == 403);
  CHECK(Message(relogin).find("disabled") != std::string::npos);
  auto guess = server.Anonymous().Post("/api/v1/session",
                                       json{{"user", "dora"}, {"password", "guessing-1"}}.dump());
  CHECK(guess.status == 401);
  CHECK(Audit(server, "?action=user.update&subject=dora")[0]["summary"] == "disabled");

  REQUIRE(Patch(server, "dora", {{"disabled", false}}).status == 200);
  CHECK(server.Anonymous().Get("/api/v1/me", cookie).status == 200);
  CHECK(server.As(token).Get("/api/v1/me").status == 200);
  CHECK(Audit(server, "?action=user.update&subject=dora")[0]["summary"] == "enabled");
}

TEST_CASE("tokens: listed with name, created, last used and expiry; never the secret; revoked") {
  FakeClock clock(FromUnixMillis(1'800'000'000'000));
  ServerOptions options;
  options.clock = &clock;
  TestServer server(options);
  server.CreateUser("tom", "deployer");  // and its token "api"
  auto created = server.Admin().Post("/api/v1/users/tom/tokens",
                                     R"({"name":"deploy-bot","expires_in_seconds":3600})");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  json c = Body(created);
  std::string secret = c["token"];
  CHECK(secret.rfind("rpr_", 0) == 0);
  CHECK(c["name"] == "deploy-bot");
  CHECK(c["expires_at"] == "2027-01-15T09:00:00.000Z");
  CHECK(c["last_used_at"].is_null());
  const int64_t id = c["id"];

  json tokens = Tokens(server, "tom");
  REQUIRE(tokens.size() == 2);
  CHECK(tokens[0]["name"] == "api");
  CHECK(tokens[0]["expires_at"].is_null());
  CHECK(tokens[1]["id"] == id);
  CHECK(tokens[1]["created_at"] == "2027-01-15T08:00:00.000Z");
  CHECK(tokens[1]["expired"] == false);
  std::string listing = server.Admin().Get("/api/v1/users/tom/tokens").body;
  CHECK(listing.find(secret) == std::string::npos);
  CHECK(listing.find("hash") == std::string::npos);
  CHECK(server.Admin().Get("/api/v1/audit").body.find(secret) == std::string::npos);

  SUBCASE("the last use is recorded, at most once a minute") {
    REQUIRE(server.As(secret).Get("/api/v1/me").status == 200);
    CHECK(Tokens(server, "tom")[1]["last_used_at"] == "2027-01-15T08:00:00.000Z");
    clock.Advance(std::chrono::seconds(30));
    REQUIRE(server.As(secret).Get("/api/v1/me").status == 200);
    CHECK(Tokens(server, "tom")[1]["last_used_at"] == "2027-01-15T08:00:00.000Z");
    clock.Advance(std::chrono::seconds(31));
    REQUIRE(server.As(secret).Get("/api/v1/me").status == 200);
    CHECK(Tokens(server, "tom")[1]["last_used_at"] == "2027-01-15T08:01:01.000Z");
    CHECK(Tokens(server, "tom")[0]["last_used_at"].is_null());
  }
  SUBCASE("an expired token is refused, saying so") {
    clock.Advance(std::chrono::seconds(3599));
    CHECK(server.As(secret).Get("/api/v1/me").status == 200);
    clock.Advance(std::chrono::seconds(1));
    auto refused = server.As(secret).Get("/api/v1/me");
    CHECK(refused.status == 401);
    CHECK(Message(refused).find("expired") != std::string::npos);
    CHECK(Tokens(server, "tom")[1]["expired"] == true);
  }
  SUBCASE("a revoked token is refused at once; the revocation is audited") {
    auto revoked =
        server.Admin().Send("DELETE", "/api/v1/users/tom/tokens/" + std::to_string(id), "");
    REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
    CHECK(server.As(secret).Get("/api/v1/me").status == 401);
    CHECK(Tokens(server, "tom").size() == 1);
    auto again =
        server.Admin().Send("DELETE", "/api/v1/users/tom/tokens/" + std::to_string(id), "");
    CHECK(again.status == 404);
    CHECK(server.Admin().Send("DELETE", "/api/v1/users/tom/tokens/abc", "").status == 400);
    auto entries = Audit(server, "?action=token.revoke");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0]["subject"] == "tom");
    CHECK(entries[0]["summary"] == "token 'deploy-bot' (#" + std::to_string(id) + ")");
  }
  SUBCASE("another user's token id is not found under this user") {
    server.CreateUser("ann", "viewer");
    CHECK(server.Admin()
              .Send("DELETE", "/api/v1/users/ann/tokens/" + std::to_string(id), "")
              .status == 404);
    CHECK(server.As(secret).Get("/api/v1/me").status == 200);
  }
  SUBCASE("a bad lifetime is refused naming the field") {
    for (const char* body : {R"({"expires_in_seconds":0})", R"({"expires_in_seconds":-5})",
                             R"({"expires_in_seconds":"1h"})", R"({"expires_in_seconds":1.5})"}) {
      CAPTURE(body);
      auto r = server.Admin().Post("/api/v1/users/tom/tokens", body);
      CHECK(r.status == 400);
      CHECK(Message(r).find("expires_in_seconds") != std::string::npos);
    }
    CHECK(Tokens(server, "tom").size() == 2);
  }
}

TEST_CASE("the audit log filters by actor, action, subject and time; CSV exports every match") {
  FakeClock clock(FromUnixMillis(1'800'000'000'000));  // 2027-01-15T08:00:00Z
  ServerOptions options;
  options.clock = &clock;
  TestServer server(options);
  std::string ada = server.CreateUser("ada", "admin");
  clock.Advance(std::chrono::hours(1));
  // 150 entries by ada: more than a page of the JSON list.
  for (int i = 0; i < 150; ++i)
    REQUIRE(server.As(ada).Put("/api/v1/environments/env-" + std::to_string(i), "{}").status ==
            200);

  CHECK(Audit(server, "?actor=ada&limit=1000").size() == 150);
  CHECK(Audit(server, "?actor=admin&limit=1000").size() == 2);  // ada's user and token
  CHECK(Audit(server, "?actor=ada&action=user").empty());
  CHECK(Audit(server, "?subject=env-7").size() == 1);
  CHECK(Audit(server, "?to=2027-01-15T09:00:00Z&limit=1000").size() == 2);
  CHECK(Audit(server, "?from=2027-01-15T09:00:00Z&limit=1000").size() == 150);
  CHECK(Audit(server, "?from=2027-01-15T10:00:00%2B01:00&limit=1000").size() == 150);
  CHECK(Audit(server, "?from=2027-01-15T09:30:00Z").empty());

  auto bad = server.Admin().Get("/api/v1/audit?from=yesterday");
  CHECK(bad.status == 400);
  CHECK(Message(bad).find("'from'") != std::string::npos);
  CHECK(server.Admin().Get("/api/v1/audit?format=xml").status == 400);
  CHECK(server.Admin()
            .Get("/api/v1/audit?from=2027-01-15T10:00:00Z&to=2027-01-15T09:00:00Z")
            .status == 400);
  CHECK(server.Admin().Get("/api/v1/audit?who=ada").status == 400);

  auto csv = server.Admin().Get("/api/v1/audit?actor=ada&format=csv");
  REQUIRE(csv.status == 200);
  CHECK(csv.headers["content-type"].find("text/csv") == 0);
  CHECK(csv.headers["content-disposition"].find("audit-log.csv") != std::string::npos);
  size_t lines = 0;
  for (char ch : csv.body) lines += ch == '\n';
  CHECK(lines == 151);  // the header and every match, not one page
  CHECK(csv.body.rfind("id,at,actor,action,subject,summary\r\n", 0) == 0);
  CHECK(csv.body.find(",ada,environment.put,env-149,") != std::string::npos);

  SUBCASE("a field with a comma or a quote is quoted") {
    REQUIRE(server.Admin().Post("/api/v1/users/ada/tokens", R"({"name":"a, \"b\""})").status ==
            201);
    auto one = server.Admin().Get("/api/v1/audit?action=token.create&subject=ada&format=csv");
    CHECK(one.body.find(R"("token 'a, ""b""' (#)") != std::string::npos);
  }
}

TEST_CASE("waiting for my approval: the stage's role, not my own request, not decided yet") {
  TestServer server;
  auto admin = server.Admin();
  SeedOneStageApp(admin, "Production",
                  ", gates: { approvals: { count: 1, role: release-manager } } ",
                  "    - log: hi\n");
  std::string rita = server.CreateUser("rita", "release-manager");
  std::string rob = server.CreateUser("rob", "release-manager");
  std::string dan = server.CreateUser("dan", "deployer");
  auto requested = server.As(rita).Post("/api/v1/applications/app/releases/1.0/builds/1/deploy",
                                        R"({"stage":"Production"})");
  REQUIRE_MESSAGE(requested.status == 202, requested.body);
  REQUIRE(Body(requested)["status"] == "waiting");
  const int64_t id = Body(requested)["id"];
  auto mine = [&](const std::string& token) {
    return Body(server.As(token).Get("/api/v1/me/approvals"));
  };

  CHECK(mine(rita)["count"] == 0);  // her own request
  CHECK(mine(dan)["count"] == 0);   // below the stage's role
  CHECK(mine(rob)["count"] == 1);
  CHECK(mine(rob)["deployment_ids"] == json::array({id}));
  CHECK(Body(admin.Get("/api/v1/me/approvals"))["count"] == 1);
  REQUIRE(
      server.As(rob).Post("/api/v1/deployments/" + std::to_string(id) + "/approve", "{}").status ==
      200);
  CHECK(mine(rob)["count"] == 0);
  CHECK(Body(admin.Get("/api/v1/me/approvals"))["count"] == 0);  // the one approval is in
}

TEST_CASE("waiting for me includes a plan paused at a manual step my role may continue") {
  TestServer server;
  auto admin = server.Admin();
  SeedOneStageApp(admin, "Checks", "",
                  "    - manual: { message: \"look\", role: release-manager }\n"
                  "    - log: done\n");
  std::string rob = server.CreateUser("rob", "release-manager");
  std::string dan = server.CreateUser("dan", "deployer");
  auto requested =
      admin.Post("/api/v1/applications/app/releases/1.0/builds/1/deploy", R"({"stage":"Checks"})");
  REQUIRE_MESSAGE(requested.status == 202, requested.body);
  const int64_t id = Body(requested)["id"];
  const std::string path = "/api/v1/deployments/" + std::to_string(id);
  REQUIRE(WaitUntil([&] { return Body(admin.Get(path)).contains("manual"); }));
  auto mine = [&](const std::string& token) {
    return Body(server.As(token).Get("/api/v1/me/approvals"));
  };
  CHECK(mine(dan)["count"] == 0);  // below the step's role
  CHECK(mine(rob)["count"] == 1);
  CHECK(mine(rob)["manual_deployment_ids"] == json::array({id}));
  REQUIRE(server.As(rob).Post(path + "/continue", "{}").status == 200);
  REQUIRE(WaitUntil([&] { return Body(admin.Get(path))["status"] == "succeeded"; }));
  CHECK(mine(rob)["count"] == 0);
}

}  // namespace reprise::testing
