// The engine's leases on its own (fake) clock: a deployment another server
// runs under a live lease is left alone at start; once that lease lapses on
// this engine's clock it is taken over (interrupted, said in its log); one
// this server has just started is never taken over by its own pass.
#include <doctest/doctest.h>

#include "server/engine/engine.h"
#include "tests/server/store/store_fixture.h"
#include "tests/support/wait.h"

namespace reprise {

using testing::WaitUntil;

namespace {

constexpr int64_t kStart = 1'800'000'000'000;  // unix ms

// Deployment `id` claimed by server `owner` until `until`, then running.
void RunningOn(Store& store, int64_t id, const std::string& owner, int64_t until) {
  auto claimed = store.ClaimDeployments({id}, owner, kStart, until);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->size() == 1);
  REQUIRE(*store.TransitionDeployment(id, {"queued"}, "running"));
}

std::unique_ptr<DeploymentEngine> StartEngine(Store& store, const Clock& clock,
                                              const std::string& id, bool start_threads = true) {
  EngineOptions o;
  o.start_threads = start_threads;
  o.store = &store;
  o.clock = &clock;
  o.server_id = id;
  o.lease = std::chrono::milliseconds(15000);
  o.lease_renew = std::chrono::milliseconds(20);  // wall time: looks often
  auto engine = DeploymentEngine::Start(o);
  REQUIRE_MESSAGE(engine.ok(), engine.status().ToString());
  return std::move(engine).value();
}

bool LogHas(Store& store, int64_t id, const std::string& text) {
  auto lines = store.ListDeploymentLog(id, 0, 1000);
  if (!lines.ok()) return false;
  for (const auto& l : *lines)
    if (l.text.find(text) != std::string::npos) return true;
  return false;
}

// A store where server alpha runs deployment `id` under a lease until
// kStart + 15 s, and a clock at kStart + 1 s.
struct RunningOnAlpha {
  TempDir dir;
  std::unique_ptr<Store> store = OpenTestStore(dir);
  int64_t id = 0;
  FakeClock clock{FromUnixMillis(kStart + 1000)};
  RunningOnAlpha() {
    SeedShop(*store, 1);
    id = CreatePromotion(*store, {.status = "queued", .targets_csv = "web"}).id;
    RunningOn(*store, id, "alpha", kStart + 15000);
  }
};

}  // namespace

TEST_CASE_FIXTURE(RunningOnAlpha,
                  "a live lease of another server is left alone; once it lapses it is taken over") {
  auto beta = StartEngine(*store, clock, "beta");
  CHECK(beta->ServerId() == "beta");
  // Recovery at start took nothing of alpha's.
  CHECK(store->GetDeployment(id)->status == "running");
  clock.Set(FromUnixMillis(kStart + 15001));
  REQUIRE(WaitUntil([&] { return store->GetDeployment(id)->status == "interrupted"; }));
  auto d = store->GetDeployment(id);
  CHECK(d->finished_at >= kStart + 15001);
  CHECK(WaitUntil([&] {
    return LogHas(*store, id, "server alpha stopped while this deployment was running");
  }));
  beta->Stop();
}

TEST_CASE_FIXTURE(RunningOnAlpha,
                  "a restarted server takes back at once what it left running itself") {
  auto alpha = StartEngine(*store, clock, "alpha");
  CHECK(store->GetDeployment(id)->status == "interrupted");
  CHECK(LogHas(*store, id, "the server stopped while this deployment was running"));
  alpha->Stop();
}

TEST_CASE("the takeover pass never interrupts what this server has just started") {
  TempDir dir;
  auto store = OpenTestStore(dir);
  SeedShop(*store, 1);
  FakeClock clock(FromUnixMillis(kStart + 1000));
  // No run threads: the deployments below are moved by hand, never run here.
  auto alpha = StartEngine(*store, clock, "alpha", /*start_threads=*/false);
  // What a takeover pass can see after it listed what runs here: a
  // deployment alpha claimed and started meanwhile (live lease, alpha's).
  int64_t started = CreatePromotion(*store, {.status = "queued", .targets_csv = "web"}).id;
  RunningOn(*store, started, "alpha", kStart + 15000);
  // Then one a dead server left (lapsed): once it is taken, a pass has seen
  // `started` as well.
  int64_t left = CreatePromotion(*store, {.status = "queued", .targets_csv = "db"}).id;
  RunningOn(*store, left, "gamma", kStart + 500);
  REQUIRE(WaitUntil([&] { return store->GetDeployment(left)->status == "interrupted"; }));
  CHECK(store->GetDeployment(started)->status == "running");
  alpha->Stop();
}

TEST_CASE("a lease no longer than its renewal period is refused") {
  TempDir dir;
  auto store = OpenTestStore(dir);
  EngineOptions o;
  o.store = store.get();
  o.lease = std::chrono::milliseconds(1000);
  o.lease_renew = std::chrono::milliseconds(1000);
  auto engine = DeploymentEngine::Start(o);
  REQUIRE_FALSE(engine.ok());
  CHECK(engine.status().message().find("renewal period") != std::string::npos);
}

}  // namespace reprise
