// The irreversible steps that ran, kept per application and stage.
#include <doctest/doctest.h>

#include "server/store/store.h"
#include "tests/temp_dir.h"

namespace reprise {

TEST_CASE("irreversible steps are kept and listed per stage after a time, oldest first") {
  TempDir dir;
  auto opened = OpenSqliteStore({(dir.path() / "r.db").string(), 5000});
  REQUIRE(opened.ok());
  Store& s = **opened;
  REQUIRE(s.PutApplication({"shop", 0, "{}", "", 1, "t", "{}"}).ok());
  REQUIRE(s.CreateRelease({"shop", "1.0", 1, "{}", "{}", 1, "t"}).ok());
  REQUIRE(s.CreateBuild({"shop", "1.0", 0, "{}", 1, "t"}).ok());
  REQUIRE(s.CreateBuild({"shop", "1.0", 0, "{}", 2, "t"}).ok());
  DeploymentRecord d;
  d.application = "shop";
  d.release = "1.0";
  d.build = 2;
  d.stage = "Production";
  d.kind = "promote";
  d.status = "running";
  d.requested_by = "fay";
  d.created_at = 60;
  auto created = s.CreateDeployment(d);
  REQUIRE(created.ok());
  auto step = [&](int64_t at, std::string target, std::string stage) {
    return IrreversibleStepRecord{0,
                                  created->id,
                                  "shop",
                                  stage,
                                  "1.0",
                                  2,
                                  "2",
                                  "plan p:3:3",
                                  "exec ./migrate.sh up",
                                  target,
                                  at,
                                  "succeeded",
                                  "schema v42",
                                  true};
  };
  REQUIRE(s.AddIrreversibleStep(step(300, "web-2", "Production")).ok());
  REQUIRE(s.AddIrreversibleStep(step(200, "web-1", "Production")).ok());
  REQUIRE(s.AddIrreversibleStep(step(250, "test-1", "Testing")).ok());
  REQUIRE(s.AddIrreversibleStep(step(100, "web-1", "Production")).ok());

  auto all = s.ListIrreversibleSteps("shop", "Production", 0);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].ran_at == 100);
  CHECK((*all)[1].ran_at == 200);
  CHECK((*all)[2].target == "web-2");
  const auto& first = (*all)[0];
  CHECK(first.deployment_id == created->id);
  CHECK(first.build == 2);
  CHECK(first.release == "1.0");
  CHECK(first.step_id == "2");
  CHECK(first.position == "plan p:3:3");
  CHECK(first.label == "exec ./migrate.sh up");
  CHECK(first.outcome == "succeeded");
  CHECK(first.note == "schema v42");
  CHECK(first.has_undo);
  auto later = s.ListIrreversibleSteps("shop", "Production", 200);
  REQUIRE(later.ok());
  REQUIRE(later->size() == 1);
  CHECK((*later)[0].ran_at == 300);
  auto none = s.ListIrreversibleSteps("other", "Production", 0);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

}  // namespace reprise
