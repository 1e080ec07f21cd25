// The irreversible steps that ran, kept per application and stage.
#include <doctest/doctest.h>

#include "tests/server/store/store_fixture.h"

namespace reprise {

TEST_CASE("irreversible steps are kept and listed per stage after a time, oldest first") {
  TempDir dir;
  auto opened = OpenTestStore(dir);
  Store& s = *opened;
  SeedShop(s, 2);
  auto created = CreatePromotion(s, {.build = 2, .requested_by = "fay", .created_at = 60});
  auto step = [&](int64_t at, std::string target, std::string stage) {
    return IrreversibleStepRecord{0,
                                  created.id,
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
  CHECK(first.deployment_id == created.id);
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
