// The webhook URL guard and the delivery's pure parts (body, signature,
// backoff), and the event bus: no traffic leaves the process.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "server/events/event_bus.h"
#include "server/webhooks/url_guard.h"
#include "server/webhooks/webhooks.h"
#include "tests/support/wait.h"

namespace reprise::testing {
namespace {

Event Ev(const char* type, int64_t deployment_id = 0) {
  Event e;
  e.type = type;
  e.deployment_id = deployment_id;
  return e;
}

// Each reason with the addresses refused for it ("allowed": not refused).
using ReasonTable = std::vector<std::pair<std::string, std::vector<std::string>>>;

void CheckReasons(const ReasonTable& table, bool allow_private) {
  for (const auto& [reason, addresses] : table)
    for (const auto& address : addresses)
      CHECK_MESSAGE(RefusedAddressReason(address, allow_private).value_or("allowed") == reason,
                    address);
}

// A webhook URL's parts, "scheme host port target", or why it is refused.
std::string UrlParts(const char* url) {
  auto u = ParseWebhookUrl(url);
  if (!u.ok()) return u.status().message();
  return u->scheme + " " + u->host + " " + std::to_string(u->port) + " " + u->target;
}

}  // namespace

TEST_CASE("addresses: loopback, private, link-local, metadata and the rest are refused") {
  CheckReasons({{"a loopback address", {"127.0.0.1", "127.255.0.9"}},
                {"a private address", {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1"}},
                {"a shared (CGNAT) address", {"100.64.0.1", "100.127.255.255"}},
                {"a link-local address", {"169.254.1.1"}},
                {"a cloud metadata address", {"169.254.169.254"}},
                {"an unspecified (\"this network\") address", {"0.0.0.0"}},
                {"a multicast address", {"224.0.0.1"}},
                {"the broadcast address", {"255.255.255.255"}},
                {"allowed", {"172.32.0.1", "100.128.0.1", "8.8.8.8", "93.184.216.34"}},
                {"not an IP address", {"not-an-ip"}}},
               false);
  // IPv6 and the IPv6 forms of IPv4 addresses (2002:c0a8:0101::1 is 6to4 of 192.168.1.1).
  CheckReasons(
      {{"a loopback address", {"::1", "::ffff:127.0.0.1", "::127.0.0.1"}},
       {"an unspecified address", {"::"}},
       {"a link-local address", {"fe80::1"}},
       {"a private (unique local) address", {"fc00::1", "fd12:3456::1"}},
       {"a cloud metadata address", {"fd00:ec2::254", "::ffff:169.254.169.254"}},
       {"a multicast address", {"ff02::1"}},
       {"a private address", {"::ffff:10.0.0.1", "64:ff9b::192.168.0.1", "2002:c0a8:0101::1"}},
       {"allowed", {"::ffff:8.8.8.8", "2606:4700:4700::1111"}}},
      false);
}

TEST_CASE("addresses: --webhook-allow-private allows private ones, never metadata or multicast") {
  CheckReasons({{"allowed", {"127.0.0.1", "10.0.0.1", "::1", "fd00::1"}},
                {"a cloud metadata address", {"169.254.169.254", "fd00:ec2::254"}},
                {"a multicast address", {"224.0.0.1"}}},
               true);
}

TEST_CASE("URLs: only http(s), no credentials, a host and a valid port") {
  CHECK(UrlParts("https://hooks.example.com/services/T1?x=1") ==
        "https hooks.example.com 443 /services/T1?x=1");
  CHECK(UrlParts("http://[2606:4700::1]:8080") == "http 2606:4700::1 8080 /");
  const std::pair<const char*, const char*> refused[] = {
      {"ftp://example.com/", "scheme 'ftp' is not allowed"},
      {"file:///etc/passwd", "scheme 'file'"},
      {"example.com/hook", "must start with http"},
      {"https://user:pw@example.com/", "credentials"},
      {"https://example.com@evil/", "credentials"},
      {"https:///x", "no host"},
      {"https://example.com:0/", "port out of range"},
      {"https://example.com:99999/", "port out of range"},
      {"https://example.com:8a/", "not a number"},
      {"https://example.com/#frag", "fragment"},
      {"https://exa mple.com/", "space"},
      {"", "required"}};
  for (const auto& [url, says] : refused)
    CHECK_MESSAGE(UrlParts(url).find(says) != std::string::npos, url, ": ", UrlParts(url));
}

TEST_CASE("resolution: literals and localhost are checked without connecting") {
  auto loopback = ResolveWebhookHost("127.0.0.1", false);
  REQUIRE_FALSE(loopback.ok());
  CHECK(loopback.status().message().find("127.0.0.1, a loopback address") != std::string::npos);
  CHECK(loopback.status().message().find("--webhook-allow-private") != std::string::npos);
  auto name = ResolveWebhookHost("localhost", false);
  REQUIRE_FALSE(name.ok());
  CHECK(name.status().message().find("a loopback address") != std::string::npos);
  auto metadata = ResolveWebhookHost("169.254.169.254", true);
  REQUIRE_FALSE(metadata.ok());
  CHECK(metadata.status().message().find("metadata") != std::string::npos);
  auto allowed = ResolveWebhookHost("127.0.0.1", true);
  REQUIRE(allowed.ok());
  CHECK(*allowed == "127.0.0.1");
  auto mapped = ResolveWebhookHost("::ffff:127.0.0.1", false);
  CHECK_FALSE(mapped.ok());
  auto public_literal = ResolveWebhookHost("8.8.8.8", false);  // resolved, not contacted
  REQUIRE(public_literal.ok());
  CHECK(*public_literal == "8.8.8.8");
}

TEST_CASE("the body carries the event, the delivery id and the signed timestamp") {
  Event e;
  e.type = "deployment.succeeded";
  e.time = 1780000000123;
  e.deployment_id = 7;
  e.application = "shop";
  e.stage = "Integration";
  e.release = "1.0";
  e.build = 2;
  e.status = "succeeded";
  e.actor = "admin";
  WebhookDeliveryRecord d;
  d.id = 42;
  d.event = e.type;
  d.data_json = EventDataJson(e);
  auto body = nlohmann::json::parse(WebhookBody(d, "json", 1780000001999));
  CHECK(body["event"] == "deployment.succeeded");
  CHECK(body["id"] == 42);
  CHECK(body["timestamp"] == 1780000001);
  CHECK(body["sent_at"] == FormatRfc3339Utc(FromUnixMillis(1780000001999)));
  CHECK(body["data"]["deployment_id"] == 7);
  CHECK(body["data"]["application"] == "shop");
  CHECK(body["data"]["build"] == 2);
  CHECK(body["data"]["time"] == FormatRfc3339Utc(FromUnixMillis(e.time)));
  CHECK_FALSE(body["data"].contains("target"));  // empty fields are left out
  auto slack = nlohmann::json::parse(WebhookBody(d, "slack", 1780000001999));
  CHECK(slack.size() == 1);
  CHECK(slack["text"].get<std::string>().find(
            "deployment.succeeded - deployment 7 of shop 1.0 build 2 to Integration") !=
        std::string::npos);
  CHECK(WebhookSignature("s3cret", "{}") == "sha256=" + HmacSha256Hex("s3cret", "{}"));
}

TEST_CASE("backoff doubles from the first wait and stops at the cap") {
  using std::chrono::milliseconds;
  CHECK(WebhookBackoff(1, milliseconds(30000), milliseconds(3600000)) == milliseconds(30000));
  CHECK(WebhookBackoff(2, milliseconds(30000), milliseconds(3600000)) == milliseconds(60000));
  CHECK(WebhookBackoff(4, milliseconds(30000), milliseconds(3600000)) == milliseconds(240000));
  CHECK(WebhookBackoff(8, milliseconds(30000), milliseconds(3600000)) == milliseconds(3600000));
  CHECK(WebhookBackoff(1000, milliseconds(30000), milliseconds(3600000)) == milliseconds(3600000));
}

TEST_CASE("the event bus delivers in order, stamps the time, and unsubscribes") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  EventBus bus(clock);
  std::mutex mu;
  std::vector<Event> seen;
  int64_t id = bus.Subscribe([&](const Event& e) {
    std::lock_guard lock(mu);
    seen.push_back(e);
  });
  for (int i = 0; i < 5; ++i) bus.Publish(Ev("deployment.requested", i));
  REQUIRE(WaitUntil([&] {
    std::lock_guard lock(mu);
    return seen.size() == 5;
  }));
  for (int i = 0; i < 5; ++i) {
    CHECK(seen[static_cast<size_t>(i)].deployment_id == i);
    CHECK(seen[static_cast<size_t>(i)].time == ToUnixMillis(clock.Now()));
  }
  bus.Unsubscribe(id);
  bus.Publish(Ev("deployment.started"));
  bus.Stop();  // delivers what is queued first
  CHECK(seen.size() == 5);
}

TEST_CASE("publishing never waits for a stuck subscriber; the oldest events are dropped") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  EventBus bus(clock, 10);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  bus.Subscribe([&](const Event&) {
    ++calls;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  bus.Publish(Ev("agent.offline"));
  REQUIRE(WaitUntil([&] { return calls == 1; }));
  // The subscriber is blocked: 100 more publications all return.
  for (int i = 0; i < 100; ++i) bus.Publish(Ev("agent.offline"));
  CHECK(bus.dropped() == 90);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  bus.Stop();
  CHECK(calls == 11);
}

TEST_CASE("every event type is known once; ping is not subscribable") {
  const auto& types = KnownEventTypes();
  CHECK(std::is_sorted(types.begin(), types.end()));
  CHECK(std::adjacent_find(types.begin(), types.end()) == types.end());
  for (const char* t :
       {"deployment.requested", "deployment.waiting", "deployment.started", "deployment.succeeded",
        "deployment.failed", "deployment.rolled-back", "approval.needed", "hold.placed",
        "rollback-record.created", "rollback-record.approved", "agent.offline"})
    CHECK_MESSAGE(IsKnownEventType(t), t);
  CHECK_FALSE(IsKnownEventType("ping"));
}

}  // namespace reprise::testing
