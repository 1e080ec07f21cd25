// Selective rollback records end to end: a real server on port 0, two
// targets served by one real reprise-agent process on loopback, the whole
// flow through the HTTP API (create -> test connection -> submit -> approve
// by a second user -> execute -> validate), the bytes on disk checked, the
// refusals, and a re-deploy of the build restoring it completely.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <set>

#include "tests/server/engine/engine_test_support.h"
#include "tests/server/webhooks/receiver.h"
#include "tests/support/run_binary.h"

namespace reprise::testing {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
std::string ErrorMessage(const HttpResult& r) { return Body(r)["error"].value("message", ""); }

std::string Rec(int64_t rid, const std::string& what = "") {
  return "/api/v1/rollback-records/" + std::to_string(rid) + (what.empty() ? "" : "/" + what);
}

class RollbackFixture {
 public:
  // `clock` (optional) drives the server's scheduler and deadlines.
  // `allow_private`: webhooks may deliver to loopback receivers.
  explicit RollbackFixture(Clock* clock = nullptr, bool allow_private = false) {
    ServerOptions options;
    if (clock) options.clock = clock;
    options.webhook_allow_private = allow_private;
    server_ = std::make_unique<TestServer>(options);
    auto admin = server_->Admin();
    root_ = scratch_.path() / "box";
    fs::create_directories(root_);
    REQUIRE(admin.Put("/api/v1/environments/Production", R"({"variables":{}})").status == 200);
    for (const char* target : {"web1", "web2"}) {
      json t = {
          {"environment", "Production"}, {"agent", "box"}, {"path", (root_ / target).string()}};
      REQUIRE(admin.Put(std::string("/api/v1/targets/") + target, t.dump()).status == 200);
    }
    PutOneStageShop(admin, scratch_.path(), "Production", "Production", {"web1", "web2"}, 2);
    rita_ = server_->CreateUser("rita", "release-manager");
    rob_ = server_->CreateUser("rob", "release-manager");
    dan_ = server_->CreateUser("dan", "deployer");
    StartAgent();
  }

  // Starts the agent (again: after a server restart, on the server's new
  // agent port; it keeps its identity in its state directory).
  void StartAgent() {
    agent_.reset();
    agent_ = StartBoxAgent(*server_, root_, scratch_.path());
  }

  void KillAgent() { agent_->Kill(); }
  HttpClient Rita() { return server_->As(rita_); }
  HttpClient Rob() { return server_->As(rob_); }
  HttpClient Dan() { return server_->As(dan_); }
  HttpClient Admin() { return server_->Admin(); }
  const fs::path& root() const { return root_; }
  TestServer& server() { return *server_; }
  // `reprise ARGS` as `token`'s user.
  BinaryOutcome Cli(const std::string& token, const std::string& args) {
    return RunBinary("reprise", "--server http://127.0.0.1:" + std::to_string(server_->port()) +
                                    " --token " + token + " " + args);
  }
  const std::string& rita_token() const { return rita_; }
  const std::string& rob_token() const { return rob_; }

  json WaitDeployment(int64_t id) {
    json d;
    REQUIRE_MESSAGE(WaitUntil([&] {
                      d = Body(Admin().Get("/api/v1/deployments/" + std::to_string(id)));
                      std::string s = d.value("status", "");
                      return s == "succeeded" || s == "failed" || s == "cancelled" ||
                             s == "interrupted" || s == "expired";
                    }),
                    d.dump());
    return d;
  }

  // Deploys `build` to Production and returns the deployment's id.
  int64_t Deploy(int build) {
    auto rita = Rita();
    auto r = rita.Post(PipelineFixture::BuildPath(build) + "/deploy", R"({"stage":"Production"})");
    REQUIRE_MESSAGE(r.status == 202, r.body);
    int64_t id = Body(r)["id"];
    REQUIRE(WaitDeployment(id)["status"] == "succeeded");
    return id;
  }

  json WaitRecord(int64_t rid, const std::string& status) {
    json r;
    REQUIRE_MESSAGE(WaitUntil([&] {
                      r = Body(Admin().Get("/api/v1/rollback-records/" + std::to_string(rid)));
                      return r.value("status", "") == status;
                    }),
                    r.dump(), agent_->Log());
    return r;
  }
  // A record of deployment `d` made by rita, submitted, approved and executed
  // by rob; returns {the record's id, its execution's deployment id}.
  std::pair<int64_t, int64_t> ExecuteRecordOf(int64_t d) {
    auto rita = Rita();
    auto rob = Rob();
    auto created =
        rita.Post("/api/v1/deployments/" + std::to_string(d) + "/rollback-records", "{}");
    REQUIRE_MESSAGE(created.status == 201, created.body);
    const int64_t rid = Body(created)["id"];
    REQUIRE(rita.Post(Rec(rid, "submit"), "{}").status == 200);
    REQUIRE(rob.Post(Rec(rid, "approve"), "{}").status == 200);
    auto executed = rob.Post(Rec(rid, "execute"), "{}");
    REQUIRE_MESSAGE(executed.status == 200, executed.body);
    return {rid, Body(executed)["execution_deployment_id"].get<int64_t>()};
  }

 private:
  TempDir scratch_;
  fs::path root_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<AgentProcess> agent_;
  std::string rita_, rob_, dan_;
};

}  // namespace

TEST_CASE("rollback record: create, test, submit, approve, execute, validate; bytes on disk") {
  RollbackFixture f;
  int64_t d1 = f.Deploy(1);
  int64_t d2 = f.Deploy(2);
  auto rita = f.Rita();
  auto rob = f.Rob();
  auto dan = f.Dan();
  const std::string create = "/api/v1/deployments/" + std::to_string(d2) + "/rollback-records";

  // Refusals at creation: bad input, a deployment whose build no target runs.
  auto bad = rita.Post(create, R"({"components": "index.html"})");
  CHECK(bad.status == 400);
  CHECK(Has(ErrorMessage(bad), "components"));
  auto nothing = rita.Post(create, R"({"exclude": ["no/such/file"]})");
  CHECK(nothing.status == 400);
  CHECK(Has(ErrorMessage(nothing), "no/such/file"));
  auto unsafe = rita.Post(create, R"({"components": ["../etc"]})");
  CHECK(unsafe.status == 400);
  auto old = rita.Post("/api/v1/deployments/" + std::to_string(d1) + "/rollback-records", "{}");
  CHECK(old.status == 409);
  CHECK(Has(ErrorMessage(old), "no longer runs 1.0 build 1"));

  auto created = rita.Post(create, R"({"comment": "the new page is broken"})");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  json rec = Body(created);
  const int64_t rid = rec["id"];
  CHECK(rec["status"] == "draft");
  CHECK(rec["created_by"] == "rita");
  CHECK(rec["components_total"] == 6);  // per target: index.html, legacy.txt, api/status.json
  CHECK(rec["components_selected"] == 6);
  REQUIRE(rec["targets"].size() == 2);
  CHECK(rec["targets"][0]["previous"]["build"] == 1);
  std::map<std::string, std::string> types;
  for (const auto& c : rec["components"]) types[c["path"]] = c["type"];
  CHECK(types["index.html"] == "override");
  CHECK(types["legacy.txt"] == "restore");
  CHECK(types["api/status.json"] == "delete");

  // Narrow the selection: keep D's api/ directory.
  auto patched = rita.Send("PATCH", Rec(rid), R"({"exclude": ["api"]})");
  REQUIRE_MESSAGE(patched.status == 200, patched.body);
  CHECK(Body(patched)["components_selected"] == 4);

  auto tested = rita.Post(Rec(rid, "test-connection"), "{}");
  REQUIRE_MESSAGE(tested.status == 200, tested.body);
  CHECK_MESSAGE(Body(tested)["connection_ok"] == true, tested.body);

  // Execute before approval, approve before submission: refused.
  auto early = rob.Post(Rec(rid, "execute"), "{}");
  CHECK(early.status == 409);
  CHECK(Has(ErrorMessage(early), "only an approved record"));
  CHECK(rob.Post(Rec(rid, "approve"), "{}").status == 409);

  REQUIRE(rita.Post(Rec(rid, "submit"), "{}").status == 200);
  CHECK(rita.Send("PATCH", Rec(rid), R"({"exclude": []})").status == 409);  // no longer a draft
  auto self = rita.Post(Rec(rid, "approve"), "{}");
  CHECK(self.status == 403);
  CHECK(Has(ErrorMessage(self), "submitted"));
  CHECK(dan.Post(Rec(rid, "approve"), "{}").status == 403);  // not a release-manager
  auto approved = rob.Post(Rec(rid, "approve"), R"({"comment": "ok"})");
  REQUIRE_MESSAGE(approved.status == 200, approved.body);
  CHECK(Body(approved)["status"] == "approved");
  CHECK(dan.Post(Rec(rid, "execute"), "{}").status == 403);  // no grant, not a release-manager

  auto executed = rob.Post(Rec(rid, "execute"), "{}");
  REQUIRE_MESSAGE(executed.status == 200, executed.body);
  int64_t exec_id = Body(executed)["execution_deployment_id"];
  json run = f.WaitDeployment(exec_id);
  CHECK_MESSAGE(run["status"] == "succeeded", run.dump());
  CHECK(run["kind"] == "selective-rollback");
  rec = f.WaitRecord(rid, "executed");
  CHECK(rec["executed_by"] == "rob");
  CHECK(rec["log"] == "/api/v1/deployments/" + std::to_string(exec_id) + "/log");

  // On disk: the selected components are build 1's, everything else build 2's.
  for (const char* target : {"web1", "web2"}) {
    fs::path current = f.root() / target / "current";
    CHECK(ReadFile(current / "index.html") == TreeOf(1)["index.html"]);
    CHECK(ReadFile(current / "legacy.txt") == TreeOf(1)["legacy.txt"]);
    CHECK(ReadFile(current / "api/status.json") == TreeOf(2)["api/status.json"]);
    CHECK(ReadFile(current / "static/site.css") == TreeOf(2)["static/site.css"]);
    CHECK(HashTree(current).size() == 4);
  }

  auto validated = rob.Post(Rec(rid, "validate"), "{}");
  REQUIRE_MESSAGE(validated.status == 200, validated.body);
  CHECK(Body(validated)["status"] == "validated");
  json file = Body(f.Admin().Get(Rec(rid, "validation")));
  CHECK(file["ok"] == true);
  CHECK(file["targets"][0]["selected_components"] == 2);
  CHECK(file["targets"][0]["other_files"]["ok"] == true);
  auto text = f.Admin().Get(Rec(rid, "validation") + "?format=text");
  CHECK(text.status == 200);
  CHECK(Has(text.body, "PASSED"));

  // What is deployed where names the record; Verify files checks the composed tree.
  json app = Body(f.Admin().Get("/api/v1/applications/shop"));
  json current = app["stages"][0]["targets"][0]["current"];
  CHECK_MESSAGE(current["label"] == "1.0 build 2 + rollback record #" + std::to_string(rid) +
                                        " (2 of 3 components reverted)",
                app.dump());
  CHECK(current["rollback_record"]["id"] == rid);
  auto verified = rob.Post("/api/v1/targets/web1/validate", "{}");
  REQUIRE_MESSAGE(verified.status == 200, verified.body);
  CHECK_MESSAGE(Body(verified)["ok"] == true, verified.body);

  // A changed file after execution: the validation names it as another file.
  REQUIRE(WriteFileAtomic(f.root() / "web2/current/static/site.css", "hot fix\n").ok());
  auto again = rob.Post(Rec(rid, "validate"), "{}");
  REQUIRE(again.status == 200);
  CHECK(Body(again)["status"] == "validation-failed");
  file = Body(f.Admin().Get(Rec(rid, "validation")));
  CHECK(file["targets"][1]["other_files"]["problems"][0]["path"] == "static/site.css");
  CHECK(file["targets"][1]["components"]["ok"] == true);
  REQUIRE(WriteFileAtomic(f.root() / "web2/current/static/site.css", "body{}\n").ok());

  // The rollback logs report.
  json list =
      Body(f.Admin().Get("/api/v1/rollback-records?application=shop&status=validation-failed"));
  REQUIRE(list["items"].size() == 1);
  CHECK(list["items"][0]["approved_by"] == json::array({"rob"}));
  auto csv = f.Admin().Get("/api/v1/rollback-records?format=csv");
  CHECK(csv.status == 200);
  CHECK(Has(csv.body, "id,status,application"));
  CHECK(Has(csv.body, std::to_string(rid) + ",validation-failed,shop,Production"));
  CHECK(f.Admin().Get("/api/v1/rollback-records?status=bogus").status == 400);
  CHECK(f.Admin().Get("/api/v1/rollback-records?from=yesterday").status == 400);

  // Every transition is audited.
  json audit = Body(f.Admin().Get(Rec(rid)))["audit"];
  std::set<std::string> actions;
  for (const auto& e : audit) actions.insert(e["action"]);
  for (const char* a :
       {"rollback-record.create", "rollback-record.select", "rollback-record.test-connection",
        "rollback-record.submit", "rollback-record.approve", "rollback-record.execute",
        "rollback-record.executed", "rollback-record.validate"})
    CHECK_MESSAGE(actions.count(a) == 1, a);

  // Re-deploying build 2 restores it completely.
  f.Deploy(2);
  for (const char* target : {"web1", "web2"}) {
    std::map<std::string, std::string> expected;
    for (const auto& [path, content] : TreeOf(2)) expected[path] = Sha256Hex(content);
    CHECK(HashTree(f.root() / target / "current") == expected);
  }
}

TEST_CASE("rollback record: each step of its life is announced to a webhook, signed") {
  Receiver receiver;
  RollbackFixture f(nullptr, /*allow_private=*/true);
  std::vector<std::string> events = {"rollback-record.created",  "rollback-record.submitted",
                                     "rollback-record.approved", "rollback-record.executing",
                                     "rollback-record.executed", "rollback-record.validated"};
  json hook = {{"url", receiver.url()}, {"events", events}, {"secret", kReceiverSecret}};
  REQUIRE(f.Admin().Put("/api/v1/webhooks/records", hook.dump()).status == 201);
  f.Deploy(1);
  int64_t d2 = f.Deploy(2);
  auto rob = f.Rob();
  const auto [rid, run] = f.ExecuteRecordOf(d2);
  f.WaitRecord(rid, "executed");
  REQUIRE(rob.Post(Rec(rid, "validate"), "{}").status == 200);
  REQUIRE(WaitUntil([&] { return receiver.count() >= events.size(); }));
  std::vector<std::string> got;
  for (const auto& r : receiver.received()) {
    CHECK(r.signature_ok);
    auto data = json::parse(r.body)["data"];
    CHECK(data["record_id"] == rid);
    // Up to its approval a record is about the deployment it reverts; from its
    // execution on, about the run that executes it.
    CHECK(data["deployment_id"] == (got.size() < 3 ? d2 : run));
    got.push_back(r.event);
  }
  CHECK(got == events);
}

TEST_CASE("rollback record: a drifted target refuses execution; A's bytes gone refuse creation") {
  RollbackFixture f;
  f.Deploy(1);
  int64_t d2 = f.Deploy(2);
  auto rita = f.Rita();
  auto rob = f.Rob();
  const std::string create = "/api/v1/deployments/" + std::to_string(d2) + "/rollback-records";
  auto created = rita.Post(create, "{}");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  const int64_t rid = Body(created)["id"];
  REQUIRE(rita.Post(Rec(rid, "submit"), "{}").status == 200);
  REQUIRE(rob.Post(Rec(rid, "approve"), "{}").status == 200);

  // Someone edits D's files on web2: the check names the file; execution is refused.
  REQUIRE(WriteFileAtomic(f.root() / "web2/current/index.html", "edited\n").ok());
  auto tested = rob.Post(Rec(rid, "test-connection"), "{}");
  REQUIRE(tested.status == 200);
  json rec = Body(tested);
  CHECK(rec["connection_ok"] == false);
  CHECK(rec["connection"]["targets"][1]["drifted"][0]["path"] == "index.html");
  auto refused = rob.Post(Rec(rid, "execute"), "{}");
  CHECK(refused.status == 409);
  CHECK(Has(ErrorMessage(refused), "connection check"));
  CHECK(Body(f.Admin().Get(Rec(rid)))["status"] == "approved");
  CHECK(ReadFile(f.root() / "web1/current/index.html") == TreeOf(2)["index.html"]);

  // A's bytes gone: its release no longer cached and its blob removed by retention.
  for (const char* target : {"web1", "web2"})
    for (const auto& e : fs::directory_iterator(f.root() / target / ".reprise/releases"))
      if (Has(e.path().filename().string(), "1.0-1-")) fs::remove_all(e.path());
  {
    SQLite::Database db((f.server().data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    REQUIRE(db.exec("UPDATE artifacts SET blob_removed_at=1 WHERE release='1.0' AND build=1") == 1);
  }
  auto gone = rita.Post(create, "{}");
  CHECK(gone.status == 409);
  CHECK_MESSAGE(Has(ErrorMessage(gone), "are gone"), gone.body);

  // Not succeeded: a deployment that is not finished or failed is not eligible.
  auto unknown = rita.Post("/api/v1/deployments/9999/rollback-records", "{}");
  CHECK(unknown.status == 404);
}

TEST_CASE("rollback-record CLI: create, submit, approve, execute, validate, list") {
  RollbackFixture f;
  f.Deploy(1);
  int64_t d2 = f.Deploy(2);
  auto created = f.Cli(f.rita_token(), "--json rollback-record create " + std::to_string(d2) +
                                           " --component index.html --comment 'bad page'");
  REQUIRE_MESSAGE(created.exit_code == 0, created.output);
  const std::string rid = std::to_string(json::parse(created.output)["id"].get<int64_t>());
  auto shown = f.Cli(f.rita_token(), "rollback-record show " + rid);
  CHECK(shown.exit_code == 0);
  CHECK_MESSAGE(Has(shown.output, "2 of 6 components selected"), shown.output);
  REQUIRE(f.Cli(f.rita_token(), "rollback-record submit " + rid).exit_code == 0);
  auto self = f.Cli(f.rita_token(), "rollback-record approve " + rid);
  CHECK(self.exit_code == 1);
  CHECK(Has(self.output, "cannot approve"));
  REQUIRE(f.Cli(f.rob_token(), "rollback-record approve " + rid + " --comment ok").exit_code == 0);
  auto executed = f.Cli(f.rob_token(), "rollback-record execute " + rid);
  REQUIRE_MESSAGE(executed.exit_code == 0, executed.output);
  f.WaitRecord(std::stoll(rid), "executed");
  CHECK(ReadFile(f.root() / "web1/current/index.html") == TreeOf(1)["index.html"]);
  CHECK(ReadFile(f.root() / "web1/current/api/status.json") == TreeOf(2)["api/status.json"]);
  auto validated = f.Cli(f.rob_token(), "rollback-record validate " + rid);
  CHECK_MESSAGE(validated.exit_code == 0, validated.output);
  CHECK(Has(validated.output, "PASSED"));
  auto listed = f.Cli(f.rob_token(), "rollback-record list --app shop --csv");
  CHECK(listed.exit_code == 0);
  CHECK(Has(listed.output, rid + ",validated,shop,Production"));
  auto usage = f.Cli(f.rob_token(), "rollback-record execute");
  CHECK(usage.exit_code == 2);
}

TEST_CASE("rollback record: a scheduled execution survives a restart and runs once") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  RollbackFixture f(&clock);
  f.Deploy(1);
  int64_t d2 = f.Deploy(2);
  auto rita = f.Rita();
  auto created = rita.Post("/api/v1/deployments/" + std::to_string(d2) + "/rollback-records",
                           R"({"components": ["legacy.txt"]})");
  REQUIRE_MESSAGE(created.status == 201, created.body);
  const int64_t rid = Body(created)["id"];
  REQUIRE(rita.Post(Rec(rid, "submit"), "{}").status == 200);
  REQUIRE(f.Rob().Post(Rec(rid, "approve"), "{}").status == 200);
  const auto due = clock.Now() + std::chrono::hours(1);
  const std::string at = FormatRfc3339Utc(due);
  auto scheduled = f.Rob().Post(Rec(rid, "execute"), json{{"at", at}}.dump());
  REQUIRE_MESSAGE(scheduled.status == 200, scheduled.body);
  CHECK(Body(scheduled)["status"] == "scheduled");
  const int64_t exec_id = Body(scheduled)["execution_deployment_id"];

  f.server().Restart();
  f.StartAgent();
  CHECK(Body(f.Admin().Get(Rec(rid)))["status"] == "scheduled");
  CHECK(Body(f.Admin().Get("/api/v1/deployments/" + std::to_string(exec_id)))["status"] ==
        "scheduled");
  clock.Set(due + std::chrono::seconds(1));
  json run = f.WaitDeployment(exec_id);
  CHECK_MESSAGE(run["status"] == "succeeded", run.dump());
  f.WaitRecord(rid, "executed");
  CHECK(ReadFile(f.root() / "web1/current/legacy.txt") == TreeOf(1)["legacy.txt"]);
  CHECK(ReadFile(f.root() / "web2/current/index.html") == TreeOf(2)["index.html"]);
  // Exactly once: one "running rollback record" line in its log.
  json log = Body(f.Admin().Get("/api/v1/deployments/" + std::to_string(exec_id) + "/log"));
  int runs = 0;
  for (const auto& line : log["lines"])
    runs += Has(line.value("text", ""), "running rollback record");
  CHECK(runs == 1);
}

// Builds 3 and 4 of 1,500 files each, every file changed between them: a
// record of build 4's deployment reverts them all, so composing takes long
// enough for the agent to die in the middle of it.
std::map<std::string, std::string> WideTree(char letter) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 1500; ++i)
    files["data/f" + std::to_string(i) + ".txt"] = std::string(1024 + i % 7, letter);
  return files;
}

// Every file under `current` comes from one build: 'c' (build 3, the record's
// result) or 'd' (build 4, D); "" when the tree is missing, partial or mixed.
std::string WholeTreeOf(const fs::path& current) {
  std::set<char> letters;
  size_t files = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(current, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    ++files;
    std::string text = ReadFile(it->path());
    letters.insert(text.empty() ? '?' : text[0]);
  }
  if (ec || files != 1500 || letters.size() != 1) return "";
  return std::string(1, *letters.begin());
}

TEST_CASE("rollback record: kill -9 of the agent while it composes leaves a whole release live") {
  RollbackFixture f;
  auto admin = f.Admin();
  for (int build : {3, 4}) {
    REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
    auto up = admin.Put(PipelineFixture::BuildPath(build) + "/artifacts/web",
                        TarGzOf(fs::path(f.root()).parent_path(), WideTree(build == 3 ? 'c' : 'd')),
                        "application/gzip");
    REQUIRE_MESSAGE(up.status == 201, up.body);
  }
  f.Deploy(3);
  int64_t d4 = f.Deploy(4);
  const auto [rid, exec_id] = f.ExecuteRecordOf(d4);
  auto rita = f.Rita();

  // The agent dies once it has started composing.
  REQUIRE(WaitUntil([&] {
    auto log = Body(admin.Get("/api/v1/deployments/" + std::to_string(exec_id) + "/log"));
    for (const auto& line : log["lines"])
      if (Has(line.value("text", ""), "composing")) return true;
    return false;
  }));
  f.KillAgent();
  f.StartAgent();
  json run = f.WaitDeployment(exec_id);
  json rec;
  REQUIRE_MESSAGE(WaitUntil([&] {
                    rec = Body(admin.Get(Rec(rid)));
                    return rec["status"] == "executed" || rec["status"] == "failed";
                  }),
                  rec.dump());

  // Each target runs a whole release: D's, or the composed one; never a mix.
  for (const char* target : {"web1", "web2"}) {
    const std::string whole = WholeTreeOf(f.root() / target / "current");
    CHECK_MESSAGE((whole == "c" || whole == "d"), target, " runs a partial tree; ", run.dump());
    MESSAGE(std::string(target), " runs build ",
            std::string(whole == "d" ? "4 (D)" : "3 (composed)"), " after the kill; the record is ",
            rec["status"].dump());
  }
  // What the kill left behind does not stand in the way of the next deploy.
  json again = f.WaitDeployment(Body(
      rita.Post(PipelineFixture::BuildPath(4) + "/deploy", R"({"stage":"Production"})"))["id"]);
  CHECK_MESSAGE(again["status"] == "succeeded", again.dump());
  for (const char* target : {"web1", "web2"})
    CHECK(WholeTreeOf(f.root() / target / "current") == "d");
}

}  // namespace reprise::testing
