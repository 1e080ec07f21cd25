// SqliteStore, webhook aggregate: webhooks and their delivery queue.
#include <nlohmann/json.hpp>

#include "server/store/sqlite_store_internal.h"

namespace reprise {
namespace {

std::string EventsToJson(const std::vector<std::string>& events) {
  return nlohmann::json(events).dump();
}

std::vector<std::string> EventsFromJson(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::string> out;
  if (!parsed.is_array()) return out;
  for (const auto& e : parsed)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

constexpr const char* kSelectWebhook =
    "SELECT name, url, events_json, secret, format, enabled, created_at, updated_at, updated_by "
    "FROM webhooks";

WebhookRecord ReadWebhook(SQLite::Statement& q) {
  WebhookRecord w;
  std::string events;
  ReadColumns(q, w.name, w.url, events, w.secret, w.format, w.enabled, w.created_at, w.updated_at,
              w.updated_by);
  w.events = EventsFromJson(events);
  return w;
}

constexpr const char* kSelectDelivery =
    "SELECT id, webhook, event, data_json, status, attempts, next_attempt_at, last_attempt_at, "
    "response_code, error, created_at, delivered_at FROM webhook_deliveries";

WebhookDeliveryRecord ReadDelivery(SQLite::Statement& q) {
  WebhookDeliveryRecord d;
  ReadColumns(q, d.id, d.webhook, d.event, d.data_json, d.status, d.attempts, d.next_attempt_at,
              d.last_attempt_at, d.response_code, d.error, d.created_at, d.delivered_at);
  return d;
}

}  // namespace

Status SqliteStore::PutWebhook(const WebhookRecord& w) {
  return Execute("put webhook",
                 "INSERT INTO webhooks(name, url, events_json, secret, format, enabled, "
                 "created_at, updated_at, updated_by) VALUES(?,?,?,?,?,?,?,?,?) "
                 "ON CONFLICT(name) DO UPDATE SET url=excluded.url, "
                 "events_json=excluded.events_json, secret=excluded.secret, "
                 "format=excluded.format, enabled=excluded.enabled, "
                 "updated_at=excluded.updated_at, updated_by=excluded.updated_by",
                 w.name, w.url, EventsToJson(w.events), w.secret, w.format, w.enabled, w.created_at,
                 w.updated_at, w.updated_by);
}

Result<WebhookRecord> SqliteStore::GetWebhook(const std::string& name) {
  return GetByName(kSelectWebhook, ReadWebhook, "webhook", name);
}

Result<std::vector<WebhookRecord>> SqliteStore::ListWebhooks(const Page& page) {
  return ListByName(kSelectWebhook, ReadWebhook, page);
}

Result<bool> SqliteStore::DeleteWebhook(const std::string& name) {
  return WriteValue("delete webhook", false, [&](bool& deleted) {
    Exec("DELETE FROM webhook_deliveries WHERE webhook=?", name);
    deleted = Exec("DELETE FROM webhooks WHERE name=?", name) > 0;
    return Status::Ok();
  });
}

Result<WebhookDeliveryRecord> SqliteStore::AddWebhookDelivery(const WebhookDeliveryRecord& d) {
  return WriteValue("queue webhook delivery", d, [&](WebhookDeliveryRecord& out) {
    Exec(
        "INSERT INTO webhook_deliveries(webhook, event, data_json, status, attempts, "
        "next_attempt_at, last_attempt_at, response_code, error, created_at, delivered_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        d.webhook, d.event, d.data_json, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at,
        d.response_code, d.error, d.created_at, d.delivered_at);
    out.id = db_->getLastInsertRowid();
    return Status::Ok();
  });
}

Result<WebhookDeliveryRecord> SqliteStore::GetWebhookDelivery(int64_t id) {
  return SelectOne("webhook delivery " + std::to_string(id),
                   std::string(kSelectDelivery) + " WHERE id=?", ReadDelivery, id);
}

Result<std::vector<WebhookDeliveryRecord>> SqliteStore::ListWebhookDeliveries(
    const std::string& webhook, const Page& page) {
  return SelectAll(
      std::string(kSelectDelivery) + " WHERE webhook=? ORDER BY id DESC LIMIT ? OFFSET ?",
      ReadDelivery, webhook, ClampLimit(page), ClampOffset(page));
}

Result<std::vector<WebhookDeliveryRecord>> SqliteStore::DueWebhookDeliveries(int64_t now,
                                                                             int64_t limit) {
  return SelectAll(std::string(kSelectDelivery) +
                       " WHERE status='pending' AND next_attempt_at<=? "
                       "ORDER BY next_attempt_at, id LIMIT ?",
                   ReadDelivery, now, limit);
}

Result<int64_t> SqliteStore::NextWebhookDeliveryAt() {
  return SelectOne("next webhook delivery",
                   "SELECT COALESCE(MIN(next_attempt_at), 0) FROM webhook_deliveries "
                   "WHERE status='pending'",
                   ReadInt64);
}

Result<bool> SqliteStore::RecordWebhookAttempt(int64_t id, const WebhookAttempt& a) {
  return Changed("record webhook attempt",
                 "UPDATE webhook_deliveries SET status=?, attempts=attempts+1, "
                 "next_attempt_at=?, last_attempt_at=?, response_code=?, error=?, "
                 "delivered_at=? WHERE id=? AND status='pending'",
                 a.status, a.next_attempt_at, a.at, a.response_code, a.error,
                 a.status == "delivered" ? a.at : int64_t{0}, id);
}

}  // namespace reprise
