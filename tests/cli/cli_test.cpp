// The `reprise` CLI end to end: the real binary (REPRISE_BIN_DIR) against a
// real server on port 0 with the demo application and the in-process local
// agent. Exit codes and output are what CI scripts rely on.
#include "tests/cli/cli_support.h"

namespace reprise::testing {

TEST_CASE("a CI run: release, build, upload, deploy --wait, preview, apps, deployments, log") {
  CliFixture f;
  auto health = f.Run({"health"}, "");
  CHECK(health.code == 0);
  CHECK(Contains(health.out, "ok: reprise "));

  auto rel = f.Run({"release", "create", "shop", "2.0.0"});
  CHECK(rel.code == 0);
  CHECK(rel.out == "created release shop 2.0.0\n");
  auto build = f.Run({"build", "create", "shop", "2.0.0", "--var", "Commit=abc123"});
  REQUIRE(build.code == 0);
  CHECK(build.out == "1\n");

  fs::path archive = f.Archive({{"index.html", "<h1>shop 2.0.0</h1>\n"}, {"js/app.js", "go()\n"}});
  auto sha = Sha256File(archive);
  REQUIRE(sha.ok());
  auto up = f.Run({"upload", "shop", "2.0.0", "1", "web", archive.string()});
  CHECK(up.code == 0);
  CHECK(up.out == *sha + "\n");
  CHECK(Contains(up.err, "2 files, stored"));
  // The same bytes again are fine; other bytes under the same name are refused.
  auto again = f.Run({"upload", "shop", "2.0.0", "1", "web", archive.string()});
  CHECK(again.code == 0);
  CHECK(again.out == *sha + "\n");
  CHECK(Contains(again.err, "already stored"));
  fs::path other = f.Archive({{"index.html", "different\n"}});
  auto refused = f.Run({"upload", "shop", "2.0.0", "1", "web", other.string()});
  CHECK(refused.code == 1);
  CHECK(Contains(refused.err, "immutable"));
  CHECK(Contains(refused.err, "HTTP 409"));

  auto deployed = f.Run({"deploy", "shop", "2.0.0", "1", "Integration", "--wait"});
  CHECK(deployed.code == 0);
  CHECK(Contains(deployed.out, "promote of shop 2.0.0 build 1 to Integration"));
  CHECK(Contains(deployed.out, "[int-web] Deploying shop 2.0.0 build 1 to Integration"));
  CHECK(Contains(deployed.out, "succeeded"));
  CHECK(ReadFile(f.Current("int-web") / "index.html") == "<h1>shop 2.0.0</h1>\n");

  auto preview = f.Run({"preview", "shop", "2.0.0", "1", "Production"});
  CHECK(preview.code == 0);
  CHECK(Contains(preview.out, "target prod-web (now: 1.0.0 build 1)"));
  CHECK(Contains(preview.out, "overwritten (1):\n      ~ index.html"));
  CHECK(Contains(preview.out, "+ js/app.js"));
  CHECK(Contains(preview.out, "- migrate.sh"));
  CHECK(Contains(preview.out, "gates:"));
  CHECK(Contains(preview.out, "approvals: 0 of 1 approvals from release-manager"));

  auto apps = f.Run({"apps"});
  CHECK(apps.code == 0);
  CHECK(Contains(apps.out, "shop - A demo web shop"));
  CHECK(Contains(apps.out, "int-web"));
  CHECK(Contains(apps.out, "2.0.0 build 1"));
  CHECK(Contains(apps.out, "Production (protected)"));

  auto list = f.Run({"deployments", "--app", "shop", "--stage", "Integration"});
  CHECK(list.code == 0);
  CHECK(Contains(list.out, "STATUS"));
  CHECK(Contains(list.out, "2.0.0"));
  CHECK_FALSE(Contains(list.out, "Production"));

  auto as_json = f.Run({"deployments", "--app", "shop", "--stage", "Integration", "--json"});
  REQUIRE(as_json.code == 0);
  json items = json::parse(as_json.out);
  REQUIRE(items.size() >= 2);
  int64_t id = items[0]["id"].get<int64_t>();
  CHECK(items[0]["release"] == "2.0.0");
  auto log = f.Run({"log", std::to_string(id)});
  CHECK(log.code == 0);
  CHECK(Contains(log.out, "Deploying shop 2.0.0 build 1 to Integration"));
  auto follow = f.Run({"log", std::to_string(id), "--follow"});
  CHECK(follow.code == 0);
  CHECK(Contains(follow.out, "deployment " + std::to_string(id) + " succeeded"));
}

TEST_CASE("deploy --wait exits non-zero unless the deployment succeeds; approve, reject, cancel") {
  CliFixture f;
  // Production needs an approval from a release manager: --wait gives up at its timeout.
  // A whole hour 30 days ahead (at most 366 days can be asked), given at +01:00.
  auto at = std::chrono::floor<std::chrono::hours>(std::chrono::system_clock::now()) +
            std::chrono::hours(24 * 30);
  std::string at_plus_one = FormatRfc3339Utc(at + std::chrono::hours(1)).substr(0, 19) + "+01:00";
  auto timed_out = f.Run({"deploy", "shop", "1.0.0", "2", "Production", "--force", "--comment",
                          "hotfix", "--at", at_plus_one, "--wait", "--timeout", "1"});
  CHECK(timed_out.code == 1);
  CHECK(Contains(timed_out.out, "scheduled for " + FormatRfc3339Utc(at).substr(0, 19)));
  CHECK(Contains(timed_out.err, "timed out after 1 s"));
  CHECK(Contains(timed_out.err, "is scheduled (it was not cancelled)"));

  // A deployment cancelled while --wait follows it ends the CLI with 1.
  auto waiter = f.Start({"deploy", "shop", "1.0.0", "1", "Production", "--wait"});
  int64_t id = WaitingDeployment(f.server());
  REQUIRE(id != 0);
  // The requester may not approve their own deployment: the API's message, exit 1.
  auto self = f.Run({"approve", std::to_string(id)});
  CHECK(self.code == 1);
  CHECK(Contains(self.err, "error: "));
  CHECK(Contains(self.err, "cannot approve"));
  auto cancelled = f.Run({"cancel", std::to_string(id), "--comment", "not tonight"});
  CHECK(cancelled.code == 0);
  CHECK(Contains(cancelled.out, "status now cancelled"));
  RunResult waited = waiter->Wait();
  CHECK(waited.code == 1);
  CHECK(Contains(waited.out, "deployment " + std::to_string(id) + " cancelled"));
  auto followed = f.Run({"log", std::to_string(id), "--follow"});
  CHECK(followed.code == 1);

  // A release manager approves the next one; it runs, and log --follow sees it succeed.
  std::string rita = f.server().CreateUser("rita", "release-manager");
  auto second = f.Run({"deploy", "shop", "1.0.0", "1", "Production"});
  CHECK(second.code == 0);
  CHECK(Contains(second.out, ": waiting"));
  CHECK(Contains(second.out, "waiting for approvals: 0 of 1 approvals from release-manager"));
  int64_t second_id = WaitingDeployment(f.server());
  REQUIRE(second_id != 0);
  auto approved = f.Run({"approve", std::to_string(second_id), "--comment", "looks good"}, rita);
  CHECK(approved.code == 0);
  CHECK(Contains(approved.out, "deployment " + std::to_string(second_id) + " approved"));
  auto ran = f.Run({"log", std::to_string(second_id), "--follow"});
  CHECK(ran.code == 0);
  CHECK(Contains(ran.out, "deployment " + std::to_string(second_id) + " succeeded"));

  // Reject: a third waiting deployment.
  CHECK(f.Run({"deploy", "shop", "1.0.0", "1", "Production"}).code == 0);
  int64_t third_id = WaitingDeployment(f.server());
  REQUIRE(third_id != 0);
  auto rejected = f.Run({"reject", std::to_string(third_id), "--comment", "no"}, rita);
  CHECK(rejected.code == 0);
  CHECK(Contains(rejected.out, "rejected"));
}

TEST_CASE("usage errors exit 2; API and connection errors exit 1; the token is never printed") {
  CliFixture f;
  CHECK(f.Run({}).code == 2);
  CHECK(f.Run({"frobnicate"}).code == 2);
  auto missing = f.Run({"deploy", "shop", "1.0.0", "1"});
  CHECK(missing.code == 2);
  CHECK(Contains(missing.err, "usage: reprise deploy APP RELEASE BUILD STAGE"));
  CHECK(f.Run({"deploy", "shop", "1.0.0", "x", "Testing"}).code == 2);
  CHECK(f.Run({"deploy", "shop", "1.0.0", "1", "Testing", "--force"}).code == 2);
  CHECK(f.Run({"deploy", "shop", "1.0.0", "1", "Testing", "--at", "tonight"}).code == 2);
  CHECK(f.Run({"deploy", "shop", "1.0.0", "1", "Testing", "--context", "latest"}).code == 2);
  CHECK(f.Run({"apps", "--follow"}).code == 2);
  CHECK(f.Run({"apps", "--server", "ftp://example"}).code == 2);
  auto help = f.Run({"--help"});
  CHECK(help.code == 0);
  CHECK(Contains(help.out, "deployments [--app A]"));

  const std::string bad_token = "not-the-token-5f3a9c";
  auto unauth = f.Run({"apps"}, bad_token);
  CHECK(unauth.code == 1);
  CHECK(Contains(unauth.err, "unauthenticated"));
  CHECK_FALSE(Contains(unauth.out + unauth.err, bad_token));
  auto missing_app = f.Run({"release", "create", "nope", "1.0"});
  CHECK(missing_app.code == 1);
  CHECK(Contains(missing_app.err, "HTTP 404"));
  auto no_file = f.Run({"upload", "shop", "1.0.0", "1", "web", (f.scratch() / "absent").string()});
  CHECK(no_file.code == 1);
  CHECK(Contains(no_file.err, "cannot open"));

  // Nothing listens on this port once the server is stopped.
  int port = f.server().port();
  f.server().Stop();
  CliProcess p(f.scratch(), {"health"}, port, kAdminToken);
  auto down = p.Wait();
  CHECK(down.code == 1);
  CHECK(Contains(down.err, "connection failed"));
  CHECK_FALSE(Contains(down.out + down.err, kAdminToken));
}

}  // namespace reprise::testing

namespace reprise::testing {

TEST_CASE("validate exits 0 when the files match, 1 when they differ, 2 when it cannot check") {
  CliFixture f;
  // The demo deploys build 1 to every stage when it starts.
  REQUIRE(WaitUntil([&] {
    auto list = json::parse(
        f.server().Admin().Get("/api/v1/deployments?stage=Production&status=succeeded").body);
    return !list["items"].empty();
  }));

  auto ok = f.Run({"validate", "prod-web"});
  CHECK(ok.code == 0);
  CHECK(Contains(ok.out, "prod-web: 1.0.0 build 1 (artifact web, sha256 "));
  CHECK(Contains(ok.out, "on agent local"));
  CHECK(Contains(ok.out, "ok: 5 files match\n"));

  auto as_json = f.Run({"validate", "prod-web", "--json"});
  CHECK(as_json.code == 0);
  json report = json::parse(as_json.out);
  CHECK(report["ok"] == true);
  CHECK(report["files_checked"] == 5);

  const fs::path current = f.Current("prod-web");
  // The same size as build 1's app.js, other bytes.
  REQUIRE(WriteFileAtomic(current / "app.js", "console.log('patched');\n").ok());
  auto differs = f.Run({"validate", "prod-web"});
  CHECK(differs.code == 1);
  CHECK(Contains(differs.out, "differs: 0 missing, 1 changed, 0 extra"));
  CHECK(Contains(differs.out, "\n  changed  app.js: content differs\n"));
  auto differs_json = f.Run({"validate", "prod-web", "--json"});
  CHECK(differs_json.code == 1);
  CHECK(json::parse(differs_json.out)["changed"][0]["path"] == "app.js");

  auto unknown = f.Run({"validate", "no-such-web"});
  CHECK(unknown.code == 2);
  CHECK(Contains(unknown.err, "error: target 'no-such-web' not found (HTTP 404, not_found)"));
  auto usage = f.Run({"validate"});
  CHECK(usage.code == 2);
  CHECK(Contains(usage.err, "usage: reprise validate TARGET"));
  const std::string viewer = f.server().CreateUser("vera", "viewer");
  auto refused = f.Run({"validate", "prod-web"}, viewer);
  CHECK(refused.code == 2);
  CHECK(Contains(refused.err, "HTTP 403"));
  CHECK_FALSE(Contains(refused.out + refused.err, viewer));
}

}  // namespace reprise::testing
