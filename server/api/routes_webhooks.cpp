// Webhooks: where change events are POSTed, and their deliveries.
#include "server/api/routes_webhooks.h"

#include <algorithm>
#include <set>

#include "common/names.h"
#include "server/api/json_io.h"
#include "server/api/route_kinds.h"
#include "server/events/event_bus.h"
#include "server/http/list_params.h"
#include "server/store/store.h"
#include "server/webhooks/webhooks.h"

namespace reprise {

namespace {

constexpr const char* kMasked = "******";
constexpr size_t kMinSecret = 16;
constexpr size_t kMaxSecret = 256;

Json WebhookJson(const WebhookRecord& w) {
  Json j = JSON_MEMBERS(w, name, url, events, format, enabled, updated_by);
  j["secret"] = w.secret.empty() ? "" : kMasked;
  j["created_at"] = Time(w.created_at);
  j["updated_at"] = Time(w.updated_at);
  return j;
}

Json DeliveryJson(const WebhookDeliveryRecord& d) {
  Json j = JSON_MEMBERS(d, id, webhook, event, status, attempts, response_code, error);
  j["created_at"] = Time(d.created_at);
  j["last_attempt_at"] = TimeOrNull(d.last_attempt_at);
  j["next_attempt_at"] = d.status == "pending" ? Json(Time(d.next_attempt_at)) : Json();
  j["delivered_at"] = TimeOrNull(d.delivered_at);
  return j;
}

Result<std::vector<std::string>> EventsField(const Json& body) {
  if (!body.contains("events")) return InvalidArgument("field 'events' is required");
  const Json& events = body["events"];
  if (!events.is_array() || events.empty())
    return InvalidArgument("field 'events' must be a non-empty array of event names");
  std::set<std::string> seen;
  for (const auto& e : events) {
    if (!e.is_string()) return InvalidArgument("field 'events' must hold strings only");
    const std::string name = e.get<std::string>();
    if (!IsKnownEventType(name)) {
      std::string known;
      for (const auto& k : KnownEventTypes()) known += (known.empty() ? "" : ", ") + k;
      return InvalidArgument("field 'events': unknown event '" + name.substr(0, 64) +
                             "' (known: " + known + ")");
    }
    seen.insert(name);
  }
  return std::vector<std::string>(seen.begin(), seen.end());
}

// The webhook a PUT body describes; `existing` is the stored one, if any.
const RequestBody& WebhookBody() {
  static const RequestBody body{
      "webhook",
      {{"url", "string", true,
        "http or https; loopback, private and metadata addresses are refused"},
       {"events", "array", true, "the events to deliver (docs/webhooks.md)", {}, "string"},
       {"secret", "string", false,
        "16 to 256 characters; signs each delivery; required for a new webhook, \"******\" or "
        "left out keeps the stored one"},
       {"format", "string", false, "\"json\" (default) or \"slack\""},
       {"enabled", "boolean", false, "default true"}}};
  return body;
}

Result<WebhookRecord> WebhookFromBody(const std::string& name, const Json& body,
                                      const std::optional<WebhookRecord>& existing,
                                      WebhookService& service) {
  REPRISE_RETURN_IF_ERROR(CheckKeys(body, WebhookBody()));
  WebhookRecord w;
  w.name = name;
  REPRISE_ASSIGN_OR_RETURN(w.url, StringField(body, "url", true));
  REPRISE_RETURN_IF_ERROR(service.CheckUrl(w.url));
  REPRISE_ASSIGN_OR_RETURN(w.events, EventsField(body));
  REPRISE_ASSIGN_OR_RETURN(std::string secret, StringField(body, "secret", false));
  if (!body.contains("secret") || secret == kMasked) {
    if (!existing)
      return InvalidArgument(
          "field 'secret' is required for a new webhook (\"******\" keeps a stored secret)");
    w.secret = existing->secret;
  } else {
    if (secret.size() < kMinSecret || secret.size() > kMaxSecret)
      return InvalidArgument("field 'secret' must be " + std::to_string(kMinSecret) + " to " +
                             std::to_string(kMaxSecret) + " characters long");
    w.secret = secret;
  }
  REPRISE_ASSIGN_OR_RETURN(std::string format, StringField(body, "format", false));
  w.format = format.empty() ? "json" : format;
  if (w.format != "json" && w.format != "slack")
    return InvalidArgument("field 'format' must be \"json\" or \"slack\"");
  if (body.contains("enabled")) {
    if (!body["enabled"].is_boolean())
      return InvalidArgument("field 'enabled' must be true or false");
    w.enabled = body["enabled"].get<bool>();
  }
  return w;
}

std::string AuditSummary(const WebhookRecord& w, bool secret_changed) {
  std::string events;
  for (const auto& e : w.events) events += (events.empty() ? "" : ",") + e;
  return "url " + w.url + "; events " + events + "; format " + w.format +
         (w.enabled ? "; enabled" : "; disabled") + "; secret " + kMasked +
         (secret_changed ? " (changed)" : " (kept)");
}

Result<std::string> WebhookName(const HttpRequest& req) {
  std::string name = req.Param("name");
  if (!IsValidName(name))
    return InvalidArgument(
        "webhook name must be 1-64 of A-Z a-z 0-9 . _ - (not starting with "
        "'.' or '-')");
  return name;
}

}  // namespace

namespace {

// Appends an audit entry about webhook `name` by the request's user.
auto WebhookAudit(Store& store, const Clock& clock) {
  return [&store, &clock](const HttpRequest& req, const char* action, const std::string& name,
                          const std::string& summary) {
    return store.AppendAudit(
        {0, ToUnixMillis(clock.Now()), req.principal.user, action, "webhook " + name, summary});
  };
}

// Webhooks: list, show, create or replace, delete.
void AddWebhookRoutes(Store& store, WebhookService& service, const Clock& clock,
                      std::vector<Route>& r) {
  auto audit = WebhookAudit(store, clock);

  RouteGroup group(r, "Webhooks");

  group.Add(ListRoute(
      "/api/v1/webhooks", Role::kAdmin,
      {.summary = "The webhooks", .success = "{items: [webhook]}, the secrets masked"},
      [&](HttpRequest&, const Page& page) { return store.ListWebhooks(page); }, WebhookJson));
  group.Add(Get("/api/v1/webhooks/{name}", Role::kAdmin,
                {.summary = "One webhook", .success = "the webhook, its secret masked"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(std::string name, WebhookName(req));
                  TRY_OR_ERROR(auto w, store.GetWebhook(name));
                  return Ok(WebhookJson(w));
                }));
  group.Add(Put("/api/v1/webhooks/{name}", Role::kAdmin,
                {.summary = "Create or replace a webhook",
                 .body = WebhookBody(),
                 .success = "the webhook (201 when created)"},
                [&, audit](HttpRequest& req) {
                  TRY_OR_ERROR(std::string name, WebhookName(req));
                  TRY_OR_ERROR(auto body, ParseJsonBody(req));
                  std::optional<WebhookRecord> existing;
                  auto found = store.GetWebhook(name);
                  if (found.ok())
                    existing = *found;
                  else if (found.status().code() != Code::kNotFound)
                    return HttpResponse::Error(found.status());
                  TRY_OR_ERROR(WebhookRecord w, WebhookFromBody(name, body, existing, service));
                  const int64_t now = ToUnixMillis(clock.Now());
                  w.created_at = existing ? existing->created_at : now;
                  w.updated_at = now;
                  w.updated_by = req.principal.user;
                  const bool changed = !existing || existing->secret != w.secret;
                  STATUS_OR_ERROR(store.Atomically([&]() -> Status {
                    REPRISE_RETURN_IF_ERROR(store.PutWebhook(w));
                    return audit(req, "webhook.put", name, AuditSummary(w, changed));
                  }));
                  TRY_OR_ERROR(auto stored, store.GetWebhook(name));
                  return Ok(WebhookJson(stored), existing ? 200 : 201);
                }));
  group.Add(Delete("/api/v1/webhooks/{name}", Role::kAdmin,
                   {.summary = "Delete a webhook and its deliveries", .success = "{name, deleted}"},
                   [&, audit](HttpRequest& req) {
                     TRY_OR_ERROR(std::string name, WebhookName(req));
                     STATUS_OR_ERROR(store.Atomically([&]() -> Status {
                       REPRISE_ASSIGN_OR_RETURN(bool removed, store.DeleteWebhook(name));
                       if (!removed) return NotFound("webhook '" + name + "' not found");
                       return audit(req, "webhook.delete", name, "with its deliveries");
                     }));
                     return Ok({{"name", name}, {"deleted", true}});
                   }));
}

// A webhook's deliveries: list, redeliver, a test ping.
void AddDeliveryRoutes(Store& store, WebhookService& service, const Clock& clock,
                       std::vector<Route>& r) {
  auto audit = WebhookAudit(store, clock);

  RouteGroup group(r, "Webhooks");

  group.Add(Get("/api/v1/webhooks/{name}/deliveries", Role::kAdmin,
                {.summary = "A webhook's deliveries, newest first",
                 .query = PageQuery(),
                 .success = "{items: [delivery]}"},
                [&](HttpRequest& req) {
                  TRY_OR_ERROR(std::string name, WebhookName(req));
                  TRY_OR_ERROR(Page page, ListParams(req));
                  TRY_OR_ERROR(auto w, store.GetWebhook(name));
                  TRY_OR_ERROR(auto list, store.ListWebhookDeliveries(w.name, page));
                  return ListResponse(list, page, DeliveryJson);
                }));
  group.Add(Post(
      "/api/v1/webhooks/{name}/deliveries/{id}/redeliver", Role::kAdmin,
      {.summary = "Queue a delivery again", .success_status = 202, .success = "the new delivery"},
      [&, audit](HttpRequest& req) {
        TRY_OR_ERROR(std::string name, WebhookName(req));
        TRY_OR_ERROR(int64_t id, ParseNumber(req.Param("id"), "delivery id"));
        TRY_OR_ERROR(auto w, store.GetWebhook(name));
        auto d = store.GetWebhookDelivery(id);
        if (!d.ok() || d->webhook != w.name)
          return HttpResponse::Error(
              NotFound("webhook '" + name + "' has no delivery " + std::to_string(id)));
        TRY_OR_ERROR(auto again, service.Queue(w.name, d->event, d->data_json));
        STATUS_OR_ERROR(audit(req, "webhook.redeliver", name,
                              "delivery " + std::to_string(id) + " (" + d->event +
                                  ") queued again as " + std::to_string(again.id)));
        return Ok(DeliveryJson(again), 202);
      }));
  group.Add(Post("/api/v1/webhooks/{name}/test", Role::kAdmin,
                 {.summary = "Queue a ping to the webhook",
                  .success_status = 202,
                  .success = "the ping delivery"},
                 [&, audit](HttpRequest& req) {
                   TRY_OR_ERROR(std::string name, WebhookName(req));
                   TRY_OR_ERROR(auto w, store.GetWebhook(name));
                   Event ping;
                   ping.type = "ping";
                   ping.time = ToUnixMillis(clock.Now());
                   ping.actor = req.principal.user;
                   ping.reason = "a test delivery";
                   TRY_OR_ERROR(auto queued, service.Queue(w.name, "ping", EventDataJson(ping)));
                   STATUS_OR_ERROR(audit(req, "webhook.test", name,
                                         "ping queued as delivery " + std::to_string(queued.id)));
                   return Ok(DeliveryJson(queued), 202);
                 }));
}

}  // namespace

std::vector<Route> WebhookRoutes(Store& store, WebhookService& service, const Clock& clock) {
  std::vector<Route> r;
  AddWebhookRoutes(store, service, clock, r);
  AddDeliveryRoutes(store, service, clock, r);
  return r;
}

}  // namespace reprise
