// The store's leases, with two connections to one real store file standing
// for two servers: claims keep per-target FIFO across servers, a live lease
// is never taken, a lapsed one is, named leases go to one owner at a time.
#include <doctest/doctest.h>

#include "tests/server/store/store_fixture.h"

namespace reprise {

namespace {

struct TwoServers {
  TempDir dir;
  std::unique_ptr<Store> a = OpenTestStore(dir);
  std::unique_ptr<Store> b = OpenTestStore(dir);
  TwoServers() { SeedShop(*a, 1); }

  int64_t Queued(const std::string& targets) {
    return CreatePromotion(*a, {.status = "queued", .targets_csv = targets}).id;
  }
};

std::vector<int64_t> Claim(Store& s, std::vector<int64_t> ids, const std::string& owner,
                           int64_t now = 1000, int64_t until = 2000) {
  auto claimed = s.ClaimDeployments(ids, owner, now, until);
  REQUIRE_MESSAGE(claimed.ok(), claimed.status().ToString());
  return *claimed;
}

}  // namespace

TEST_CASE("a claimed deployment is not claimed again by another server while its lease lives") {
  TwoServers s;
  int64_t d = s.Queued("web");
  CHECK(Claim(*s.a, {d}, "alpha") == std::vector<int64_t>{d});
  CHECK(Claim(*s.b, {d}, "beta").empty());
  auto lease = s.b->GetDeploymentLease(d);
  REQUIRE(lease.ok());
  CHECK(lease->owner == "alpha");
  CHECK(lease->until == 2000);
  // Lapsed (it never started: its server died): claimable again.
  CHECK(Claim(*s.b, {d}, "beta", 2001, 3000) == std::vector<int64_t>{d});
  CHECK(s.a->GetDeploymentLease(d)->owner == "beta");
}

TEST_CASE("per-target FIFO holds across servers") {
  TwoServers s;
  int64_t first = s.Queued("web");
  int64_t second = s.Queued("web,db");
  int64_t other = s.Queued("mail");
  // Beta cannot take the younger one on `web` while the older one waits,
  // whoever may run the older one; a deployment on other targets goes on.
  CHECK(Claim(*s.b, {second, other}, "beta") == std::vector<int64_t>{other});
  CHECK(Claim(*s.a, {first}, "alpha") == std::vector<int64_t>{first});
  // Claimed by alpha (live lease), then running: still holds `web`.
  CHECK(Claim(*s.b, {second}, "beta").empty());
  REQUIRE(*s.a->TransitionDeployment(first, {"queued"}, "running"));
  CHECK(Claim(*s.b, {second}, "beta", 5000, 6000).empty());  // running holds, lease or not
  REQUIRE(*s.a->TransitionDeployment(first, {"running"}, "succeeded"));
  CHECK(Claim(*s.b, {second}, "beta") == std::vector<int64_t>{second});
}

TEST_CASE("renewing keeps a lease; one taken over is no longer renewed; releasing frees it") {
  TwoServers s;
  int64_t d = s.Queued("web");
  REQUIRE(Claim(*s.a, {d}, "alpha").size() == 1);
  CHECK(*s.a->RenewDeploymentLeases({d}, "alpha", 9000) == std::vector<int64_t>{d});
  CHECK(s.b->GetDeploymentLease(d)->until == 9000);
  CHECK(s.b->RenewDeploymentLeases({d}, "beta", 9999)->empty());
  REQUIRE(s.a->ReleaseDeploymentLeases({d}, "alpha").ok());
  CHECK(s.b->GetDeploymentLease(d)->owner == "");
  CHECK(Claim(*s.b, {d}, "beta") == std::vector<int64_t>{d});
}

TEST_CASE("renewing tells a deployment that ended here from one another server took") {
  TwoServers s;
  int64_t ended = s.Queued("web");
  int64_t released = s.Queued("db");
  int64_t taken = s.Queued("mail");
  REQUIRE(Claim(*s.a, {ended, released, taken}, "alpha", 1000, 2000).size() == 3);
  for (int64_t id : {ended, released, taken})
    REQUIRE(*s.a->TransitionDeployment(id, {"queued"}, "running"));
  // Between alpha's listing of what it runs and its renewal: one ends (and
  // its lease is given up), one ends, and beta takes one over (lapsed).
  REQUIRE(*s.a->TransitionDeployment(ended, {"running"}, "succeeded"));
  REQUIRE(*s.a->TransitionDeployment(released, {"running"}, "failed"));
  REQUIRE(s.a->ReleaseDeploymentLeases({released}, "alpha").ok());
  auto interrupted =
      s.b->InterruptOrphaned("beta", 2001, {}, "the server stopped", OrphanScope::kLapsed);
  REQUIRE(interrupted.ok());
  REQUIRE(interrupted->size() == 1);
  CHECK((*interrupted)[0].id == taken);
  // Only the one beta took is lost to alpha.
  auto kept = s.a->RenewDeploymentLeases({ended, released, taken}, "alpha", 9000);
  REQUIRE(kept.ok());
  CHECK(*kept == std::vector<int64_t>{ended, released});
  CHECK(s.a->GetDeploymentLease(taken)->owner == "beta");
}

TEST_CASE("only running deployments with a lapsed lease, or this server's own, are interrupted") {
  TwoServers s;
  int64_t live = s.Queued("a");
  int64_t lapsed = s.Queued("b");
  int64_t own = s.Queued("c");
  int64_t here = s.Queued("d");
  REQUIRE(Claim(*s.a, {live, lapsed}, "alpha", 1000, 5000).size() == 2);
  REQUIRE(*s.a->RenewDeploymentLeases({lapsed}, "alpha", 1500) == std::vector<int64_t>{lapsed});
  REQUIRE(Claim(*s.b, {own, here}, "beta", 1000, 5000).size() == 2);
  for (int64_t id : {live, lapsed, own, here})
    REQUIRE(*s.a->TransitionDeployment(id, {"queued"}, "running"));
  // Beta restarts at 2000: it takes back its own (but the one it runs) and
  // alpha's lapsed one, never alpha's live one.
  auto taken =
      s.b->InterruptOrphaned("beta", 2000, {here}, "the server stopped", OrphanScope::kLapsedOrOwn);
  REQUIRE(taken.ok());
  REQUIRE(taken->size() == 2);
  CHECK((*taken)[0].id == lapsed);
  CHECK((*taken)[0].owner == "alpha");
  CHECK((*taken)[1].id == own);
  CHECK(s.a->GetDeployment(live)->status == "running");
  CHECK(s.a->GetDeployment(here)->status == "running");
  auto d = s.a->GetDeployment(lapsed);
  CHECK(d->status == "interrupted");
  CHECK(d->error == "the server stopped");
  CHECK(d->finished_at == 2000);
  CHECK(s.a->GetDeploymentLease(lapsed)->owner == "beta");  // the server that took it
  // once
  CHECK(s.a->InterruptOrphaned("beta", 2000, {here}, "again", OrphanScope::kLapsedOrOwn)->empty());
}

TEST_CASE("a server's periodic takeover leaves its own live leases alone") {
  TwoServers s;
  int64_t started = s.Queued("a");
  int64_t lapsed = s.Queued("b");
  REQUIRE(Claim(*s.a, {started, lapsed}, "alpha", 1000, 5000).size() == 2);
  REQUIRE(*s.a->RenewDeploymentLeases({lapsed}, "alpha", 1500) == std::vector<int64_t>{lapsed});
  for (int64_t id : {started, lapsed})
    REQUIRE(*s.a->TransitionDeployment(id, {"queued"}, "running"));
  // Alpha's list of what it runs predates `started`: only the lapsed one is
  // taken (its own, left behind).
  auto taken =
      s.a->InterruptOrphaned("alpha", 2000, {}, "the server stopped", OrphanScope::kLapsed);
  REQUIRE(taken.ok());
  REQUIRE(taken->size() == 1);
  CHECK((*taken)[0].id == lapsed);
  CHECK(s.a->GetDeployment(started)->status == "running");
}

TEST_CASE("a named lease has one owner at a time, until it lapses") {
  TwoServers s;
  CHECK(*s.a->TryTakeLease("retention", "alpha", 1000, 2000));
  CHECK_FALSE(*s.b->TryTakeLease("retention", "beta", 1500, 2500));
  CHECK(*s.a->TryTakeLease("retention", "alpha", 1900, 2900));  // renewed
  CHECK_FALSE(*s.b->TryTakeLease("retention", "beta", 2800, 3800));
  CHECK(*s.b->TryTakeLease("retention", "beta", 2901, 3901));  // lapsed
  auto live = s.a->LiveLeases("ret", 3000);
  REQUIRE(live.ok());
  REQUIRE(live->size() == 1);
  CHECK((*live)[0].owner == "beta");
  CHECK(s.a->LiveLeases("ret", 4000)->empty());
  CHECK(s.a->LiveLeases("other", 3000)->empty());
}

}  // namespace reprise
