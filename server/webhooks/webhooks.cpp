// WebhookService: the event subscriber, the worker loop and retries.
#include "server/webhooks/webhooks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "common/log.h"
#include "server/webhooks/delivery.h"
#include "server/webhooks/url_guard.h"

namespace reprise {

using nlohmann::json;

namespace {

constexpr int64_t kDueBatch = 20;
// The worker looks again at least this often (a safety net; Wake() and the
// clock's changes are what normally wake it).
constexpr std::chrono::milliseconds kMaxIdle{60000};
constexpr size_t kMaxErrorLength = 300;

std::string Short(std::string text) {
  if (text.size() > kMaxErrorLength) text = text.substr(0, kMaxErrorLength) + "...";
  return text;
}

std::string SlackText(const std::string& event, const json& data) {
  auto str = [&](const char* key) {
    return data.contains(key) && data[key].is_string() ? data[key].get<std::string>()
                                                       : std::string();
  };
  auto num = [&](const char* key) {
    return data.contains(key) && data[key].is_number_integer() ? data[key].get<int64_t>()
                                                               : int64_t{0};
  };
  std::string text = "Reprise: " + event;
  if (num("deployment_id") != 0) text += " - deployment " + std::to_string(num("deployment_id"));
  if (num("record_id") != 0) text += " - rollback record " + std::to_string(num("record_id"));
  if (!str("application").empty()) {
    text += " of " + str("application");
    if (!str("release").empty())
      text += " " + str("release") + " build " + std::to_string(num("build"));
    if (!str("stage").empty()) text += " to " + str("stage");
  }
  if (!str("agent").empty()) text += " - agent " + str("agent");
  if (!str("status").empty()) text += " (" + str("status") + ")";
  if (!str("actor").empty()) text += " by " + str("actor");
  if (!str("reason").empty()) text += ": " + str("reason");
  return text;
}

// A delivery of `event` to `webhook`, due at once.
WebhookDeliveryRecord PendingDelivery(const std::string& webhook, const std::string& event,
                                      const std::string& data_json, int64_t now) {
  WebhookDeliveryRecord d;
  d.webhook = webhook;
  d.event = event;
  d.data_json = data_json;
  d.created_at = now;
  d.next_attempt_at = now;
  return d;
}

}  // namespace

std::string EventDataJson(const Event& e) {
  json out = json::object();
  out["time"] = FormatRfc3339Utc(FromUnixMillis(e.time));
  auto text = [&](const char* key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  auto number = [&](const char* key, int64_t value) {
    if (value != 0) out[key] = value;
  };
  text("actor", e.actor);
  number("deployment_id", e.deployment_id);
  text("application", e.application);
  text("stage", e.stage);
  text("release", e.release);
  number("build", e.build);
  text("kind", e.kind);
  text("status", e.status);
  text("target", e.target);
  text("agent", e.agent);
  number("record_id", e.record_id);
  text("reason", e.reason);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string WebhookBody(const WebhookDeliveryRecord& d, const std::string& format,
                        int64_t sent_at_ms) {
  json data = json::parse(d.data_json, nullptr, false);
  if (data.is_discarded()) data = json::object();
  if (format == "slack")
    return json{{"text", SlackText(d.event, data)}}.dump(-1, ' ', false,
                                                         json::error_handler_t::replace);
  json body = {{"event", d.event},
               {"id", d.id},
               {"sent_at", FormatRfc3339Utc(FromUnixMillis(sent_at_ms))},
               {"timestamp", sent_at_ms / 1000},
               {"data", data}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string WebhookSignature(const std::string& secret, const std::string& body) {
  return "sha256=" + HmacSha256Hex(secret, body);
}

std::chrono::milliseconds WebhookBackoff(int64_t attempts, std::chrono::milliseconds first,
                                         std::chrono::milliseconds cap) {
  auto wait = first;
  for (int64_t i = 1; i < attempts && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
}

WebhookService::WebhookService(WebhookServiceOptions options)
    : o_(std::move(options)), clock_(o_.clock != nullptr ? o_.clock : &SystemClock::Instance()) {}

WebhookService::~WebhookService() { Stop(); }

void WebhookService::Start() {
  if (worker_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (o_.events != nullptr)
    subscription_ = o_.events->Subscribe([this](const Event& e) { OnEvent(e); });
  clock_subscription_ = clock_->Subscribe([this] { Wake(); });
  worker_ = std::thread([this] { Work(); });
}

void WebhookService::Stop() {
  if (subscription_ != 0) o_.events->Unsubscribe(subscription_);
  subscription_ = 0;
  if (clock_subscription_ != 0) clock_->Unsubscribe(clock_subscription_);
  clock_subscription_ = 0;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

Status WebhookService::CheckUrl(const std::string& url) const {
  REPRISE_ASSIGN_OR_RETURN(WebhookUrl parsed, ParseWebhookUrl(url));
  auto address = ResolveWebhookHost(parsed.host, o_.allow_private);
  if (!address.ok()) return InvalidArgument("field 'url': " + address.status().message());
  return Status::Ok();
}

Result<WebhookDeliveryRecord> WebhookService::Queue(const std::string& webhook,
                                                    const std::string& event,
                                                    const std::string& data_json) {
  auto queued = o_.store->AddWebhookDelivery(PendingDelivery(webhook, event, data_json, Now()));
  if (queued.ok()) Wake();
  return queued;
}

void WebhookService::Wake() {
  std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

// On the bus thread: one delivery per enabled webhook that wants the event,
// all in one transaction.
void WebhookService::OnEvent(const Event& event) {
  auto hooks = o_.store->ListWebhooks({1000, 0});
  if (!hooks.ok()) {
    log::Error("webhooks.queue-failed",
               {{"event", event.type}, {"error", hooks.status().ToString()}});
    return;
  }
  const std::string data = EventDataJson(event);
  const int64_t now = Now();
  int queued = 0;
  Status st = o_.store->Atomically([&]() -> Status {
    for (const auto& w : *hooks) {
      if (!w.enabled) continue;
      if (std::find(w.events.begin(), w.events.end(), event.type) == w.events.end()) continue;
      REPRISE_RETURN_IF_ERROR(
          o_.store->AddWebhookDelivery(PendingDelivery(w.name, event.type, data, now)).status());
      ++queued;
    }
    return Status::Ok();
  });
  if (!st.ok())
    log::Error("webhooks.queue-failed", {{"event", event.type}, {"error", st.ToString()}});
  else if (queued > 0)
    Wake();
}

void WebhookService::Work() {
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      woken_ = false;
    }
    if (o_.may_deliver && !o_.may_deliver()) {
      // Another server delivers: ask again later.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, o_.standby_recheck, [&] { return stopping_; });
      continue;
    }
    auto due = o_.store->DueWebhookDeliveries(Now(), kDueBatch);
    if (due.ok() && !due->empty()) {
      for (const auto& d : *due) {
        {
          std::lock_guard lock(mu_);
          if (stopping_) return;
        }
        if (o_.may_deliver && !o_.may_deliver()) break;
        Attempt(d);
      }
      continue;
    }
    auto next = o_.store->NextWebhookDeliveryAt();
    std::chrono::milliseconds wait = kMaxIdle;
    if (next.ok() && *next != 0)
      wait = std::clamp(std::chrono::milliseconds(*next - Now()), std::chrono::milliseconds(1),
                        kMaxIdle);
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [&] { return woken_ || stopping_; });
  }
}

void WebhookService::Attempt(const WebhookDeliveryRecord& d) {
  const int64_t now = Now();
  WebhookAttempt outcome;
  outcome.at = now;
  auto hook = o_.store->GetWebhook(d.webhook);
  if (!hook.ok() || !hook->enabled) {
    outcome.status = "failed";
    outcome.error = hook.ok() ? "the webhook is disabled" : "the webhook no longer exists";
  } else {
    const std::string body = WebhookBody(d, hook->format, now);
    DeliveryRequest request{hook->url,
                            body,
                            {{"X-Reprise-Event", d.event},
                             {"X-Reprise-Delivery", std::to_string(d.id)},
                             {"X-Reprise-Timestamp", std::to_string(now / 1000)},
                             {"X-Reprise-Signature", WebhookSignature(hook->secret, body)}},
                            o_.allow_private,
                            o_.connect_timeout,
                            o_.read_timeout};
    DeliveryResult sent = SendDelivery(request);
    outcome.response_code = sent.status_code;
    if (sent.status_code >= 200 && sent.status_code < 300) {
      outcome.status = "delivered";
    } else {
      outcome.error = Short(sent.error.empty() ? "answered HTTP " + std::to_string(sent.status_code)
                                               : sent.error);
      auto next = now + WebhookBackoff(d.attempts + 1, o_.first_retry, o_.max_retry).count();
      if (next - d.created_at > o_.give_up_after.count()) {
        outcome.status = "failed";
        outcome.error = Short("gave up after " + std::to_string(d.attempts + 1) +
                              " attempts: " + outcome.error);
      } else {
        outcome.status = "pending";
        outcome.next_attempt_at = next;
      }
    }
  }
  if (outcome.status != "pending") outcome.next_attempt_at = d.next_attempt_at;
  auto recorded = o_.store->RecordWebhookAttempt(d.id, outcome);
  if (!recorded.ok())
    log::Error("webhooks.record-failed", {{"delivery", static_cast<long long>(d.id)},
                                          {"error", recorded.status().ToString()}});
  log::Info("webhooks.attempt", {{"delivery", static_cast<long long>(d.id)},
                                 {"webhook", d.webhook},
                                 {"event", d.event},
                                 {"status", outcome.status},
                                 {"code", static_cast<long long>(outcome.response_code)}});
}

}  // namespace reprise
