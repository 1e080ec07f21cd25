// WebhookStore: the webhook aggregate of the store: the webhooks (where to
// POST which events, signed with which secret) and their durable delivery
// queue, so deliveries survive a restart.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

struct WebhookRecord {
  std::string name;
  std::string url;
  std::vector<std::string> events;  // event types (server/events/event_bus.h)
  std::string secret;               // the HMAC key; never shown nor logged
  std::string format = "json";      // json | slack
  bool enabled = true;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string updated_by;
};

// One event to deliver to one webhook. status: pending (to be attempted at
// next_attempt_at) -> delivered | failed (gave up).
struct WebhookDeliveryRecord {
  int64_t id = 0;
  std::string webhook;
  std::string event;      // its type
  std::string data_json;  // the event's fields (the body's "data")
  std::string status = "pending";
  int64_t attempts = 0;
  int64_t next_attempt_at = 0;
  int64_t last_attempt_at = 0;
  int64_t response_code = 0;  // of the last attempt; 0: no HTTP answer
  std::string error;          // the last attempt's, short; "" when delivered
  int64_t created_at = 0;
  int64_t delivered_at = 0;
};

// The outcome of one attempt.
struct WebhookAttempt {
  std::string status;  // pending (retry at next_attempt_at) | delivered | failed
  int64_t at = 0;
  int64_t next_attempt_at = 0;
  int64_t response_code = 0;
  std::string error;
};

class WebhookStore {
 public:
  virtual ~WebhookStore() = default;

  // Creates or replaces the webhook `w.name` (created_at kept on replace).
  virtual Status PutWebhook(const WebhookRecord& w) = 0;
  virtual Result<WebhookRecord> GetWebhook(const std::string& name) = 0;
  // In name order.
  virtual Result<std::vector<WebhookRecord>> ListWebhooks(const Page& page) = 0;
  // Deletes the webhook and its deliveries; false when there was none.
  virtual Result<bool> DeleteWebhook(const std::string& name) = 0;

  // Queues a delivery (status pending); returns it with its id.
  virtual Result<WebhookDeliveryRecord> AddWebhookDelivery(const WebhookDeliveryRecord& d) = 0;
  virtual Result<WebhookDeliveryRecord> GetWebhookDelivery(int64_t id) = 0;
  // A webhook's deliveries, newest first.
  virtual Result<std::vector<WebhookDeliveryRecord>> ListWebhookDeliveries(
      const std::string& webhook, const Page& page) = 0;
  // Pending deliveries due at `now`, the earliest first, at most `limit`.
  virtual Result<std::vector<WebhookDeliveryRecord>> DueWebhookDeliveries(int64_t now,
                                                                          int64_t limit) = 0;
  // The earliest next_attempt_at of a pending delivery; 0 when none is pending.
  virtual Result<int64_t> NextWebhookDeliveryAt() = 0;
  // Records an attempt (attempts + 1) on a pending delivery; false when it
  // is no longer pending (or gone).
  virtual Result<bool> RecordWebhookAttempt(int64_t id, const WebhookAttempt& attempt) = 0;
};

}  // namespace reprise
