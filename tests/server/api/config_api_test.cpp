// Configuration through the API: global variables (the outermost scope of a
// deployment), sensitive values sent back masked, the application spec as
// text, and what an admin needs to enroll an agent. Real server on port 0,
// real SQLite file.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/support/seed.h"

namespace reprise::testing {

using nlohmann::json;

namespace {


std::string ErrorMessage(const HttpResult& r) { return Body(r)["error"].value("message", ""); }

// A column of one row as the server stored it (to see values the API masks).
std::string Stored(const TestServer& server, const std::string& sql) {
  SQLite::Database db((server.data_dir() / "reprise.db").string(), SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  REQUIRE(q.executeStep());
  return q.getColumn(0).getString();
}

// The environment Integration (with `env_body`) and its target int-web.
void SeedIntegration(HttpClient& admin, const std::string& env_body) {
  REQUIRE(admin.Put("/api/v1/environments/Integration", env_body).status == 200);
  REQUIRE(admin
              .Put("/api/v1/targets/int-web",
                   R"({"environment":"Integration","agent":"a1","path":"/srv/int"})")
              .status == 200);
}

// `head` (e.g. variables), then one stage on int-web whose plan only logs
// `message`: it needs no agent.
std::string LogOnlySpec(const std::string& head, const std::string& message) {
  return head + R"(pipeline:
  - stage: Integration
    environment: Integration
    targets: [int-web]
    plan: show
plans:
  show: |
    - log: ")" +
         message + "\"\n";
}

void SeedLogApp(HttpClient& admin) {
  SeedIntegration(admin, R"({"variables":{"Region":"env-eu"}})");
  auto app = admin.Put("/api/v1/applications/logger",
                       LogOnlySpec("", "region=$Region only-global=$OnlyGlobal token=$Token"),
                       "application/yaml");
  REQUIRE_MESSAGE(app.status == 200, app.body);
  REQUIRE(admin.Post("/api/v1/applications/logger/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post("/api/v1/applications/logger/releases/1.0/builds", "{}").status == 201);
}

// Deploys build 1 of `logger` to Integration and returns its log text once final.
std::string DeployAndReadLog(HttpClient& admin) {
  auto dep = admin.Post("/api/v1/applications/logger/releases/1.0/builds/1/deploy",
                        R"({"stage":"Integration"})");
  REQUIRE_MESSAGE(dep.status == 202, dep.body);
  const std::string path = "/api/v1/deployments/" + std::to_string(Body(dep)["id"].get<int64_t>());
  json d;
  REQUIRE(WaitUntil([&] {
    d = Body(admin.Get(path));
    return d.value("status", "") == "succeeded" || d.value("status", "") == "failed";
  }));
  REQUIRE_MESSAGE(d["status"] == "succeeded", d.dump());
  // Log lines are written by the engine's journal, possibly just after the status.
  std::string text;
  const bool logged = WaitUntil([&] {
    text.clear();
    const json log = Body(admin.Get(path + "/log"));
    for (const auto& line : log["lines"]) text += line["text"].get<std::string>() + "\n";
    return text.find("region=") != std::string::npos;
  });
  CHECK_MESSAGE(logged, text);
  return text;
}

}  // namespace

TEST_CASE("global variables: viewers read them masked, only admins replace them, audited") {
  TestServer server;
  auto admin = server.Admin();
  auto deployer = server.As(server.CreateUser("dana", "deployer"));

  auto empty = admin.Get("/api/v1/variables");
  REQUIRE(empty.status == 200);
  CHECK(Body(empty)["variables"] == json::object());

  const std::string body =
      R"({"variables":{"Region":"global-us","Token":{"value":"t0ps3cret","sensitive":true}}})";
  auto refused = deployer.Put("/api/v1/variables", body, "application/json");
  CHECK(refused.status == 403);

  auto put = admin.Put("/api/v1/variables", body, "application/json");
  REQUIRE_MESSAGE(put.status == 200, put.body);
  auto j = Body(put);
  CHECK(j["variables"]["Region"]["value"] == "global-us");
  CHECK(j["variables"]["Token"]["value"] == "******");
  CHECK(j["variables"]["Token"]["sensitive"] == true);
  CHECK(j["updated_by"] == "admin");
  CHECK(put.body.find("t0ps3cret") == std::string::npos);

  auto read = deployer.Get("/api/v1/variables");
  REQUIRE(read.status == 200);
  CHECK(read.body.find("t0ps3cret") == std::string::npos);
  CHECK(Body(read)["variables"]["Region"]["value"] == "global-us");

  auto audit = admin.Get("/api/v1/audit?action=variables.put");
  REQUIRE(audit.status == 200);
  REQUIRE(Body(audit)["items"].size() == 1);
  CHECK(Body(audit)["items"][0]["subject"] == "global");
  CHECK(audit.body.find("t0ps3cret") == std::string::npos);

  SUBCASE("bad input is refused naming what is wrong, and nothing changes") {
    auto bad_name =
        admin.Put("/api/v1/variables", R"({"variables":{"1x":"v"}})", "application/json");
    CHECK(bad_name.status == 400);
    CHECK(ErrorMessage(bad_name).find("'1x'") != std::string::npos);
    auto builtin =
        admin.Put("/api/v1/variables", R"({"variables":{"TargetName":"v"}})", "application/json");
    CHECK(builtin.status == 400);
    auto unknown = admin.Put("/api/v1/variables", R"({"vars":{}})", "application/json");
    CHECK(unknown.status == 400);
    CHECK(ErrorMessage(unknown).find("'vars'") != std::string::npos);
    auto missing = admin.Put("/api/v1/variables", "{}", "application/json");
    CHECK(missing.status == 400);
    CHECK(ErrorMessage(missing).find("'variables'") != std::string::npos);
    auto not_json = admin.Put("/api/v1/variables", "{", "application/json");
    CHECK(not_json.status == 400);
    CHECK(Body(admin.Get("/api/v1/variables"))["variables"]["Region"]["value"] == "global-us");
  }
}

TEST_CASE("a global variable reaches a deployment's plan; the environment's overrides it") {
  TestServer server;
  auto admin = server.Admin();
  SeedLogApp(admin);
  auto put = admin.Put(
      "/api/v1/variables",
      R"({"variables":{"Region":"global-us","OnlyGlobal":"from-global","Token":{"value":"t0ps3cret","sensitive":true}}})",
      "application/json");
  REQUIRE_MESSAGE(put.status == 200, put.body);

  const std::string log = DeployAndReadLog(admin);
  CHECK_MESSAGE(log.find("region=env-eu only-global=from-global token=******") != std::string::npos,
                log);
  CHECK(log.find("t0ps3cret") == std::string::npos);

  // The execution context keeps the global scope, masked.
  auto list = Body(admin.Get("/api/v1/deployments?application=logger"));
  auto d =
      admin.Get("/api/v1/deployments/" + std::to_string(list["items"][0]["id"].get<int64_t>()));
  CHECK(d.body.find("from-global") != std::string::npos);
  CHECK(d.body.find("t0ps3cret") == std::string::npos);
}

TEST_CASE("a sensitive value sent back as the mask keeps the stored value") {
  TestServer server;
  auto admin = server.Admin();
  REQUIRE(admin
              .Put("/api/v1/environments/Production",
                   R"({"variables":{"Region":"eu","ApiKey":{"value":"s3cr3t","sensitive":true}}})")
              .status == 200);
  REQUIRE(
      admin
          .Put(
              "/api/v1/targets/prod-web",
              R"({"environment":"Production","agent":"a2","path":"/srv/prod","variables":{"Pin":{"value":"1234","sensitive":true}}})")
          .status == 200);
  REQUIRE(admin
              .Put("/api/v1/variables",
                   R"({"variables":{"Global":{"value":"g-secret","sensitive":true}}})",
                   "application/json")
              .status == 200);

  // What a form does: GET, change one thing, PUT the variables back.
  auto env = Body(admin.Get("/api/v1/environments/Production"));
  env["variables"]["Region"]["value"] = "us";
  auto again =
      admin.Put("/api/v1/environments/Production", json{{"variables", env["variables"]}}.dump());
  REQUIRE_MESSAGE(again.status == 200, again.body);
  CHECK(Body(again)["variables"]["ApiKey"]["value"] == "******");
  const std::string stored_env =
      Stored(server, "SELECT variables_json FROM environments WHERE name='Production'");
  CHECK_MESSAGE(stored_env.find("s3cr3t") != std::string::npos, stored_env);
  CHECK(stored_env.find("\"us\"") != std::string::npos);

  auto target = Body(admin.Get("/api/v1/targets/prod-web"));
  json t = {{"environment", "Production"},
            {"agent", "a3"},
            {"path", "/srv/prod"},
            {"variables", target["variables"]}};
  REQUIRE(admin.Put("/api/v1/targets/prod-web", t.dump()).status == 200);
  CHECK(Stored(server, "SELECT variables_json FROM targets WHERE name='prod-web'").find("1234") !=
        std::string::npos);

  auto globals = Body(admin.Get("/api/v1/variables"));
  REQUIRE(admin
              .Put("/api/v1/variables", json{{"variables", globals["variables"]}}.dump(),
                   "application/json")
              .status == 200);
  CHECK(Stored(server, "SELECT variables_json FROM global_variables").find("g-secret") !=
        std::string::npos);

  SUBCASE("a new value replaces it") {
    REQUIRE(admin
                .Put("/api/v1/environments/Production",
                     R"({"variables":{"ApiKey":{"value":"n3w","sensitive":true}}})")
                .status == 200);
    CHECK(Stored(server, "SELECT variables_json FROM environments WHERE name='Production'")
              .find("n3w") != std::string::npos);
  }
  SUBCASE("the mask for a name with no stored secret is refused") {
    auto r = admin.Put("/api/v1/environments/Production",
                       R"({"variables":{"Other":{"value":"******","sensitive":true}}})");
    CHECK(r.status == 400);
    CHECK(ErrorMessage(r).find("'Other'") != std::string::npos);
  }
  SUBCASE("the mask cannot make a stored secret not sensitive") {
    auto r = admin.Put("/api/v1/environments/Production",
                       R"({"variables":{"ApiKey":{"value":"******","sensitive":false}}})");
    CHECK(r.status == 400);
    CHECK(ErrorMessage(r).find("'ApiKey'") != std::string::npos);
    CHECK(Stored(server, "SELECT variables_json FROM environments WHERE name='Production'")
              .find("s3cr3t") != std::string::npos);
  }
}

TEST_CASE("the application spec as text: masked, saved back unchanged, errors at line:column") {
  TestServer server;
  auto admin = server.Admin();
  SeedIntegration(admin, "{}");
  const std::string spec =
      LogOnlySpec("variables:\n  DbPassword: { value: \"hunter2\", sensitive: true }\n", "hello");
  REQUIRE(admin.Put("/api/v1/applications/shop", spec, "application/yaml").status == 200);

  auto app = admin.Get("/api/v1/applications/shop");
  REQUIRE(app.status == 200);
  CHECK(app.body.find("hunter2") == std::string::npos);
  const std::string text = Body(app)["spec_text"].get<std::string>();
  CHECK(text.find("DbPassword: { value: \"******\", sensitive: true }") != std::string::npos);

  auto saved = admin.Put("/api/v1/applications/shop", text, "application/yaml");
  REQUIRE_MESSAGE(saved.status == 200, saved.body);
  CHECK(Body(saved)["spec_version"] == 2);
  CHECK(Stored(server, "SELECT spec_json FROM applications WHERE name='shop'").find("hunter2") !=
        std::string::npos);

  auto bad = admin.Put("/api/v1/applications/shop",
                       "pipeline:\n  - stage: Integration\n    environmnt: Integration\n",
                       "application/yaml");
  CHECK(bad.status == 400);
  CHECK_MESSAGE(ErrorMessage(bad).rfind("spec:3:", 0) == 0, ErrorMessage(bad));

  auto viewer = server.As(server.CreateUser("vera", "viewer"));
  CHECK(viewer.Get("/api/v1/applications/shop").body.find("hunter2") == std::string::npos);
  CHECK(viewer.Put("/api/v1/applications/shop", text, "application/yaml").status == 403);
}

TEST_CASE("a secret that also stands elsewhere in the spec is never saved back as the mask") {
  TestServer server;
  auto admin = server.Admin();
  SeedIntegration(admin, "{}");
  // The secret's value also stands literally in the plan: the text shows
  // the mask there too, and saving that text back would change the plan.
  const std::string spec = LogOnlySpec(
      "variables:\n  Token: { value: \"s3cr3t-value\", sensitive: true }\n", "s3cr3t-value");
  REQUIRE(admin.Put("/api/v1/applications/shop", spec, "application/yaml").status == 200);
  const std::string text = Body(admin.Get("/api/v1/applications/shop"))["spec_text"];
  CHECK(text.find("s3cr3t-value") == std::string::npos);
  auto saved = admin.Put("/api/v1/applications/shop", text, "application/yaml");
  REQUIRE_MESSAGE(saved.status == 400, saved.body);
  CHECK_MESSAGE(ErrorMessage(saved).find("******") != std::string::npos, ErrorMessage(saved));
  // Nothing was written.
  CHECK(Body(admin.Get("/api/v1/applications/shop"))["spec_version"] == 1);
}

TEST_CASE("enrollment info names the agents' address and what they pin; admins only") {
  TestServer server;
  auto admin = server.Admin();
  auto info = admin.Get("/api/v1/agents/enrollment-info");
  REQUIRE_MESSAGE(info.status == 200, info.body);
  auto j = Body(info);
  CHECK(j["listening"] == true);
  CHECK(j["port"] == server.agent_port());
  CHECK(j["address"] == "127.0.0.1:" + std::to_string(server.agent_port()));
  CHECK(j["tls"] == false);  // the test server's agents speak plain TCP on loopback
  CHECK(j["fingerprint"] == "");
  auto viewer = server.As(server.CreateUser("vera", "viewer"));
  CHECK(viewer.Get("/api/v1/agents/enrollment-info").status == 403);
  CHECK(server.Anonymous().Get("/api/v1/agents/enrollment-info").status == 401);
}

TEST_CASE("enrollment info with TLS gives the certificate fingerprint the agent pins") {
  TempDir temp;
  ServerOptions o;  // TLS for agents on every interface (the defaults), ports chosen by the OS
  o.data_dir = temp.path() / "data";
  o.http_port = 0;
  o.agent_port = 0;
  o.admin_token = kAdminToken;
  o.quiet = true;
  ServerApp app(o);
  REQUIRE(app.Start().ok());
  HttpClient admin("127.0.0.1", app.http_port());
  admin.set_token(kAdminToken);
  auto j = Body(admin.Get("/api/v1/agents/enrollment-info"));
  CHECK(j["tls"] == true);
  CHECK(j["port"] == app.agent_port());
  CHECK(j["address"] == "");  // every interface: the page uses the host it was loaded from
  CHECK(!app.agent_cert_fingerprint().empty());
  CHECK(j["fingerprint"] == app.agent_cert_fingerprint());
  app.Stop();
}

}  // namespace reprise::testing
