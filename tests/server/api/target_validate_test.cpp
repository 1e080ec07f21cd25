// POST /api/v1/targets/{target}/validate end to end: a real server on port 0,
// builds deployed by a real reprise-agent, then the target's files checked
// against the manifest of the build its agent says it runs.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {

namespace {

HttpResult Validate(HttpClient& as, const std::string& target, const std::string& body = "{}") {
  return as.Post("/api/v1/targets/" + target + "/validate", body);
}

std::string ErrorCode(const HttpResult& r) { return Body(r)["error"].value("code", ""); }
std::string ErrorMessage(const HttpResult& r) { return Body(r)["error"].value("message", ""); }

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Deploys `build` to Integration as a deployer and waits for it and for the
// automatic promotion to Testing that follows.
void DeployToIntegration(PipelineFixture& f, int build) {
  auto dan = f.Deployer();
  f.DeployToTesting(dan, build);
}

std::string ArtifactSha(PipelineFixture& f, int build) {
  auto r = f.Admin().Get(PipelineFixture::BuildPath(build) + "/artifacts/web");
  REQUIRE(r.status == 200);
  return r.headers["x-checksum-sha256"];
}

bool AgentOffline(PipelineFixture& f, const std::string& name) {
  const json agents = Body(f.Admin().Get("/api/v1/agents"));
  for (const auto& a : agents["items"])
    if (a["name"] == name) return a["online"] == false;
  return false;
}

}  // namespace

TEST_CASE("validate: a deployed build matches; a changed, a deleted and an added file are named") {
  PipelineFixture f;
  DeployToIntegration(f, 1);
  auto dan = f.Deployer();

  auto ok = Validate(dan, "int-web");
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  json report = Body(ok);
  CHECK(report["target"] == "int-web");
  CHECK(report["agent"] == "box");
  CHECK(report["release"] == "1.0");
  CHECK(report["build"] == 1);
  CHECK(report["artifact"] == "web");
  CHECK(report["sha256"] == ArtifactSha(f, 1));
  CHECK(report["ok"] == true);
  CHECK(report["files_checked"] == TreeOf(1).size());
  CHECK(report["missing"] == json::array());
  CHECK(report["changed"] == json::array());
  CHECK(report["extra"] == json::array());

  // Someone edits the live tree: same size, other bytes; a file deleted; one added.
  const fs::path current = f.root() / "int-web" / "current";
  REQUIRE(ReadFile(current / "index.html") == "<h1>build 1</h1>\n");
  REQUIRE(WriteFileAtomic(current / "index.html", "<h1>build 9</h1>\n").ok());
  fs::remove(current / "static" / "site.css");
  REQUIRE(WriteFileAtomic(current / "notes.txt", "hot fix\n").ok());

  auto differs = Validate(dan, "int-web");
  REQUIRE_MESSAGE(differs.status == 200, differs.body);
  report = Body(differs);
  CHECK(report["ok"] == false);
  CHECK(report["build"] == 1);
  CHECK(report["missing"] == json::array({"static/site.css"}));
  CHECK(report["changed"] ==
        json::array({{{"path", "index.html"}, {"problem", "content differs"}}}));
  CHECK(report["extra"] == json::array({"notes.txt"}));

  // Both are audited, newest first, by who asked.
  auto audit = Body(f.Admin().Get("/api/v1/audit?action=target.validate"));
  REQUIRE(audit["items"].size() == 2);
  CHECK(audit["items"][0]["actor"] == "dan");
  CHECK(audit["items"][0]["subject"] == "int-web");
  CHECK(audit["items"][0]["summary"] == "3 problems (1 missing, 1 changed, 1 extra); 1.0 build 1");
  CHECK(audit["items"][1]["summary"] ==
        "ok, " + std::to_string(TreeOf(1).size()) + " files; 1.0 build 1");

  // A viewer may not ask; nothing is audited for the refusal.
  auto viewer = f.Viewer();
  auto refused = Validate(viewer, "int-web");
  CHECK(refused.status == 403);
  CHECK(ErrorCode(refused) == "permission_denied");
  CHECK(Body(f.Admin().Get("/api/v1/audit?action=target.validate"))["items"].size() == 2);

  auto unknown = Validate(dan, "no-such-web");
  CHECK(unknown.status == 404);
  CHECK(ErrorCode(unknown) == "not_found");
  CHECK(Has(ErrorMessage(unknown), "no-such-web"));

  // Production holds nothing yet.
  auto empty = Validate(dan, "prod-web");
  CHECK(empty.status == 409);
  CHECK(ErrorCode(empty) == "failed_precondition");
  CHECK(Has(ErrorMessage(empty), "nothing is deployed on target prod-web"));

  auto fields = Validate(dan, "int-web", R"({"deep": true})");
  CHECK(fields.status == 400);
  CHECK(Has(ErrorMessage(fields), "'deep'"));
}

TEST_CASE("validate: a gone artifact record and an offline agent are clear errors") {
  PipelineFixture f;
  DeployToIntegration(f, 2);
  auto dan = f.Deployer();
  REQUIRE(Validate(dan, "test-web").status == 200);

  // The build's artifact record is gone (as after retention): no manifest to check against.
  const std::string sha = ArtifactSha(f, 2);
  {
    SQLite::Database db((f.server().data_dir() / "reprise.db").string(), SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    REQUIRE(db.exec("DELETE FROM artifacts WHERE release='1.0' AND build=2") == 1);
  }
  auto gone = Validate(dan, "test-web");
  CHECK(gone.status == 409);
  CHECK(ErrorCode(gone) == "failed_precondition");
  CHECK(Has(ErrorMessage(gone), sha));
  CHECK(Has(ErrorMessage(gone), "1.0 build 2 on target test-web"));

  // The agent goes away: the answer names it.
  f.StopAgent();
  REQUIRE(WaitUntil([&] { return AgentOffline(f, "box"); }));
  auto offline = Validate(dan, "int-web");
  CHECK(offline.status == 503);
  CHECK(ErrorCode(offline) == "unavailable");
  CHECK(Has(ErrorMessage(offline), "agent box of target int-web is offline"));
  CHECK(Body(f.Admin().Get("/api/v1/audit?action=target.validate"))["items"].size() == 1);
}

}  // namespace reprise::testing
