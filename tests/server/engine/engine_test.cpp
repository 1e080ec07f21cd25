// The deployment engine end to end: a real server (SQLite file, HTTP API) and
// a real reprise-agent process on loopback.
#include <doctest/doctest.h>

#include <set>
#include <thread>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {

namespace {

std::vector<std::string> LogTexts(PipelineFixture& f, int64_t id) {
  auto r = Body(f.Admin().Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
  std::vector<std::string> out;
  for (const auto& l : r["lines"]) out.push_back(l["text"].get<std::string>());
  return out;
}

int Count(const std::vector<std::string>& lines, const std::string& needle) {
  int n = 0;
  for (const auto& l : lines) n += l.find(needle) != std::string::npos;
  return n;
}

json StageView(PipelineFixture& f, const std::string& stage) {
  auto app = Body(f.Admin().Get("/api/v1/applications/shop"));
  for (const auto& s : app["stages"])
    if (s["stage"] == stage) return s;
  return json();
}

}  // namespace

TEST_CASE("re-deploying build 1 to Production is a rollback that restores build 1 exactly") {
  PipelineFixture f;
  f.PromoteThroughAll(1);
  f.PromoteThroughAll(2);
  auto prod = StageView(f, "Production");
  REQUIRE(prod["targets"][0]["current"]["build"] == 2);
  REQUIRE(prod["rollback_candidates"].size() == 1);
  CHECK(prod["rollback_candidates"][0]["build"] == 1);

  // The preview says what will change before anything runs.
  auto rita = f.ReleaseManager();
  auto preview =
      Body(rita.Post(PipelineFixture::BuildPath(1) + "/preview", R"({"stage":"Production"})"));
  CHECK(preview["kind"] == "rollback");
  CHECK(preview["summary"].get<std::string>().find("Production currently runs 1.0 build 2") !=
        std::string::npos);
  REQUIRE(preview["targets"].size() == 1);
  CHECK(preview["targets"][0]["added"] == json::array({"legacy.txt"}));
  CHECK(preview["targets"][0]["deleted"] == json::array({"api/status.json"}));
  CHECK(preview["targets"][0]["overwritten"] == json::array({"index.html"}));
  // ...which gates hold before it may run (a re-deploy skips the stage order,
  // Production's approval is still needed)...
  std::map<std::string, bool> gates;
  for (const auto& g : preview["gates"]) gates[g["gate"]] = g["holds"];
  CHECK(gates.count("previous-stage") == 1);
  CHECK(gates["previous-stage"] == true);
  CHECK(gates.count("approvals") == 1);
  CHECK(gates["approvals"] == false);
  // ...and what the plan would do on the target, from the build's snapshot.
  REQUIRE(preview["operations"].contains("prod-web"));
  std::string ops = preview["operations"]["prod-web"].dump();
  CHECK(ops.find("deploy-artifact") != std::string::npos);
  // On a rollback the migration branch is skipped.
  CHECK(ops.find("if !$IsRollback: false") != std::string::npos);
  CHECK(ops.find("migrations.log") == std::string::npos);
  CHECK(preview["problems"].empty());

  auto rollback = f.Deploy(rita, 1, {{"stage", "Production"}});
  CHECK(rollback["kind"] == "rollback");
  // A re-deploy does not re-check earlier stages, but Production still needs its approval.
  CHECK(rollback["status"] == "waiting");
  REQUIRE(
      f.SecondManager()
          .Post("/api/v1/deployments/" + std::to_string(rollback["id"].get<int64_t>()) + "/approve",
                "{}")
          .status == 200);
  auto done = f.WaitFinal(rollback["id"]);
  REQUIRE_MESSAGE(done["status"] == "succeeded", done.dump());
  CHECK(done["kind"] == "rollback");
  CHECK(done["execution_context"]["is_rollback"] == true);

  // Every file under current hashes exactly as build 1's manifest says.
  auto manifest =
      Body(f.Admin().Get(PipelineFixture::BuildPath(1) + "/artifacts/web/manifest"))["manifest"];
  std::map<std::string, std::string> expected;
  for (const auto& e : manifest["entries"])
    if (e["type"] == "file") expected[e["path"]] = e["sha256"];
  CHECK(HashTree(f.root() / "prod-web" / "current") == expected);
  // The deployment carried the build's manifest hash, and the agent switched
  // to its cached release only after finding it unchanged since it was verified.
  CHECK(done["execution_context"]["artifact_manifests"]["web"] == manifest["manifest_hash"]);
  auto log = Body(f.Admin().Get("/api/v1/deployments/" +
                                std::to_string(rollback["id"].get<int64_t>()) + "/log"));
  bool unchanged = false;
  for (const auto& line : log["lines"])
    unchanged |= line["text"].get<std::string>().find("unchanged since it was verified") !=
                 std::string::npos;
  CHECK_MESSAGE(unchanged, log.dump());

  // The migration ran for each promotion, not for the rollback.
  CHECK(ReadFile(f.root() / "prod-web" / "migrations.log") == "1\n2\n");

  // What is deployed where, and the hold that keeps automation from undoing it.
  prod = StageView(f, "Production");
  CHECK(prod["targets"][0]["current"]["build"] == 1);
  CHECK(prod["targets"][0]["current"]["by"] == "rita");
  REQUIRE_FALSE(prod["hold"].is_null());
  CHECK(prod["hold"]["deployment_id"] == rollback["id"]);
  CHECK(f.Deployer().Post("/api/v1/applications/shop/stages/Production/clear-hold", "{}").status ==
        403);
  CHECK(rita.Post("/api/v1/applications/shop/stages/Production/clear-hold", "{}").status == 200);
  CHECK(StageView(f, "Production")["hold"].is_null());
}

TEST_CASE("as-deployed reuses the variables of the last successful deployment; current does not") {
  PipelineFixture f;
  auto admin = f.Admin();
  auto first = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(first["id"])["status"] == "succeeded");
  // Settings change after the deployment.
  REQUIRE(admin.Put("/api/v1/environments/Integration", R"({"variables":{"Greeting":"howdy"}})")
              .status == 200);
  auto preview =
      Body(admin.Post(PipelineFixture::BuildPath(1) + "/preview", R"({"stage":"Integration"})"));
  CHECK(preview["kind"] == "redeploy");
  CHECK(preview["context"] == "as-deployed");
  REQUIRE(preview["variables"].size() == 1);
  CHECK(preview["variables"][0]["name"] == "Greeting");
  CHECK(preview["variables"][0]["as_deployed"] == "hello");
  CHECK(preview["variables"][0]["current"] == "howdy");

  auto again = f.Deploy(admin, 1, {{"stage", "Integration"}});
  auto d = f.WaitFinal(again["id"]);
  REQUIRE(d["status"] == "succeeded");
  CHECK(d["kind"] == "redeploy");
  CHECK(d["execution_context"]["variables"]["environment"]["Greeting"]["value"] == "hello");
  auto fresh = f.Deploy(admin, 1, {{"stage", "Integration"}, {"context", "current"}});
  d = f.WaitFinal(fresh["id"]);
  CHECK(d["execution_context"]["variables"]["environment"]["Greeting"]["value"] == "howdy");
  // A build that never ran on a stage has no as-deployed context.
  auto bad = admin.Post(PipelineFixture::BuildPath(2) + "/deploy",
                        R"({"stage":"Integration","context":"as-deployed"})");
  CHECK(bad.status == 400);
}

TEST_CASE("gates: stage order, approvals without self-approval, force, protected stages") {
  PipelineFixture f;
  auto admin = f.Admin();
  // Order: build 2 cannot enter Testing before Integration.
  auto early = f.Deploy(admin, 2, {{"stage", "Testing"}});
  CHECK(early["status"] == "waiting");
  bool order_gate = false;
  for (const auto& g : early["gates"])
    if (g["gate"] == "previous-stage") order_gate = g["holds"] == false;
  CHECK(order_gate);
  // Cancelling a waiting deployment.
  auto id = std::to_string(early["id"].get<int64_t>());
  REQUIRE(
      admin.Post("/api/v1/deployments/" + id + "/cancel", R"({"comment":"too early"})").status ==
      200);
  CHECK(f.Get(early["id"])["status"] == "cancelled");
  CHECK(admin.Post("/api/v1/deployments/" + id + "/cancel", "{}").status == 409);

  // Protected stage: a deployer may not deploy to Production at all.
  auto dan = f.Deployer();
  auto refused = dan.Post(PipelineFixture::BuildPath(1) + "/deploy", R"({"stage":"Production"})");
  CHECK(refused.status == 403);
  CHECK(Body(refused)["error"]["message"].get<std::string>().find("protected") !=
        std::string::npos);

  // Force needs a release manager and a comment, skips gates, and is audited.
  auto rita = f.ReleaseManager();
  CHECK(dan.Post(PipelineFixture::BuildPath(1) + "/deploy",
                 R"({"stage":"Testing","force":true,"comment":"x"})")
            .status == 403);
  CHECK(rita.Post(PipelineFixture::BuildPath(1) + "/deploy", R"({"stage":"Testing","force":true})")
            .status == 400);
  auto forced = f.Deploy(rita, 1, {{"stage", "Testing"}, {"force", true}, {"comment", "hotfix"}});
  CHECK(f.WaitFinal(forced["id"])["status"] == "succeeded");
  auto audit = Body(admin.Get("/api/v1/audit?action=deployment.force"));
  REQUIRE(audit["items"].size() == 1);
  CHECK(audit["items"][0]["actor"] == "rita");

  // Approvals: the requester cannot approve, a viewer cannot, another manager can.
  auto prod = f.Deploy(rita, 1, {{"stage", "Production"}});
  REQUIRE(prod["status"] == "waiting");
  std::string pid = std::to_string(prod["id"].get<int64_t>());
  auto self = rita.Post("/api/v1/deployments/" + pid + "/approve", "{}");
  CHECK(self.status == 403);
  CHECK(Body(self)["error"]["message"].get<std::string>().find("cannot approve") !=
        std::string::npos);
  CHECK(f.Viewer().Post("/api/v1/deployments/" + pid + "/approve", "{}").status == 403);
  CHECK(dan.Post("/api/v1/deployments/" + pid + "/approve", "{}").status == 403);
  auto rob = f.SecondManager();
  // Approvals are revocable until the start: approve, revoke, and it waits again.
  REQUIRE(rob.Post("/api/v1/deployments/" + pid + "/approve", "{}").status == 200);
  auto approved = f.WaitFinal(prod["id"]);
  CHECK(approved["status"] == "succeeded");
  CHECK(approved["approvals"].size() == 1);

  auto second = f.Deploy(rita, 1, {{"stage", "Production"}, {"at", "2027-01-01T00:00:00Z"}});
  std::string sid = std::to_string(second["id"].get<int64_t>());
  REQUIRE(rob.Post("/api/v1/deployments/" + sid + "/approve", "{}").status == 200);
  REQUIRE(rob.Post("/api/v1/deployments/" + sid + "/revoke-approval", "{}").status == 200);
  bool approvals_hold = true;
  auto revoked = f.Get(second["id"]);
  CAPTURE(revoked.dump());
  for (const auto& g : revoked["gates"])
    if (g["gate"] == "approvals") approvals_hold = g["holds"];
  CHECK_FALSE(approvals_hold);
  REQUIRE(rob.Post("/api/v1/deployments/" + sid + "/reject", R"({"comment":"not now"})").status ==
          200);
  auto rejected = f.Get(second["id"]);
  CHECK(rejected["status"] == "cancelled");
  CHECK(rejected["error"].get<std::string>().find("rejected by rob") != std::string::npos);
}

TEST_CASE("a re-deploy scheduled 2 s ahead fires once; moving and cancelling are audited") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  PipelineOptions o;
  o.integration_plan = "quick";
  o.server.clock = &clock;
  PipelineFixture f(o);
  auto admin = f.Admin();
  auto first = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(first["id"])["status"] == "succeeded");

  auto at = FormatRfc3339Utc(clock.Now() + std::chrono::seconds(2));
  auto scheduled = f.Deploy(admin, 1, {{"stage", "Integration"}, {"at", at}});
  CHECK(scheduled["status"] == "scheduled");
  CHECK(scheduled["scheduled_at"] == at);
  // Not yet due: the scheduler looks at the moved clock on its thread, and a
  // deployment requested afterwards is dispatched there after that look.
  clock.Advance(std::chrono::milliseconds(1999));
  auto probe = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(probe["id"])["status"] == "succeeded");
  CHECK(f.Get(scheduled["id"])["status"] == "scheduled");
  clock.Advance(std::chrono::milliseconds(1));  // due now
  auto d = f.WaitFinal(scheduled["id"]);
  CHECK(d["status"] == "succeeded");
  CHECK(d["started_at"].get<std::string>() >= at);
  auto lines = LogTexts(f, scheduled["id"]);
  CHECK(Count(lines, "reached") == 1);
  CHECK(Count(lines, "quick deploy of build 1") == 1);

  // Move, then cancel, a deployment scheduled months ahead; both are audited.
  auto later = f.Deploy(admin, 1, {{"stage", "Integration"}, {"at", "2027-05-01T10:00:00+02:00"}});
  std::string lid = std::to_string(later["id"].get<int64_t>());
  CHECK(later["scheduled_at"] == "2027-05-01T08:00:00.000Z");  // stored in UTC
  auto moved =
      admin.Send("PATCH", "/api/v1/deployments/" + lid, R"({"at":"2027-06-01T00:00:00Z"})");
  REQUIRE_MESSAGE(moved.status == 200, moved.body);
  CHECK(Body(moved)["scheduled_at"] == "2027-06-01T00:00:00.000Z");
  CHECK(admin.Send("PATCH", "/api/v1/deployments/" + lid, R"({"at":"tomorrow"})").status == 400);
  REQUIRE(admin.Post("/api/v1/deployments/" + lid + "/cancel", "{}").status == 200);
  CHECK(admin.Send("PATCH", "/api/v1/deployments/" + lid, R"({"at":"2027-03-01T00:00:00Z"})")
            .status == 409);
  std::set<std::string> actions;
  auto audit = Body(admin.Get("/api/v1/audit?subject=deployment%20" + lid));
  CAPTURE(audit.dump());
  for (const auto& e : audit["items"]) actions.insert(e["action"].get<std::string>());
  CHECK(actions ==
        std::set<std::string>{"deployment.schedule", "deployment.reschedule", "deployment.cancel"});
}

TEST_CASE("deployments that fell due while the server was down run once or expire") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  PipelineOptions o;
  o.integration_plan = "quick";
  o.start_agent = false;  // the plan needs no agent
  o.server.clock = &clock;
  PipelineFixture f(o);
  auto admin = f.Admin();
  auto due = clock.Now() + std::chrono::hours(1);
  auto at = FormatRfc3339Utc(due);
  std::vector<int64_t> keep, expire;
  for (int i = 0; i < 100; ++i) {
    json req = {{"stage", "Integration"}, {"at", at}};
    if (i % 2) req["expires_after_seconds"] = 1;
    auto d = f.Deploy(admin, 1 + i % 2, req);
    (i % 2 ? expire : keep).push_back(d["id"]);
  }
  for (int64_t id : keep) CHECK(f.Get(id)["status"] == "scheduled");
  f.server().Stop();
  // All of them fall due while it is down: it starts again past the due time
  // and past the 1 s expiry windows.
  clock.Set(due + std::chrono::seconds(2));
  f.server().Start();
  for (int64_t id : keep) {
    auto d = f.WaitFinal(id);
    CHECK(d["status"] == "succeeded");
    CHECK(Count(LogTexts(f, id), "quick deploy") == 1);
  }
  for (int64_t id : expire) {
    auto d = f.WaitFinal(id);
    CHECK(d["status"] == "expired");
    CHECK(Count(LogTexts(f, id), "quick deploy") == 0);
  }
  auto audit = Body(f.Admin().Get("/api/v1/audit?action=deployment.expire&limit=1000"));
  CHECK(audit["items"].size() == 50);
  // Another restart changes nothing: each ran exactly once.
  f.server().Restart();
  for (int64_t id : keep) CHECK(Count(LogTexts(f, id), "quick deploy") == 1);
}

TEST_CASE("50 concurrent deploy requests to one stage are all recorded and run one at a time") {
  PipelineOptions o;
  o.integration_plan = "quick";
  o.start_agent = false;
  PipelineFixture f(o);
  std::vector<int64_t> ids(50, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i)
    threads.emplace_back([&, i] {
      auto c = f.Admin();
      auto r =
          c.Post(PipelineFixture::BuildPath(1 + i % 2) + "/deploy", R"({"stage":"Integration"})");
      if (r.status == 202) ids[i] = Body(r)["id"].get<int64_t>();
    });
  for (auto& t : threads) t.join();
  std::set<int64_t> unique(ids.begin(), ids.end());
  CHECK(unique.size() == 50);
  CHECK(unique.count(0) == 0);
  std::vector<std::pair<std::string, std::string>> intervals;
  for (int64_t id : ids) {
    auto d = f.WaitFinal(id);
    CHECK(d["status"] == "succeeded");
    intervals.emplace_back(d["started_at"], d["finished_at"]);
  }
  std::sort(intervals.begin(), intervals.end());
  for (size_t i = 1; i < intervals.size(); ++i) {
    CAPTURE(i);
    CHECK(intervals[i].first >= intervals[i - 1].second);  // never two at once on int-web
  }
}

TEST_CASE("approvals count distinct users: approving twice is refused and counts once") {
  PipelineOptions o;
  o.production_gates = "{ approvals: { count: 2, role: release-manager } }";
  PipelineFixture f(o);
  auto admin = f.Admin();
  f.DeployToTesting(admin, 1);
  auto rita = f.ReleaseManager();
  auto prod = f.Deploy(rita, 1, {{"stage", "Production"}});
  REQUIRE(prod["status"] == "waiting");
  std::string path = "/api/v1/deployments/" + std::to_string(prod["id"].get<int64_t>());
  auto rob = f.SecondManager();
  REQUIRE(rob.Post(path + "/approve", "{}").status == 200);
  auto twice = rob.Post(path + "/approve", R"({"comment":"again"})");
  CHECK(twice.status == 409);
  CHECK(Body(twice)["error"]["message"].get<std::string>().find("'rob' has already approved") !=
        std::string::npos);
  auto d = f.Get(prod["id"]);
  CHECK(d["status"] == "waiting");
  std::string detail;
  for (const auto& g : d["gates"])
    if (g["gate"] == "approvals") detail = g["detail"];
  CHECK(detail == "1 of 2 approvals from release-manager");
  // A second person makes it two.
  REQUIRE(admin.Post(path + "/approve", "{}").status == 200);
  auto done = f.WaitFinal(prod["id"]);
  CHECK(done["status"] == "succeeded");
  CHECK(done["approvals"].size() == 2);
}

TEST_CASE("protected stages: moving and cancelling need the deploying role; re-deploy is a grant") {
  PipelineFixture f;
  f.PromoteThroughAll(1);
  f.PromoteThroughAll(2);
  auto admin = f.Admin();
  auto rita = f.ReleaseManager();
  auto dan = f.Deployer();
  // Rita schedules tonight's rollback of Production to build 1.
  auto tonight = f.Deploy(rita, 1, {{"stage", "Production"}, {"at", "2027-01-01T22:00:00Z"}});
  REQUIRE(tonight["kind"] == "rollback");
  std::string tid = "/api/v1/deployments/" + std::to_string(tonight["id"].get<int64_t>());
  // A deployer can neither move nor cancel it.
  auto move = dan.Send("PATCH", tid, R"({"at":"2027-01-02T22:00:00Z"})");
  CHECK(move.status == 403);
  CHECK(Body(move)["error"]["message"].get<std::string>().find("protected") != std::string::npos);
  auto cancel = dan.Post(tid + "/cancel", "{}");
  CHECK(cancel.status == 403);
  CHECK(Body(cancel)["error"]["code"] == "permission_denied");
  auto still = f.Get(tonight["id"]);
  CHECK(still["status"] == "scheduled");
  CHECK(still["scheduled_at"] == "2027-01-01T22:00:00.000Z");
  // Nor re-deploy an earlier build there, until an admin grants 'redeploy'.
  auto refused = dan.Post(PipelineFixture::BuildPath(1) + "/deploy", R"({"stage":"Production"})");
  CHECK(refused.status == 403);
  CHECK(Body(refused)["error"]["message"].get<std::string>().find("'redeploy' grant") !=
        std::string::npos);
  const std::string grant = "/api/v1/environments/Production/grants/dan/redeploy";
  CHECK(rita.Put(grant, "").status == 403);  // granting is for admins
  CHECK(admin.Put("/api/v1/environments/Production/grants/dan/deploy-anything", "").status == 400);
  CHECK(admin.Put("/api/v1/environments/Production/grants/nobody/redeploy", "").status == 404);
  CHECK(admin.Put(grant, "").status == 201);
  CHECK(admin.Put(grant, "").status == 200);  // held already
  auto grants = Body(f.Viewer().Get("/api/v1/environments/Production/grants"));
  REQUIRE(grants["items"].size() == 1);
  CHECK(grants["items"][0]["user"] == "dan");
  CHECK(grants["items"][0]["granted_by"] == "admin");
  CHECK(Body(admin.Get("/api/v1/audit?action=grant.add"))["items"].size() == 1);

  // With it, dan may roll Production back (the approval gate still applies) ...
  auto rollback = f.Deploy(dan, 1, {{"stage", "Production"}});
  CHECK(rollback["kind"] == "rollback");
  CHECK(rollback["status"] == "waiting");
  std::string rid = "/api/v1/deployments/" + std::to_string(rollback["id"].get<int64_t>());
  CHECK(dan.Post(rid + "/cancel", "{}").status == 200);
  // ... but not edit configuration, force, or bring a new build to Production.
  CHECK(dan.Put("/api/v1/applications/shop", "pipeline: []", "application/yaml").status == 403);
  CHECK(dan.Post(PipelineFixture::BuildPath(1) + "/deploy",
                 R"({"stage":"Production","force":true,"comment":"now"})")
            .status == 403);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  REQUIRE(admin
              .Put(PipelineFixture::BuildPath(3) + "/artifacts/web",
                   TarGzOf(f.scratch(), TreeOf(3)), "application/gzip")
              .status == 201);
  auto promote = dan.Post(PipelineFixture::BuildPath(3) + "/deploy", R"({"stage":"Production"})");
  CHECK(promote.status == 403);
  CHECK(Body(promote)["error"]["message"].get<std::string>().find(
            "protected: deploying needs the role release-manager;") != std::string::npos);
  // Rita's rollback is one dan may run now, so he may move it too.
  CHECK(dan.Send("PATCH", tid, R"({"at":"2027-01-02T22:00:00Z"})").status == 200);
  // Revoked: refused again.
  CHECK(admin.Send("DELETE", grant, "").status == 200);
  CHECK(admin.Send("DELETE", grant, "").status == 404);
  CHECK(dan.Post(PipelineFixture::BuildPath(1) + "/deploy", R"({"stage":"Production"})").status ==
        403);
  CHECK(dan.Post(tid + "/cancel", "{}").status == 403);
  CHECK(rita.Post(tid + "/cancel", "{}").status == 200);
}

TEST_CASE("after a rollback automation does not deploy into the held stage until it is cleared") {
  PipelineOptions o;
  o.testing_plan = "pause-on-rollback";
  PipelineFixture f(o);
  auto admin = f.Admin();
  auto through_testing = [&](int build) { return f.DeployUntilTestingRequested(admin, build); };
  REQUIRE(f.WaitFinal(through_testing(1)["id"])["status"] == "succeeded");
  REQUIRE(f.WaitFinal(through_testing(2)["id"])["status"] == "succeeded");

  // Roll Testing back to build 1; it pauses before switching.
  auto rollback = f.Deploy(admin, 1, {{"stage", "Testing"}});
  REQUIRE(rollback["kind"] == "rollback");
  std::string rid = "/api/v1/deployments/" + std::to_string(rollback["id"].get<int64_t>());
  REQUIRE(WaitUntil([&] { return f.Get(rollback["id"]).contains("manual"); }));
  // Meanwhile build 3 passes Integration: its automatic promotion queues on test-web.
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  REQUIRE(admin
              .Put(PipelineFixture::BuildPath(3) + "/artifacts/web",
                   TarGzOf(f.scratch(), TreeOf(3)), "application/gzip")
              .status == 201);
  json pending = through_testing(3);
  CHECK(pending["automatic"] == true);
  REQUIRE(WaitUntil([&] { return f.Get(pending["id"])["status"] == "queued"; }));

  // The rollback completes and holds the stage: the queued automatic one never runs.
  REQUIRE(admin.Post(rid + "/continue", "{}").status == 200);
  REQUIRE(f.WaitFinal(rollback["id"])["status"] == "succeeded");
  auto skipped = f.WaitFinal(pending["id"]);
  CHECK(skipped["status"] == "cancelled");
  CHECK(skipped["started_at"].is_null());
  CHECK(skipped["error"].get<std::string>().find("on hold") != std::string::npos);
  auto testing = StageView(f, "Testing");
  REQUIRE_FALSE(testing["hold"].is_null());
  CHECK(testing["targets"][0]["current"]["build"] == 1);

  // A new Integration success of build 3 does not promote it into Testing either.
  auto again = f.Deploy(admin, 3, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(again["id"])["status"] == "succeeded");
  // Logged after it succeeded (log lines are written in batches).
  CHECK(WaitUntil(
      [&] { return Count(LogTexts(f, again["id"]), "skipped: the stage is on hold") > 0; }));
  CHECK(Count(LogTexts(f, again["id"]), "skipped: the stage is on hold") == 1);
  auto testing_list = Body(admin.Get("/api/v1/deployments?application=shop&stage=Testing"));
  int of_build_3 = 0;
  for (const auto& d : testing_list["items"]) of_build_3 += d["build"] == 3;
  CHECK(of_build_3 == 1);  // only the cancelled one
  CHECK(StageView(f, "Testing")["targets"][0]["current"]["build"] == 1);

  // Once the hold is cleared, automation promotes again.
  REQUIRE(
      f.ReleaseManager().Post("/api/v1/applications/shop/stages/Testing/clear-hold", "{}").status ==
      200);
  auto third = f.Deploy(admin, 3, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(third["id"])["status"] == "succeeded");
  json after;
  REQUIRE(WaitUntil([&] {
    after = f.Newest(3, "Testing");
    return after["id"] != pending["id"];
  }));
  CHECK(f.WaitFinal(after["id"])["status"] == "succeeded");
  CHECK(StageView(f, "Testing")["targets"][0]["current"]["build"] == 3);
}

}  // namespace reprise::testing
