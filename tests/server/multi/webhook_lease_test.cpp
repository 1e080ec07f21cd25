// Webhook deliveries with two servers on one store: each delivery goes out
// once, from whichever server holds the store's delivery lease.
#include <doctest/doctest.h>

#include <map>

#include "server/webhooks/webhooks.h"
#include "tests/server/store/store_fixture.h"
#include "tests/server/webhooks/receiver.h"

namespace reprise {

using testing::Receiver;
using testing::WaitUntil;

namespace {

// A delivery service of server `id` on `store`, delivering only while it
// holds the lease "webhook-delivery" (as the server wires it).
std::unique_ptr<WebhookService> ServiceOf(Store& store, const std::string& id) {
  WebhookServiceOptions o;
  o.store = &store;
  o.allow_private = true;  // the receiver is on loopback
  o.standby_recheck = std::chrono::milliseconds(50);
  o.may_deliver = [&store, id] {
    int64_t now = ToUnixMillis(SystemClock::Instance().Now());
    auto mine = store.TryTakeLease("webhook-delivery", id, now, now + 60000);
    return mine.ok() && *mine;
  };
  auto service = std::make_unique<WebhookService>(o);
  service->Start();
  return service;
}

}  // namespace

TEST_CASE("two servers on one store send each webhook delivery once") {
  TempDir dir;
  auto store_a = OpenTestStore(dir);
  auto store_b = OpenTestStore(dir);
  Receiver receiver;
  REQUIRE(store_a
              ->PutWebhook({"hook",
                            receiver.url(),
                            {"deployment.succeeded"},
                            testing::kReceiverSecret,
                            "json",
                            true,
                            1,
                            1,
                            "t"})
              .ok());
  auto alpha = ServiceOf(*store_a, "alpha");
  auto beta = ServiceOf(*store_b, "beta");
  constexpr int kDeliveries = 30;
  for (int i = 0; i < kDeliveries; ++i) {
    auto queued = (i % 2 ? beta : alpha)->Queue("hook", "deployment.succeeded", "{}");
    REQUIRE(queued.ok());
    alpha->Wake();
    beta->Wake();
  }
  auto all_delivered = [&] {
    auto list = store_a->ListWebhookDeliveries("hook", {1000, 0});
    if (!list.ok() || list->size() != kDeliveries) return false;
    for (const auto& d : *list)
      if (d.status != "delivered") return false;
    return true;
  };
  REQUIRE(WaitUntil(all_delivered));
  alpha->Stop();
  beta->Stop();
  std::map<std::string, int> times;
  for (const auto& r : receiver.received()) ++times[r.delivery];
  CHECK(times.size() == kDeliveries);
  for (const auto& [delivery, n] : times) CHECK_MESSAGE(n == 1, "delivery ", delivery);
}

}  // namespace reprise
