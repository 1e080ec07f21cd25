// The CLI's configuration, agent, administration and deployment-action
// commands against a real server with the demo application.
#include "tests/cli/cli_support.h"

namespace reprise::testing {

namespace {

int64_t IdOf(const RunResult& r) { return json::parse(r.out)["id"].get<int64_t>(); }

}  // namespace

TEST_CASE("environment, target, variables, app, release, build and artifact commands") {
  CliFixture f;
  auto envs = f.Run({"environment", "list"});
  CHECK(envs.code == 0);
  CHECK(Contains(envs.out, "NAME         UPDATED\nIntegration  "));
  auto env_set = f.Run(
      {"environment", "set", "Staging", "--var", "Region=eu", "--sensitive-var", "ApiKey=k-123"});
  CHECK(env_set.code == 0);
  CHECK(Contains(env_set.out, "name:       Staging\n"));
  auto env_json = f.Run({"environment", "show", "Staging", "--output", "json"});
  json env = json::parse(env_json.out);
  CHECK(env["variables"]["Region"]["value"] == "eu");
  CHECK(env["variables"]["ApiKey"]["value"] == "******");

  auto target = f.Run({"target", "set", "stage-web", "--environment", "Staging", "--agent", "local",
                       "--path", (f.scratch() / "stage-web").string()});
  CHECK(target.code == 0);
  auto targets = f.Run({"target", "list"});
  CHECK(Contains(targets.out, "NAME       ENVIRONMENT  AGENT  PATH\n"));
  CHECK(Contains(targets.out, "\nstage-web  Staging      local  "));
  CHECK(Contains(f.Run({"target", "show", "int-web"}).out, "environment: Integration\n"));
  auto no_path = f.Run({"target", "set", "x-web", "--environment", "Staging", "--agent", "local"});
  CHECK(no_path.code == 2);
  CHECK(Contains(no_path.err, "target set needs --path"));

  CHECK(f.Run({"variables", "set", "--var", "Owner=web-team"}).code == 0);
  CHECK(Contains(f.Run({"variables", "show"}).out, "web-team"));

  CHECK(Contains(f.Run({"app", "show", "shop"}).out, "plan: deploy-web"));
  CHECK(Contains(f.Run({"release", "list", "shop"}).out, "NUMBER  CREATED"));
  CHECK(Contains(f.Run({"release", "show", "shop", "1.0.0"}).out, "number:       1.0.0\n"));
  auto builds = f.Run({"build", "list", "shop", "1.0.0", "--output", "json"});
  CHECK(json::parse(builds.out)["items"].size() >= 2);
  CHECK(Contains(f.Run({"build", "show", "shop", "1.0.0", "1"}).out, "artifacts:"));
  auto manifest = f.Run({"artifact", "show", "shop", "1.0.0", "1", "web", "--json"});
  CHECK(manifest.code == 0);
  CHECK(json::parse(manifest.out).contains("manifest"));
  CHECK(f.Run({"release", "create", "shop", "3.0.0"}).code == 0);
  CHECK(f.Run({"build", "create", "shop", "3.0.0"}).code == 0);
  auto sealed = f.Run({"build", "seal", "shop", "3.0.0", "1"});
  CHECK(sealed.code == 0);
  CHECK(Contains(sealed.out, "sealed:        yes"));
  auto missing = f.Run({"build", "show", "shop", "3.0.0", "7"});
  CHECK(missing.code == 1);
  CHECK(Contains(missing.err, "HTTP 404"));
}

TEST_CASE("agent, enrollment, verify, retention, audit and approvals commands") {
  CliFixture f;
  auto agents = f.Run({"agent", "list"});
  CHECK(agents.code == 0);
  CHECK(Contains(agents.out, "NAME   STATUS"));
  CHECK(Contains(agents.out, "\nlocal  "));
  CHECK(Contains(f.Run({"agent", "show", "local"}).out, "name:            local\n"));
  auto nobody = f.Run({"agent", "show", "nobody"});
  CHECK(nobody.code == 1);
  CHECK(Contains(nobody.err, "agent 'nobody' not found"));
  CHECK(f.Run({"agent", "approve", "nobody"}).code == 1);
  CHECK(Contains(f.Run({"agent", "enrollment-info"}).out, "fingerprint:"));
  auto enroll = f.Run(
      {"enrollment-token", "create", "--pre-approved", "--expires-in", "600", "--output", "json"});
  CHECK(enroll.code == 0);
  json token = json::parse(enroll.out);
  CHECK(token["pre_approved"] == true);
  CHECK(token["expires_in_seconds"] == 600);
  CHECK(f.Run({"enrollment-token", "create", "--expires-in", "0"}).code == 2);

  auto verify = f.Run({"verify"});
  CHECK(verify.code == 0);
  CHECK(Contains(verify.out, "ok:"));
  auto preview = f.Run({"retention", "preview", "--keep-builds", "1"});
  CHECK(preview.code == 0);
  CHECK(Contains(preview.out, "would delete "));
  CHECK(Contains(preview.out, "APPLICATION  RELEASE  BUILD"));
  auto preview_json = f.Run({"retention", "preview", "--json"});
  CHECK(json::parse(preview_json.out)["dry_run"] == true);
  auto run = f.Run({"retention", "run", "--keep-builds", "1000"});
  CHECK(run.code == 0);
  CHECK(Contains(run.out, "deleted 0 builds"));
  CHECK(f.Run({"retention", "run", "--keep-days", "soon"}).code == 2);

  f.server().CreateUser("rita", "release-manager");
  auto audit = f.Run({"audit", "--limit", "5"});
  CHECK(audit.code == 0);
  CHECK(Contains(audit.out, "user.create"));
  CHECK(Contains(f.Run({"audit", "--csv"}).out, "user.create"));
  CHECK(Contains(f.Run({"approvals"}).out, "count:"));
}

TEST_CASE("deployment show, move, revoke, continue and clear-hold") {
  CliFixture f;
  // move: a scheduled deployment gets another time.
  auto base = std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) +
              std::chrono::hours(24 * 30);
  std::string at = FormatRfc3339Utc(base);
  std::string later = FormatRfc3339Utc(base + std::chrono::hours(2));
  auto scheduled = f.Run({"deploy", "shop", "1.0.0", "2", "Testing", "--at", at, "--json"});
  REQUIRE(scheduled.code == 0);
  const std::string id = std::to_string(IdOf(scheduled));
  auto moved = f.Run({"move", id, "--at", later});
  CHECK(moved.code == 0);
  CHECK(Contains(moved.out, "scheduled for " + later.substr(0, 19)));
  auto shown = f.Run({"deployment", "show", id});
  CHECK(Contains(shown.out, "deployment " + id + ": "));
  CHECK(Contains(shown.out, "scheduled for " + later.substr(0, 19)));
  CHECK(f.Run({"move", id}).code == 2);
  CHECK(f.Run({"move", id, "--at", "tomorrow"}).code == 2);
  CHECK(f.Run({"cancel", id}).code == 0);

  // revoke: the admin has not approved it, so the API refuses.
  auto revoke = f.Run({"revoke", id});
  CHECK(revoke.code == 1);
  CHECK(Contains(revoke.err, "HTTP 4"));

  // continue: an application whose plan pauses at a manual step.
  REQUIRE(f.Run({"target", "set", "gate-web", "--environment", "Integration", "--agent", "local",
                 "--path", (f.scratch() / "gate-web").string()})
              .code == 0);
  fs::path spec = f.scratch() / "gate.yaml";
  REQUIRE(WriteFileAtomic(spec,
                          "description: paused by hand\n"
                          "pipeline:\n"
                          "  - stage: Integration\n"
                          "    environment: Integration\n"
                          "    targets: [gate-web]\n"
                          "    plan: p\n"
                          "plans:\n"
                          "  p: |\n"
                          "    - manual: \"check the smoke tests\"\n"
                          "    - log: \"continued by hand\"\n")
              .ok());
  auto app = f.Run({"app", "set", "gate", spec.string()});
  CHECK_MESSAGE(app.code == 0, app.err);
  CHECK(Contains(app.out, "application gate: spec version "));
  REQUIRE(f.Run({"release", "create", "gate", "1.0"}).code == 0);
  REQUIRE(f.Run({"build", "create", "gate", "1.0"}).code == 0);
  auto paused = f.Run({"deploy", "gate", "1.0", "1", "Integration", "--json"});
  REQUIRE(paused.code == 0);
  const int64_t gate_id = IdOf(paused);
  const bool at_manual = WaitUntil([&] {
    auto log = json::parse(
        f.server().Admin().Get("/api/v1/deployments/" + std::to_string(gate_id) + "/log").body);
    for (const auto& l : log["lines"])
      if (l["text"].get<std::string>().find("check the smoke tests") != std::string::npos)
        return true;
    return false;
  });
  REQUIRE(at_manual);
  auto continued = f.Run({"continue", std::to_string(gate_id), "--comment", "smoke ok"});
  CHECK(continued.code == 0);
  CHECK(Contains(continued.out, "deployment " + std::to_string(gate_id) + " continued"));
  auto followed = f.Run({"log", std::to_string(gate_id), "--follow"});
  CHECK(followed.code == 0);
  CHECK(Contains(followed.out, "continued by hand"));

  // clear-hold: a rollback of an auto-promoting stage holds its promotion.
  CHECK(f.Run({"clear-hold", "shop", "Integration"}).code == 1);  // no hold yet
  CHECK(f.Run({"deploy", "shop", "1.0.0", "2", "Integration", "--wait"}).code == 0);
  auto back = f.Run(
      {"deploy", "shop", "1.0.0", "1", "Integration", "--wait", "--acknowledge-irreversible"});
  CHECK(back.code == 0);
  auto cleared = f.Run({"clear-hold", "shop", "Integration", "--comment", "fixed forward"});
  CHECK(cleared.code == 0);
  CHECK(Contains(cleared.out, "stage:       Integration\n"));
}

}  // namespace reprise::testing

namespace reprise::testing {

TEST_CASE("rollback-record commands: create, select, test-connection, submit, reject, list") {
  CliFixture f;
  auto deployed = f.Run({"deploy", "shop", "1.0.0", "2", "Integration", "--wait", "--json"});
  REQUIRE(deployed.code == 0);
  const std::string id = std::to_string(json::parse(deployed.out)["id"].get<int64_t>());
  auto created = f.Run({"rollback-record", "create", id, "--comment", "bad page", "--json"});
  REQUIRE(created.code == 0);
  const std::string rid = std::to_string(json::parse(created.out)["id"].get<int64_t>());
  auto shown = f.Run({"rollback-record", "show", rid});
  CHECK(Contains(shown.out, "rollback record " + rid + " (draft): deployment " + id));
  CHECK(Contains(shown.out, "TARGET   TYPE"));
  auto selected = f.Run({"rollback-record", "select", rid, "--component", "index.html"});
  CHECK(selected.code == 0);
  CHECK(Contains(selected.out, "1 of "));
  CHECK(f.Run({"rollback-record", "test-connection", rid}).code == 0);
  CHECK(f.Run({"rollback-record", "submit", rid}).code == 0);
  const std::string rita = f.server().CreateUser("rita", "release-manager");
  auto rejected = f.Run({"rollback-record", "reject", rid, "--comment", "not needed"}, rita);
  CHECK(rejected.code == 0);
  CHECK(Contains(rejected.out, "(rejected)"));
  auto listed = f.Run({"rollback-record", "list", "--app", "shop"});
  CHECK(Contains(listed.out, "ID  STATUS    APPLICATION"));
  CHECK(Contains(listed.out, rid + "   rejected  shop"));
  auto validation = f.Run({"rollback-record", "validation", rid});
  CHECK(validation.code == 1);
  CHECK(Contains(validation.err, "has not been validated yet (HTTP 404"));
}

}  // namespace reprise::testing
