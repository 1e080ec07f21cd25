// The core HTTP API against a real server on port 0 with a real SQLite file.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/seed.h"
#include "tests/support/test_server.h"

namespace reprise::testing {

using nlohmann::json;

namespace {


std::string ErrorCode(const HttpResult& r) {
  auto j = Body(r);
  if (j.is_discarded() || !j.contains("error")) return "<no error body: " + r.body + ">";
  return j["error"]["code"].get<std::string>();
}

std::string ErrorMessage(const HttpResult& r) {
  auto j = Body(r);
  if (j.is_discarded() || !j.contains("error")) return "";
  return j["error"]["message"].get<std::string>();
}

const char* kSpec = R"(
variables:
  Port: "8080"
  DbPassword: { value: "hunter2", sensitive: true }
pipeline:
  - stage: Integration
    environment: Integration
    targets: [int-web]
    plan: deploy-web
  - stage: Production
    environment: Production
    targets: [prod-web]
    plan: deploy-web
    protected: true
plans:
  deploy-web: |
    - log: "Deploying $ApplicationName"
    - deploy-artifact: { artifact: web }
)";

// Environments, targets and the application `shop` with release 1.0.
void Seed(HttpClient& admin) {
  REQUIRE(admin.Put("/api/v1/environments/Integration", "{}").status == 200);
  REQUIRE(admin
              .Put("/api/v1/environments/Production",
                   R"({"variables":{"Region":"eu","ApiKey":{"value":"s3cr3t","sensitive":true}}})")
              .status == 200);
  PutTarget(admin, "int-web", "Integration", "a1", "/srv/int");
  PutTarget(admin, "prod-web", "Production", "a2", "/srv/prod");
  PutApplicationWithRelease(admin, "shop", kSpec);
}

// A server seeded by Seed and its admin client.
struct SeededServer {
  SeededServer() { Seed(admin); }
  TestServer server;
  HttpClient admin = server.Admin();
};

int64_t AuditCount(HttpClient& admin) {
  auto r = admin.Get("/api/v1/audit?limit=1000");
  REQUIRE(r.status == 200);
  return static_cast<int64_t>(Body(r)["items"].size());
}

}  // namespace

TEST_CASE("health is public and reports version and store") {
  TestServer server;
  auto r = server.Anonymous().Get("/api/v1/health");
  REQUIRE(r.status == 200);
  auto j = Body(r);
  CHECK(j["status"] == "ok");
  CHECK(j["version"].is_string());
  CHECK(j["store"]["status"] == "ok");
}

TEST_CASE_FIXTURE(SeededServer,
                  "environments and targets round-trip; sensitive values never come back") {
  auto env = admin.Get("/api/v1/environments/Production");
  REQUIRE(env.status == 200);
  auto j = Body(env);
  CHECK(j["variables"]["Region"]["value"] == "eu");
  CHECK(j["variables"]["ApiKey"]["value"] == "******");
  CHECK(env.body.find("s3cr3t") == std::string::npos);
  auto target = Body(admin.Get("/api/v1/targets/prod-web"));
  CHECK(target["environment"] == "Production");
  CHECK(target["path"] == "/srv/prod");
  auto app = admin.Get("/api/v1/applications/shop");
  REQUIRE(app.status == 200);
  CHECK(app.body.find("hunter2") == std::string::npos);
  CHECK(Body(app)["spec"]["variables"]["DbPassword"]["value"] == "******");
  auto list = Body(admin.Get("/api/v1/environments?limit=1"));
  CHECK(list["items"].size() == 1);
  CHECK(list["next_offset"] == 1);
}

TEST_CASE_FIXTURE(SeededServer, "invalid specs are refused with 400 naming the problem") {
  struct Case {
    const char* name;
    std::string spec;
    const char* expect;
  };
  const std::string base_plans = "plans:\n  p: |\n    - log: hi\n";
  std::vector<Case> cases = {
      {"unknown environment",
       "pipeline:\n  - {stage: A, environment: Nowhere, targets: [int-web], plan: p}\n" +
           base_plans,
       "Nowhere"},
      {"unknown target",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [ghost], plan: p}\n" +
           base_plans,
       "ghost"},
      {"target in another environment",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [prod-web], plan: p}\n" +
           base_plans,
       "prod-web"},
      {"duplicate stage",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [int-web], plan: p}\n"
       "  - {stage: A, environment: Integration, targets: [int-web], plan: p}\n" +
           base_plans,
       "A"},
      {"missing plan",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [int-web], plan: nope}\n" +
           base_plans,
       "nope"},
      {"malformed YAML", "pipeline: [\n  - {stage: A\n", ":"},
      // Plans are parsed in full when the spec is stored.
      {"unknown operation in a plan",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [int-web], plan: p}\n"
       "plans:\n  p: |\n    - log: hi\n    - deploy-artefact: { artifact: web }\n",
       "deploy-artefact"},
      {"unknown key of an operation",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [int-web], plan: p}\n"
       "plans:\n  p: |\n    - exec: { command: ls, timout: 5 }\n",
       "timout"},
      {"bad expression in a plan",
       "pipeline:\n  - {stage: A, environment: Integration, targets: [int-web], plan: p}\n"
       "plans:\n  p: |\n    - if: { condition: \"$A ==\", then: [ { log: x } ] }\n",
       "plan 'p' line 1 column 20"},
      {"empty", "", "empty"},
  };
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    auto r = admin.Put("/api/v1/applications/bad", c.spec, "application/yaml");
    CHECK(r.status == 400);
    CHECK(ErrorCode(r) == "invalid_argument");
    CHECK_MESSAGE(ErrorMessage(r).find(c.expect) != std::string::npos, ErrorMessage(r));
  }
  auto malformed =
      admin.Put("/api/v1/applications/bad", "pipeline: [\n  - {stage: A\n", "application/yaml");
  // Malformed YAML names a line and a column.
  CHECK(ErrorMessage(malformed).find("spec:") != std::string::npos);
  CHECK(admin.Get("/api/v1/applications/bad").status == 404);
}

TEST_CASE_FIXTURE(SeededServer, "the spec is accepted as JSON too") {
  // A target of its own: int-web belongs to shop.
  REQUIRE(admin
              .Put("/api/v1/targets/api-web",
                   R"({"environment":"Integration","agent":"a1","path":"/srv/api"})")
              .status == 200);
  json spec = {{"pipeline",
                {{{"stage", "Integration"},
                  {"environment", "Integration"},
                  {"targets", {"api-web"}},
                  {"plan", "p"}}}},
               {"plans", {{"p", "- log: hello\n"}}}};
  auto r = admin.Put("/api/v1/applications/api", spec.dump(), "application/json");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(Body(r)["spec_version"] == 1);
  CHECK(Body(admin.Put("/api/v1/applications/api", spec.dump()))["spec_version"] == 2);
}

TEST_CASE_FIXTURE(SeededServer, "releases: unique numbers, snapshot taken at creation") {
  auto dup = admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})");
  CHECK(dup.status == 409);
  CHECK(ErrorCode(dup) == "already_exists");
  auto bad = admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.x"})");
  CHECK(bad.status == 400);
  CHECK(ErrorMessage(bad).find("1.x") != std::string::npos);
  // Change the plan after the release: the release keeps its snapshot.
  std::string changed = kSpec;
  changed.replace(changed.find("Deploying"), 9, "Shipping!");
  REQUIRE(admin.Put("/api/v1/applications/shop", changed, "application/yaml").status == 200);
  auto rel = Body(admin.Get("/api/v1/applications/shop/releases/1.0"));
  CHECK(rel["spec_version"] == 1);
  CHECK(rel["snapshot"]["plans"]["deploy-web"].get<std::string>().find("Deploying") !=
        std::string::npos);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.1"})").status == 201);
  auto rel2 = Body(admin.Get("/api/v1/applications/shop/releases/1.1"));
  CHECK(rel2["spec_version"] == 2);
  CHECK(rel2["snapshot"]["plans"]["deploy-web"].get<std::string>().find("Shipping!") !=
        std::string::npos);
  CHECK(admin.Post("/api/v1/applications/ghost/releases", R"({"number":"1"})").status == 404);
}

TEST_CASE_FIXTURE(SeededServer,
                  "20 concurrent build creations through the API yield exactly 1..20") {
  std::vector<int64_t> numbers(20, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      auto c = server.Admin();
      auto r = c.Post("/api/v1/applications/shop/releases/1.0/builds", "{}");
      if (r.status == 201) numbers[i] = Body(r)["number"].get<int64_t>();
    });
  for (auto& t : threads) t.join();
  std::set<int64_t> got(numbers.begin(), numbers.end());
  REQUIRE(got.size() == 20);
  CHECK(*got.begin() == 1);
  CHECK(*got.rbegin() == 20);
  auto b = Body(admin.Get("/api/v1/applications/shop/releases/1.0/builds/7"));
  CHECK(b["number"] == 7);
  CHECK(b["artifacts"].is_array());
}

TEST_CASE_FIXTURE(SeededServer, "malformed or oversized bodies are refused and change nothing") {
  int64_t audit_before = AuditCount(admin);
  auto malformed = admin.Put("/api/v1/environments/Staging", "{\"variables\": ");
  CHECK(malformed.status == 400);
  CHECK(ErrorCode(malformed) == "invalid_argument");
  auto not_object = admin.Put("/api/v1/environments/Staging", "[1,2]");
  CHECK(not_object.status == 400);
  auto unknown_field = admin.Put("/api/v1/environments/Staging", R"({"varaibles":{}})");
  CHECK(unknown_field.status == 400);
  CHECK(ErrorMessage(unknown_field).find("varaibles") != std::string::npos);
  auto bad_var = admin.Put("/api/v1/environments/Staging", R"({"variables":{"1x":"y"}})");
  CHECK(bad_var.status == 400);
  CHECK(ErrorMessage(bad_var).find("1x") != std::string::npos);
  auto builtin = admin.Put("/api/v1/environments/Staging", R"({"variables":{"BuildNumber":"9"}})");
  CHECK(builtin.status == 400);
  auto missing = admin.Put("/api/v1/targets/t", R"({"environment":"Integration","agent":"a"})");
  CHECK(missing.status == 400);
  CHECK(ErrorMessage(missing).find("path") != std::string::npos);
  auto relative =
      admin.Put("/api/v1/targets/t", R"({"environment":"Integration","agent":"a","path":"srv"})");
  CHECK(relative.status == 400);
  std::string huge = "{\"variables\":{\"A\":\"" + std::string(2 << 20, 'x') + "\"}}";
  auto too_large = admin.Put("/api/v1/environments/Staging", huge);
  CHECK(too_large.status == 413);
  CHECK(ErrorCode(too_large) == "too_large");
  auto build_malformed = admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{");
  CHECK(build_malformed.status == 400);
  CHECK(admin.Get("/api/v1/environments/Staging").status == 404);
  CHECK(admin.Get("/api/v1/targets/t").status == 404);
  CHECK(Body(admin.Get("/api/v1/applications/shop/releases/1.0/builds"))["items"].empty());
  CHECK(AuditCount(admin) == audit_before);
}

TEST_CASE("unknown endpoints and methods get JSON errors") {
  TestServer server;
  auto admin = server.Admin();
  auto nf = admin.Get("/api/v1/nope");
  CHECK(nf.status == 404);
  CHECK(ErrorCode(nf) == "not_found");
  auto method = admin.Send("DELETE", "/api/v1/environments", "");
  CHECK(method.status == 405);
  CHECK(admin.Get("/api/v1/environments/Nowhere").status == 404);
  CHECK(admin.Get("/api/v1/applications/shop/releases/1.0/builds/abc").status == 400);
}

TEST_CASE_FIXTURE(SeededServer, "every change is audited with who, what and when") {
  auto r = admin.Get("/api/v1/audit?limit=1000");
  REQUIRE(r.status == 200);
  auto items = Body(r)["items"];
  std::multiset<std::string> actions;
  for (const auto& e : items) {
    actions.insert(e["action"].get<std::string>());
    CHECK(e["actor"] == "admin");
    CHECK_FALSE(e["at"].get<std::string>().empty());
  }
  CHECK(actions.count("environment.put") == 2);
  CHECK(actions.count("target.put") == 2);
  CHECK(actions.count("application.put") == 1);
  CHECK(actions.count("release.create") == 1);
  // Secrets are not in the audit log.
  CHECK(r.body.find("s3cr3t") == std::string::npos);
  auto filtered = Body(admin.Get("/api/v1/audit?action=target."));
  CHECK(filtered["items"].size() == 2);
}

TEST_CASE_FIXTURE(SeededServer, "a change whose audit entry cannot be written is not made") {
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  // The audit log refuses some actions, as a full or failing disk would.
  SQLite::Database db((server.data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE);
  db.exec(
      "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action IN "
      "('environment.put', 'build.create', 'deployment.request', 'user.create') "
      "BEGIN SELECT RAISE(ABORT, 'the audit log refused the entry'); END");
  const int64_t audits = AuditCount(admin);

  auto env = admin.Put("/api/v1/environments/Staging", "{}");
  CHECK(env.status >= 400);
  CHECK(ErrorMessage(env).find("the audit log refused the entry") != std::string::npos);
  CHECK(admin.Get("/api/v1/environments/Staging").status == 404);

  auto build = admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}");
  CHECK(build.status >= 400);
  CHECK(ErrorMessage(build).find("the audit log refused the entry") != std::string::npos);
  CHECK(admin.Get("/api/v1/applications/shop/releases/1.0/builds/2").status == 404);

  auto deploy = admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                           R"({"stage":"Integration"})");
  CHECK(deploy.status >= 400);
  CHECK(ErrorMessage(deploy).find("the audit log refused the entry") != std::string::npos);
  CHECK(Body(admin.Get("/api/v1/deployments"))["items"].empty());

  auto user = admin.Post("/api/v1/users", R"({"name":"eve","role":"admin"})");
  CHECK(user.status >= 400);
  CHECK(ErrorMessage(user).find("the audit log refused the entry") != std::string::npos);
  CHECK(admin.Post("/api/v1/users/eve/tokens", "{}").status == 404);
  CHECK(AuditCount(admin) == audits);

  // With the audit log writable again, the same changes go through, audited.
  db.exec("DROP TRIGGER refuse_audit");
  CHECK(admin.Put("/api/v1/environments/Staging", "{}").status == 200);
  auto again = admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}");
  REQUIRE(again.status == 201);
  CHECK(Body(again)["number"] == 2);  // build 2 was not taken by the failed attempt
  CHECK(AuditCount(admin) == audits + 2);
}

TEST_CASE("the demo is seeded idempotently and survives restarts") {
  ServerOptions options;
  options.demo = true;
  TestServer server(options);
  auto admin = server.Admin();
  auto apps = Body(admin.Get("/api/v1/applications"));
  REQUIRE(apps["items"].size() == 1);
  CHECK(apps["items"][0]["name"] == "shop");
  auto stages = apps["items"][0]["spec"]["pipeline"];
  REQUIRE(stages.size() == 3);
  CHECK(stages[0]["stage"] == "Integration");
  CHECK(stages[2]["stage"] == "Production");
  auto builds = Body(admin.Get("/api/v1/applications/shop/releases/1.0.0/builds"));
  CHECK(builds["items"].size() == 2);
  server.Restart();
  auto admin2 = server.Admin();
  CHECK(Body(admin2.Get("/api/v1/applications/shop/releases/1.0.0/builds"))["items"].size() == 2);
  CHECK(Body(admin2.Get("/api/v1/applications/shop"))["spec_version"] == 1);
  CHECK(Body(admin2.Get("/api/v1/targets"))["items"].size() == 3);
}

}  // namespace reprise::testing
