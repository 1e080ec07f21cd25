// What a build promises once it exists: retention removes its bytes but never
// its record (the identical bytes restore it, other bytes are refused), a
// deployed or sealed build takes no new artifacts, and a target belongs to
// one application. Real server, real SQLite, a real agent on loopback.
#include <doctest/doctest.h>

#include <set>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {

namespace {

const std::string kEverythingOff =
    R"({"keep_builds": 0, "keep_days": 0, "keep_rollback_candidates": 0, "dry_run": false})";

std::string ErrorMessage(const HttpResult& r) {
  json j = Body(r);
  return j.contains("error") ? j["error"].value("message", "") : "";
}

void DeployToTesting(PipelineFixture& f, int build) {
  auto admin = f.Admin();
  f.DeployToTesting(admin, build);
}

PipelineOptions NoAgent() {
  PipelineOptions options;
  options.start_agent = false;
  return options;
}

}  // namespace

TEST_CASE("retention keeps a tombstone: other bytes are refused, the identical bytes restore it") {
  PipelineFixture f;
  auto admin = f.Admin();
  const std::string web1 = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web").body;
  const std::string sha1 = Sha256Hex(web1);
  DeployToTesting(f, 1);
  DeployToTesting(f, 2);

  auto retained = admin.Post("/api/v1/admin/retention", kEverythingOff);
  REQUIRE_MESSAGE(retained.status == 200, retained.body);
  std::set<int64_t> deleted;
  const json report = Body(retained);
  for (const auto& d : report["deleted"]) deleted.insert(d["build"].get<int64_t>());
  REQUIRE_MESSAGE(deleted == std::set<int64_t>{1}, retained.body);

  {  // The record stays and says its blob is gone.
    auto build = admin.Get(PipelineFixture::BuildPath(1));
    REQUIRE(build.status == 200);
    json artifacts = Body(build)["artifacts"];
    REQUIRE(artifacts.size() == 1);
    CHECK(artifacts[0]["name"] == "web");
    CHECK(artifacts[0]["sha256"] == sha1);
    CHECK(artifacts[0]["size"] == web1.size());
    CHECK(artifacts[0]["blob_removed"] == true);
    CHECK(artifacts[0]["blob_removed_at"].get<std::string>() != "");
    auto manifest = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web/manifest");
    REQUIRE(manifest.status == 200);
    CHECK(Body(manifest)["blob_removed"] == true);
    auto download = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web");
    CHECK(download.status == 404);
    CHECK(ErrorMessage(download).find(sha1) != std::string::npos);
  }

  {  // Other bytes under the retained name: refused, naming the recorded hash.
    auto other = admin.Put(PipelineFixture::BuildPath(1) + "/artifacts/web",
                           TarGzOf(f.scratch(), TreeOf(7)), "application/gzip");
    CHECK(other.status == 409);
    CHECK_MESSAGE(ErrorMessage(other).find(sha1) != std::string::npos, other.body);
  }

  {  // Deploying or previewing it is refused at request time, saying how to restore.
    for (const char* action : {"/deploy", "/preview"}) {
      CAPTURE(action);
      auto r = admin.Post(PipelineFixture::BuildPath(1) + action,
                          json{{"stage", "Integration"}, {"context", "current"}}.dump());
      CHECK(r.status == 409);
      CHECK(Body(r)["error"]["code"] == "failed_precondition");
      const std::string message = ErrorMessage(r);
      CHECK_MESSAGE(message.find("'web'") != std::string::npos, message);
      CHECK_MESSAGE(
          message.find("upload the identical archive (sha256 " + sha1) != std::string::npos,
          message);
    }
  }

  {  // The identical bytes restore it, audited.
    auto restored =
        admin.Put(PipelineFixture::BuildPath(1) + "/artifacts/web", web1, "application/gzip");
    REQUIRE_MESSAGE(restored.status == 200, restored.body);
    CHECK(Body(restored)["restored"] == true);
    CHECK(Body(restored)["created"] == false);
    auto audit = Body(admin.Get("/api/v1/audit?action=artifact.restore"));
    REQUIRE(audit["items"].size() == 1);
    CHECK(audit["items"][0]["subject"] == "shop/1.0/1/web");
    auto build = Body(admin.Get(PipelineFixture::BuildPath(1)));
    CHECK(build["artifacts"][0]["blob_removed"] == false);
    auto again =
        admin.Put(PipelineFixture::BuildPath(1) + "/artifacts/web", web1, "application/gzip");
    CHECK(again.status == 200);
    CHECK(Body(again)["restored"] == false);
  }

  // The restored build deploys exactly again.
  auto back = f.Deploy(admin, 1, {{"stage", "Integration"}});
  CHECK(f.WaitFinal(back["id"])["status"] == "succeeded");
  CHECK(ReadFile(f.root() / "int-web" / "current" / "index.html") == "<h1>build 1</h1>\n");
  CHECK(ReadFile(f.root() / "int-web" / "current" / "legacy.txt") == "old\n");
}

TEST_CASE("a deployed build is sealed: no artifact can be added to it") {
  PipelineFixture f;
  auto admin = f.Admin();
  auto before = Body(admin.Get(PipelineFixture::BuildPath(1)));
  CHECK(before["sealed"] == false);
  CHECK(before["sealed_reason"] == "");

  auto d = f.Deploy(admin, 1, {{"stage", "Integration"}});
  const int64_t id = d["id"];
  auto sealed = Body(admin.Get(PipelineFixture::BuildPath(1)));
  CHECK(sealed["sealed"] == true);
  CHECK(sealed["sealed_reason"] == "deployed in #" + std::to_string(id));

  auto added = admin.Put(PipelineFixture::BuildPath(1) + "/artifacts/docs",
                         TarGzOf(f.scratch(), TreeOf(9)), "application/gzip");
  CHECK(added.status == 409);
  CHECK(Body(added)["error"]["code"] == "failed_precondition");
  CHECK_MESSAGE(ErrorMessage(added) == "build 1.0 #1 is sealed: deployed in #" + std::to_string(id),
                added.body);
  CHECK(admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/docs").status == 404);
  // The identical bytes of an artifact it has are still a harmless no-op.
  auto web1 = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web").body;
  CHECK(admin.Put(PipelineFixture::BuildPath(1) + "/artifacts/web", web1, "application/gzip")
            .status == 200);
  CHECK(f.WaitFinal(id)["status"] == "succeeded");

  // ?target= lists the deployments that touched that target.
  auto on_int = Body(admin.Get("/api/v1/deployments?target=int-web"));
  REQUIRE(on_int["items"].size() == 1);
  CHECK(on_int["items"][0]["id"] == id);
  CHECK(Body(admin.Get("/api/v1/deployments?target=prod-web"))["items"].empty());
}

TEST_CASE("sealing a build by hand: deployers may, viewers may not; audited") {
  PipelineFixture f(NoAgent());
  auto admin = f.Admin();
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  const std::string seal = PipelineFixture::BuildPath(3) + "/seal";
  CHECK(f.Viewer().Post(seal, "{}").status == 403);
  CHECK(f.Deployer().Post(seal, R"({"bogus": 1})").status == 400);
  auto r = f.Deployer().Post(seal, "");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(Body(r)["sealed"] == true);
  const std::string reason = Body(r)["sealed_reason"];
  CHECK_MESSAGE(reason.rfind("sealed by dan at ", 0) == 0, reason);
  CHECK(Body(admin.Get(PipelineFixture::BuildPath(3)))["sealed_reason"] == reason);
  auto up = admin.Put(PipelineFixture::BuildPath(3) + "/artifacts/web",
                      TarGzOf(f.scratch(), TreeOf(3)), "application/gzip");
  CHECK(up.status == 409);
  CHECK(ErrorMessage(up) == "build 1.0 #3 is sealed: " + reason);
  auto audit = Body(admin.Get("/api/v1/audit?action=build.seal"));
  REQUIRE(audit["items"].size() == 1);
  CHECK(audit["items"][0]["subject"] == "shop/1.0/3");
  CHECK(audit["items"][0]["actor"] == "dan");
  // Sealing again changes nothing.
  auto again = f.Deployer().Post(seal, "{}");
  CHECK(again.status == 200);
  CHECK(Body(again)["sealed_reason"] == reason);
  CHECK(Body(admin.Get("/api/v1/audit?action=build.seal"))["items"].size() == 1);
  CHECK(admin.Post(PipelineFixture::BuildPath(99) + "/seal", "{}").status == 404);
}

TEST_CASE("a target belongs to one application") {
  PipelineFixture f(NoAgent());
  auto admin = f.Admin();
  const std::string blog = R"(
pipeline:
  - stage: Live
    environment: Production
    targets: [prod-web]
    plan: deploy
plans:
  deploy: |
    - log: "hi"
)";
  auto r = admin.Put("/api/v1/applications/blog", blog, "application/yaml");
  CHECK(r.status == 400);
  CHECK_MESSAGE(
      ErrorMessage(r).find("target 'prod-web' is used by application 'shop'") != std::string::npos,
      r.body);
  CHECK(admin.Get("/api/v1/applications/blog").status == 404);
  // A target of its own is fine; the application itself may keep its targets.
  REQUIRE(
      admin
          .Put("/api/v1/targets/blog-web",
               json{{"environment", "Production"}, {"agent", "box"}, {"path", "/srv/blog"}}.dump())
          .status == 200);
  std::string own = blog;
  own.replace(own.find("prod-web"), 8, "blog-web");
  auto ok = admin.Put("/api/v1/applications/blog", own, "application/yaml");
  CHECK_MESSAGE(ok.status == 200, ok.body);
  auto shop = admin.Get("/api/v1/applications/shop");
  REQUIRE(shop.status == 200);
}

TEST_CASE("list parameters out of range and unknown ones are refused, naming them") {
  PipelineFixture f(NoAgent());
  auto admin = f.Admin();
  const std::vector<std::string> lists = {
      "/api/v1/deployments",  "/api/v1/audit",
      "/api/v1/environments", "/api/v1/targets",
      "/api/v1/applications", "/api/v1/applications/shop/releases",
      "/api/v1/users",        "/api/v1/applications/shop/releases/1.0/builds",
      "/api/v1/agents",       "/api/v1/environments/Production/grants"};
  const std::vector<std::pair<std::string, std::string>> bad = {{"limit=0", "limit"},
                                                                {"limit=-1", "limit"},
                                                                {"limit=abc", "limit"},
                                                                {"limit=1001", "limit"},
                                                                {"limit=99999999999999", "limit"},
                                                                {"offset=-5", "offset"},
                                                                {"offset=x", "offset"},
                                                                {"bogus=1", "bogus"}};
  for (const auto& path : lists) {
    CAPTURE(path);
    auto fine = admin.Get(path + "?limit=1000&offset=0");
    CHECK_MESSAGE(fine.status == 200, fine.body);
    for (const auto& [query, name] : bad) {
      CAPTURE(query);
      auto r = admin.Get(path + "?" + query);
      CHECK(r.status == 400);
      CHECK(Body(r)["error"]["code"] == "invalid_argument");
      CHECK_MESSAGE(ErrorMessage(r).find("'" + name + "'") != std::string::npos, r.body);
    }
  }
  auto limit = admin.Get("/api/v1/deployments?limit=0");
  CHECK(ErrorMessage(limit).find("1 to 1000") != std::string::npos);
  // The filters each list documents are still taken.
  CHECK(admin.Get("/api/v1/deployments?application=shop&stage=Testing&status=failed&target=x")
            .status == 200);
  CHECK(admin.Get("/api/v1/audit?action=build&subject=shop").status == 200);
}

}  // namespace reprise::testing
