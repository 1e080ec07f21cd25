// Store::FireScheduled: the scheduler's compare-and-set out of `scheduled`,
// on both stores. A burst is fired in a few statements (ids grouped by where
// they go, padded lists); each deployment must still move exactly once, only
// when due and still scheduled, to its own status with its own error.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "tests/server/store/store_fixture.h"

namespace reprise {

TEST_CASE("FireScheduled moves each due scheduled deployment once, where it goes") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s, 1);
  // 600 due (more than one statement's worth), one not due yet, one that a
  // user cancelled before the scheduler got to it.
  std::vector<ScheduledFiring> firings;
  for (int i = 0; i < 600; ++i) {
    auto d = CreatePromotion(*s, {.status = "scheduled", .scheduled_at = 1000 + i});
    std::string to = i % 3 == 0 ? "queued" : i % 3 == 1 ? "waiting" : "expired";
    firings.push_back({d.id, to, to == "expired" ? "expired " + std::to_string(i) : ""});
  }
  auto later = CreatePromotion(*s, {.status = "scheduled", .scheduled_at = 5000});
  auto cancelled = CreatePromotion(*s, {.status = "scheduled", .scheduled_at = 1000});
  REQUIRE(*s->TransitionDeployment(cancelled.id, {"scheduled"}, "cancelled", 0, 1, ""));
  firings.push_back({later.id, "queued", ""});
  firings.push_back({cancelled.id, "queued", ""});

  auto moved = s->FireScheduled(firings, 2000, 7);
  REQUIRE_MESSAGE(moved.ok(), moved.status().ToString());
  std::vector<int64_t> ids = *moved;
  std::sort(ids.begin(), ids.end());
  REQUIRE(ids.size() == 600);
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());  // each once
  for (size_t i = 0; i < 600; ++i) {
    CHECK(ids[i] == firings[i].id);
    auto d = s->GetDeployment(firings[i].id);
    REQUIRE(d.ok());
    CHECK(d->status == firings[i].to);
    if (firings[i].to == "expired") {
      CHECK(d->error == firings[i].error);
      CHECK(d->finished_at == 7);
    } else {
      CHECK(d->error.empty());
      CHECK(d->finished_at == 0);
    }
  }
  CHECK(s->GetDeployment(later.id)->status == "scheduled");
  CHECK(s->GetDeployment(cancelled.id)->status == "cancelled");
  // A second server firing the same list finds nothing left to move.
  auto again = s->FireScheduled(firings, 2000, 8);
  REQUIRE(again.ok());
  CHECK(again->empty());
}

}  // namespace reprise
