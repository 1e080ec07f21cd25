// Retention end to end: builds promoted through the pipeline by a real agent,
// then POST /api/v1/admin/retention with every rule at 0.
#include <doctest/doctest.h>

#include <set>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {

namespace {

std::set<int64_t> Builds(const json& list) {
  std::set<int64_t> out;
  for (const auto& d : list) out.insert(d["build"].get<int64_t>());
  return out;
}

const json* FindBuild(const json& list, int64_t build) {
  for (const auto& d : list)
    if (d["build"] == build) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("retention with every rule at 0 keeps what the targets hold; rollback still works") {
  PipelineFixture f;
  auto admin = f.Admin();
  f.PromoteThroughAll(1);
  // Build 2 goes to Integration and, automatically, to Testing.
  f.DeployToTesting(admin, 2);

  // Build 3 carries build 1's exact bytes (one shared blob); build 4 its own.
  auto b1 = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web");
  REQUIRE(b1.status == 200);
  const std::string sha1 = b1.headers["x-checksum-sha256"];
  for (int n : {3, 4}) {
    auto created = admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}");
    REQUIRE(created.status == 201);
    REQUIRE(Body(created)["number"] == n);
  }
  REQUIRE(admin.Put(PipelineFixture::BuildPath(3) + "/artifacts/web", b1.body, "application/gzip")
              .status == 201);
  const std::string bytes4 = TarGzOf(f.scratch(), TreeOf(4));
  auto up4 =
      admin.Put(PipelineFixture::BuildPath(4) + "/artifacts/web", bytes4, "application/gzip");
  REQUIRE(up4.status == 201);
  const std::string sha4 = Body(up4)["sha256"];

  const std::string everything_off =
      R"({"keep_builds": 0, "keep_days": 0, "keep_rollback_candidates": 0)";

  {  // Only admins may run it; bad policies are refused.
    CHECK(f.ReleaseManager().Post("/api/v1/admin/retention", "{}").status == 403);
    for (const char* bad :
         {R"({"keep_build": 1})", R"({"keep_days": -1})", R"({"keep_builds": "10"})",
          R"({"dry_run": "no"})", R"({"keep_rollback_candidates": 1001})", "[1]"}) {
      CAPTURE(bad);
      auto r = admin.Post("/api/v1/admin/retention", bad);
      CHECK(r.status == 400);
      CHECK(Body(r)["error"]["code"] == "invalid_argument");
    }
  }

  {  // The default is a dry run with the default policy.
    auto r = admin.Post("/api/v1/admin/retention", "");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    json j = Body(r);
    CHECK(j["dry_run"] == true);
    CHECK(j["policy"] ==
          json{{"keep_builds", 10}, {"keep_days", 30}, {"keep_rollback_candidates", 5}});
    CHECK(j["deleted"].empty());
    CHECK(Builds(j["kept"]) == std::set<int64_t>{1, 2, 3, 4});
  }

  {  // With every rule at 0: a dry run, then for real.
    auto dry = admin.Post("/api/v1/admin/retention", everything_off + "}");
    REQUIRE_MESSAGE(dry.status == 200, dry.body);
    json d = Body(dry);
    CHECK(d["dry_run"] == true);
    CHECK(Builds(d["deleted"]) == std::set<int64_t>{3, 4});
    CHECK(Builds(d["kept"]) == std::set<int64_t>{1, 2});
    CHECK(d["blobs_removed"] == 1);
    CHECK(d["removed_blobs"] == json::array({sha4}));
    // Plus the derived file contents only build 4 had, if derived by now.
    CHECK(d["bytes_freed"] == bytes4.size() + d["file_bytes_freed"].get<uint64_t>());
    const json* kept1 = FindBuild(d["kept"], 1);
    REQUIRE(kept1 != nullptr);
    CHECK((*kept1)["decision"] == "keep");
    CHECK((*kept1)["reasons"] == json::array({"deployed on prod-web (Production)"}));
    const json* kept2 = FindBuild(d["kept"], 2);
    REQUIRE(kept2 != nullptr);
    CHECK((*kept2)["reasons"] ==
          json::array({"deployed on int-web (Integration)", "deployed on test-web (Testing)"}));
    const json* gone3 = FindBuild(d["deleted"], 3);
    REQUIRE(gone3 != nullptr);
    CHECK((*gone3)["decision"] == "delete");
    CHECK((*gone3)["artifacts"][0]["blob_removed"] == false);
    CHECK((*gone3)["artifacts"][0]["blob_shared_with"] == json::array({"shop 1.0 build 1"}));
    // Nothing changed.
    CHECK(admin.Get(PipelineFixture::BuildPath(4) + "/artifacts/web").status == 200);
    CHECK(admin.Get(PipelineFixture::BuildPath(3) + "/artifacts/web").status == 200);

    auto real = admin.Post("/api/v1/admin/retention", everything_off + R"(, "dry_run": false})");
    REQUIRE_MESSAGE(real.status == 200, real.body);
    json r = Body(real);
    CHECK(r["dry_run"] == false);
    CHECK(Builds(r["deleted"]) == std::set<int64_t>{3, 4});
    CHECK(r["removed_blobs"] == json::array({sha4}));
    CHECK(r["bytes_freed"] == bytes4.size() + r["file_bytes_freed"].get<uint64_t>());
    CHECK(r["warnings"].empty());

    // The deployed build's blob still downloads, byte for byte.
    auto again = admin.Get(PipelineFixture::BuildPath(1) + "/artifacts/web");
    REQUIRE(again.status == 200);
    CHECK(again.body == b1.body);
    CHECK(Sha256Hex(again.body) == sha1);
    CHECK(admin.Get(PipelineFixture::BuildPath(2) + "/artifacts/web").status == 200);
    // The deleted builds stay, their artifact records as tombstones without bytes.
    CHECK(admin.Get(PipelineFixture::BuildPath(3) + "/artifacts/web").status == 404);
    CHECK(admin.Get(PipelineFixture::BuildPath(4) + "/artifacts/web").status == 404);
    auto build4 = admin.Get(PipelineFixture::BuildPath(4));
    REQUIRE(build4.status == 200);
    REQUIRE(Body(build4)["artifacts"].size() == 1);
    CHECK(Body(build4)["artifacts"][0]["sha256"] == sha4);
    CHECK(Body(build4)["artifacts"][0]["blob_removed"] == true);
    auto audit = Body(admin.Get("/api/v1/audit?action=artifact.retention"));
    std::set<std::string> subjects;
    for (const auto& e : audit["items"]) subjects.insert(e["subject"].get<std::string>());
    CHECK(subjects == std::set<std::string>{"shop/1.0/3", "shop/1.0/4"});

    // Rolling Testing back to build 1 still works: its artifact is there.
    auto back = f.Deploy(admin, 1, {{"stage", "Testing"}});
    json done = f.WaitFinal(back["id"]);
    CHECK_MESSAGE(done["status"] == "succeeded", done.dump());
    CHECK(ReadFile(f.root() / "test-web" / "current" / "index.html") == "<h1>build 1</h1>\n");
  }
}

}  // namespace reprise::testing
