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

using Hook = WebhookRecord;
constexpr auto ReadWebhook =
    ReadFields<&Hook::name, &Hook::url, &Hook::events, &Hook::secret, &Hook::format, &Hook::enabled,
               &Hook::created_at, &Hook::updated_at, &Hook::updated_by>;

constexpr const char* kSelectDelivery =
    "SELECT id, webhook, event, data_json, status, attempts, next_attempt_at, last_attempt_at, "
    "response_code, error, created_at, delivered_at FROM webhook_deliveries";

using Dlv = WebhookDeliveryRecord;
constexpr auto ReadDelivery =
    ReadFields<&Dlv::id, &Dlv::webhook, &Dlv::event, &Dlv::data_json, &Dlv::status, &Dlv::attempts,
               &Dlv::next_attempt_at, &Dlv::last_attempt_at, &Dlv::response_code, &Dlv::error,
               &Dlv::created_at, &Dlv::delivered_at>;

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
  return DueRows(kSelectDelivery, ReadDelivery, "pending", "next_attempt_at", now, limit);
}

Result<int64_t> SqlStore::NextWebhookDeliveryAt() {
  return NextDueAt("webhook_deliveries", "pending", "next_attempt_at");
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
