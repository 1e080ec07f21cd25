// SqlStore, webhook aggregate: webhooks and their delivery queue.
#include <nlohmann/json.hpp>

#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {

std::string EventsToJson(const std::vector<std::string>& events) {
  return nlohmann::json(events).dump();
}

constexpr const char* kSelectWebhook =
    "SELECT name, url, events_json, secret, format, enabled, created_at, updated_at, updated_by "
    "FROM webhooks";

constexpr auto ReadWebhook =
    ReadFields<&WebhookRecord::name, &WebhookRecord::url, &WebhookRecord::events,
               &WebhookRecord::secret, &WebhookRecord::format, &WebhookRecord::enabled,
               &WebhookRecord::created_at, &WebhookRecord::updated_at, &WebhookRecord::updated_by>;

constexpr const char* kSelectDelivery =
    "SELECT id, webhook, event, data_json, status, attempts, next_attempt_at, last_attempt_at, "
    "response_code, error, created_at, delivered_at FROM webhook_deliveries";

constexpr auto ReadDelivery =
    ReadFields<&WebhookDeliveryRecord::id, &WebhookDeliveryRecord::webhook,
               &WebhookDeliveryRecord::event, &WebhookDeliveryRecord::data_json,
               &WebhookDeliveryRecord::status, &WebhookDeliveryRecord::attempts,
               &WebhookDeliveryRecord::next_attempt_at, &WebhookDeliveryRecord::last_attempt_at,
               &WebhookDeliveryRecord::response_code, &WebhookDeliveryRecord::error,
               &WebhookDeliveryRecord::created_at, &WebhookDeliveryRecord::delivered_at>;

}  // namespace

// Events that are not a JSON array of strings read as none.
void ReadColumn(const SqlRow& row, int column, std::vector<std::string>& field) {
  auto parsed = nlohmann::json::parse(row.Text(column), nullptr, false);
  field.clear();
  if (!parsed.is_array()) return;
  for (const auto& e : parsed)
    if (e.is_string()) field.push_back(e.get<std::string>());
}

Status SqlStore::PutWebhook(const WebhookRecord& w) {
  return Execute("put webhook",
                 UpsertSql("webhooks", "name",
                           {"name", "url", "events_json", "secret", "format", "enabled",
                            "created_at", "updated_at", "updated_by"},
                           {"created_at"}),
                 w.name, w.url, EventsToJson(w.events), w.secret, w.format, w.enabled, w.created_at,
                 w.updated_at, w.updated_by);
}

Result<WebhookRecord> SqlStore::GetWebhook(const std::string& name) {
  return GetByName(kSelectWebhook, ReadWebhook, "webhook", name);
}

Result<std::vector<WebhookRecord>> SqlStore::ListWebhooks(const Page& page) {
  return ListByName(kSelectWebhook, ReadWebhook, page);
}

Result<bool> SqlStore::DeleteWebhook(const std::string& name) {
  return WriteValue("delete webhook", false, [&](bool& deleted) {
    Exec("DELETE FROM webhook_deliveries WHERE webhook=?", name);
    deleted = Exec("DELETE FROM webhooks WHERE name=?", name) > 0;
    return Status::Ok();
  });
}

Result<WebhookDeliveryRecord> SqlStore::AddWebhookDelivery(const WebhookDeliveryRecord& d) {
  return WriteValue("queue webhook delivery", d, [&](WebhookDeliveryRecord& out) {
    out.id = InsertId(
        InsertSql("webhook_deliveries",
                  {"webhook", "event", "data_json", "status", "attempts", "next_attempt_at",
                   "last_attempt_at", "response_code", "error", "created_at", "delivered_at"}),
        d.webhook, d.event, d.data_json, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at,
        d.response_code, d.error, d.created_at, d.delivered_at);
    return Status::Ok();
  });
}

Result<WebhookDeliveryRecord> SqlStore::GetWebhookDelivery(int64_t id) {
  return SelectOne("webhook delivery " + std::to_string(id),
                   std::string(kSelectDelivery) + " WHERE id=?", ReadDelivery, id);
}

Result<std::vector<WebhookDeliveryRecord>> SqlStore::ListWebhookDeliveries(
    const std::string& webhook, const Page& page) {
  return SelectAll(
      std::string(kSelectDelivery) + " WHERE webhook=? ORDER BY id DESC LIMIT ? OFFSET ?",
      ReadDelivery, webhook, ClampLimit(page), ClampOffset(page));
}

Result<std::vector<WebhookDeliveryRecord>> SqlStore::DueWebhookDeliveries(int64_t now,
                                                                          int64_t limit) {
  return SelectAll(std::string(kSelectDelivery) +
                       " WHERE status='pending' AND next_attempt_at<=? "
                       "ORDER BY next_attempt_at, id LIMIT ?",
                   ReadDelivery, now, limit);
}

Result<int64_t> SqlStore::NextWebhookDeliveryAt() {
  return SelectOne("next webhook delivery",
                   "SELECT COALESCE(MIN(next_attempt_at), 0) FROM webhook_deliveries "
                   "WHERE status='pending'",
                   ReadInt64);
}

Result<bool> SqlStore::RecordWebhookAttempt(int64_t id, const WebhookAttempt& a) {
  return Changed("record webhook attempt",
                 "UPDATE webhook_deliveries SET status=?, attempts=attempts+1, "
                 "next_attempt_at=?, last_attempt_at=?, response_code=?, error=?, "
                 "delivered_at=? WHERE id=? AND status='pending'",
                 a.status, a.next_attempt_at, a.at, a.response_code, a.error,
                 a.status == "delivered" ? a.at : int64_t{0}, id);
}

}  // namespace reprise
