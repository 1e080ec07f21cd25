// WebhookService: turns change events (server/events/event_bus.h) into
// webhook deliveries and delivers them.
//
// A bus subscriber queues one delivery per enabled webhook subscribed to the
// event's type, in the store (deliveries survive a restart). A worker thread
// POSTs each due delivery, signed with the webhook's secret (see
// docs/webhooks.md for the body and headers), to the address the URL guard
// (url_guard.h) checked just before connecting. A 2xx answer delivers it;
// anything else is retried with exponential backoff (first_retry, doubling,
// at most max_retry) until give_up_after has passed since it was queued,
// then it is `failed`. Times are the injected Clock's: with a FakeClock the
// worker looks again whenever the clock is set, so tests move the clock past
// a backoff instead of waiting.
//
// Thread-safety: every method may be called from any thread; Start/Stop
// from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/non_copyable.h"
#include "common/status.h"
#include "server/events/event_bus.h"
#include "server/store/store.h"

namespace reprise {

struct WebhookServiceOptions {
  Store* store = nullptr;        // required
  EventBus* events = nullptr;    // null: no subscription (deliveries come from the API only)
  const Clock* clock = nullptr;  // null: the system clock
  bool allow_private = false;    // --webhook-allow-private
  std::chrono::milliseconds first_retry{30000};
  std::chrono::milliseconds max_retry{std::chrono::hours(1)};
  std::chrono::milliseconds give_up_after{std::chrono::hours(24)};
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{10};
  // Several servers on one store: whether this server may deliver now (it
  // holds the store's named delivery lease), asked before each batch and
  // each attempt, so two servers never send the same delivery. Null: always.
  std::function<bool()> may_deliver;
  // How often a server that may not deliver asks again.
  std::chrono::milliseconds standby_recheck{5000};
};

// The JSON "data" of an event: its non-empty fields, "time" in RFC 3339.
std::string EventDataJson(const Event& event);
// The body POSTed for a delivery sent at `sent_at_ms`: for format json
// {"event", "id", "sent_at", "timestamp", "data"}; for slack {"text"}.
std::string WebhookBody(const WebhookDeliveryRecord& delivery, const std::string& format,
                        int64_t sent_at_ms);
// "sha256=<hex HMAC-SHA256(secret, body)>", the X-Reprise-Signature header.
std::string WebhookSignature(const std::string& secret, const std::string& body);
// The wait before attempt `attempts + 1` after `attempts` failed ones.
std::chrono::milliseconds WebhookBackoff(int64_t attempts, std::chrono::milliseconds first,
                                         std::chrono::milliseconds cap);

class WebhookService : NonCopyable {
 public:
  explicit WebhookService(WebhookServiceOptions options);
  ~WebhookService();

  // Subscribes to the bus and starts the worker.
  void Start();
  // Unsubscribes and stops the worker (an attempt in flight finishes first;
  // what is pending stays queued in the store).
  void Stop();

  bool allow_private() const { return o_.allow_private; }
  // The save-time check of a webhook URL: its form, and the addresses its
  // host resolves to. kInvalidArgument naming the field and the reason.
  Status CheckUrl(const std::string& url) const;
  // Queues a delivery of `event` with `data_json` to `webhook`, due now.
  Result<WebhookDeliveryRecord> Queue(const std::string& webhook, const std::string& event,
                                      const std::string& data_json);
  // Tells the worker to look for due deliveries now.
  void Wake();

 private:
  void OnEvent(const Event& event);
  void Work();
  // One attempt at `d`; records its outcome.
  void Attempt(const WebhookDeliveryRecord& d);
  int64_t Now() const { return ToUnixMillis(clock_->Now()); }

  WebhookServiceOptions o_;
  const Clock* clock_;
  int64_t subscription_ = 0;
  int64_t clock_subscription_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread worker_;
};

}  // namespace reprise
