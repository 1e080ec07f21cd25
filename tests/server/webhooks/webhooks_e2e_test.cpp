// Webhooks end to end: a real server (SQLite file, fake clock), a real
// deployment, and a local HTTP receiver on 127.0.0.1 that checks every
// signature. Retries, restarts and giving up are driven by the fake clock.
#include <doctest/doctest.h>

#include "tests/server/engine/engine_test_support.h"
#include "tests/server/webhooks/receiver.h"

namespace reprise::testing {
namespace {

// Quick plans for Integration and Testing; webhooks may deliver to loopback.
PipelineOptions QuickPipeline(FakeClock* clock, bool start_agent) {
  PipelineOptions options;
  options.integration_plan = "quick";
  options.testing_plan = "quick";
  options.start_agent = start_agent;
  options.server.clock = clock;
  options.server.webhook_allow_private = true;
  return options;
}

json Hook(const std::string& url, const std::vector<std::string>& events) {
  return {{"url", url}, {"events", events}, {"secret", kReceiverSecret}, {"format", "json"}};
}

// Saves webhook `name`, sending `events` to `url`; it must be created (201).
void SaveHook(HttpClient& admin, const std::string& name, const std::string& url,
              const std::vector<std::string>& events) {
  auto put = admin.Put("/api/v1/webhooks/" + name, Hook(url, events).dump());
  REQUIRE_MESSAGE(put.status == 201, put.body);
}

json Deliveries(HttpClient& admin, const std::string& name) {
  auto got = admin.Get("/api/v1/webhooks/" + name + "/deliveries");
  REQUIRE_MESSAGE(got.status == 200, got.body);
  return json::parse(got.body)["items"];
}

// The delivery `id` of webhook `name` once `pred` holds for it.
json WaitDelivery(HttpClient& admin, const std::string& name, int64_t id,
                  const std::function<bool(const json&)>& pred) {
  json found;
  bool ok = WaitUntil([&] {
    for (const auto& d : Deliveries(admin, name))
      if (d["id"] == id) {
        found = d;
        return pred(d);
      }
    return false;
  });
  REQUIRE_MESSAGE(ok, found.dump());
  return found;
}

// A server of our own on a data directory we keep, so it can restart with
// other options (the fake clock survives it).
class OwnServer {
 public:
  explicit OwnServer(bool allow_private) { Start(allow_private); }
  ~OwnServer() { Stop(); }
  void Start(bool allow_private) {
    ServerOptions o;
    o.data_dir = temp_.path() / "data";
    o.http_host = "127.0.0.1";
    o.http_port = 0;
    o.agent_port = -1;
    o.agent_host = "127.0.0.1";
    o.agent_tls = false;
    o.fsync = false;
    o.admin_token = kAdminToken;
    o.quiet = true;
    o.clock = &clock;
    o.webhook_allow_private = allow_private;
    app_ = std::make_unique<ServerApp>(o);
    Status st = app_->Start();
    REQUIRE_MESSAGE(st.ok(), st.ToString());
  }
  void Stop() {
    if (app_) app_->Stop();
    app_.reset();
  }
  void Restart(bool allow_private) {
    Stop();
    Start(allow_private);
  }
  HttpClient Admin() const {
    HttpClient c("127.0.0.1", app_->http_port());
    c.set_token(kAdminToken);
    return c;
  }

  FakeClock clock{*ParseRfc3339("2026-06-01T10:00:00Z")};

 private:
  TempDir temp_;
  std::unique_ptr<ServerApp> app_;
};

// What most tests here start with: a receiver, a server of our own that may
// send to it (private addresses allowed) and its admin.
struct ReceiverAndServer {
  Receiver receiver;
  OwnServer server{true};
  HttpClient admin = server.Admin();
};

// Queues a ping to `name` and returns the delivery.
json Ping(HttpClient& admin, const std::string& name) {
  auto sent = admin.Post("/api/v1/webhooks/" + name + "/test", "");
  REQUIRE_MESSAGE(sent.status == 202, sent.body);
  return json::parse(sent.body);
}

}  // namespace

TEST_CASE("a deployment is announced requested, started, succeeded, each signed") {
  Receiver receiver;
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  PipelineFixture f(QuickPipeline(&clock, /*start_agent=*/false));
  auto admin = f.Admin();
  SaveHook(admin, "ci", receiver.url(),
           {"deployment.requested", "deployment.started", "deployment.succeeded"});

  auto d = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(d["id"])["status"] == "succeeded");
  const int64_t id = d["id"];
  std::vector<std::string> events;
  REQUIRE(WaitUntil([&] {
    events.clear();
    for (const auto& r : receiver.received()) {
      auto body = json::parse(r.body);
      if (body["data"].value("deployment_id", int64_t{0}) == id) events.push_back(r.event);
    }
    return events.size() >= 3;
  }));
  CHECK(events == std::vector<std::string>{"deployment.requested", "deployment.started",
                                           "deployment.succeeded"});
  for (const auto& r : receiver.received()) {
    CHECK(r.signature_ok);
    auto body = json::parse(r.body);
    CHECK(body["event"] == r.event);
    CHECK(std::to_string(body["id"].get<int64_t>()) == r.delivery);
    CHECK(std::to_string(body["timestamp"].get<int64_t>()) == r.timestamp);
    CHECK(body["timestamp"] == ToUnixMillis(clock.Now()) / 1000);
    if (body["data"]["deployment_id"] != id) continue;
    CHECK(body["data"]["application"] == "shop");
    CHECK(body["data"]["stage"] == "Integration");
    CHECK(body["data"]["release"] == "1.0");
    CHECK(body["data"]["build"] == 1);
    CHECK(body["data"]["actor"] == "admin");
  }
  // Recorded per webhook, newest first, delivered with the receiver's answer.
  json list;
  REQUIRE(WaitUntil([&] {
    list = Deliveries(admin, "ci");
    if (list.size() < 3) return false;
    for (const auto& x : list)
      if (x["status"] != "delivered") return false;
    return true;
  }));
  CHECK(list[0]["id"].get<int64_t>() > list[1]["id"].get<int64_t>());
  CHECK(list[0]["response_code"] == 200);
  CHECK(list[0]["attempts"] == 1);
  CHECK(list[0]["delivered_at"].is_string());
}

TEST_CASE("putting an earlier build back is announced rolled-back, and its hold placed") {
  Receiver receiver;
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  PipelineFixture f(QuickPipeline(&clock, /*start_agent=*/false));
  auto admin = f.Admin();
  SaveHook(admin, "ops", receiver.url(), {"deployment.rolled-back", "hold.placed"});
  for (int build : {1, 2}) {
    auto d = f.Deploy(admin, build, {{"stage", "Integration"}});
    REQUIRE(f.WaitFinal(d["id"])["status"] == "succeeded");
  }
  auto back = f.Deploy(admin, 1, {{"stage", "Integration"}});
  REQUIRE(f.WaitFinal(back["id"])["status"] == "succeeded");
  REQUIRE(WaitUntil([&] { return receiver.count() == 2; }));
  auto got = receiver.received();
  CHECK(got[0].event == "deployment.rolled-back");
  CHECK(got[1].event == "hold.placed");
  for (const auto& r : got) {
    CHECK(r.signature_ok);
    auto data = json::parse(r.body)["data"];
    CHECK(data["deployment_id"] == back["id"]);
    CHECK(data["kind"] == "rollback");
    CHECK(data["build"] == 1);
  }
  CHECK(json::parse(got[1].body)["data"]["reason"] == "rolled back to 1.0 build 1");
}

TEST_CASE("a gate waiting for approval and an agent going offline are announced") {
  Receiver receiver;
  PipelineFixture f(QuickPipeline(nullptr, /*start_agent=*/true));  // reprise-agent "box" online
  auto admin = f.Admin();
  SaveHook(admin, "ops", receiver.url(),
           {"deployment.waiting", "approval.needed", "agent.offline"});
  f.DeployToTesting(admin, 1);
  auto rita = f.ReleaseManager();
  auto prod = f.Deploy(rita, 1, {{"stage", "Production"}});
  REQUIRE(prod["status"] == "waiting");
  REQUIRE(WaitUntil([&] { return receiver.count() >= 2; }));
  f.StopAgent();
  REQUIRE(WaitUntil([&] { return receiver.count() >= 3; }));
  auto got = receiver.received();
  REQUIRE(got.size() == 3);
  CHECK(got[0].event == "deployment.waiting");
  CHECK(got[1].event == "approval.needed");
  for (int i : {0, 1}) {
    auto data = json::parse(got[i].body)["data"];
    CHECK(data["deployment_id"] == prod["id"]);
    CHECK(data["stage"] == "Production");
    CHECK(data["status"] == "waiting");
    CHECK(data["reason"].get<std::string>().find("approvals") != std::string::npos);
  }
  CHECK(got[2].event == "agent.offline");
  auto offline = json::parse(got[2].body)["data"];
  CHECK(offline["agent"] == "box");
  CHECK(offline["status"] == "offline");
  for (const auto& r : got) CHECK(r.signature_ok);
}

TEST_CASE_FIXTURE(
    ReceiverAndServer,
    "a 500 is retried once the fake clock passes the backoff; redeliver sends again") {
  SaveHook(admin, "chat", receiver.url(), {"hold.placed"});
  receiver.AnswerNext({500});
  const int64_t id = Ping(admin, "chat")["id"];
  auto first = WaitDelivery(admin, "chat", id, [](const json& d) { return d["attempts"] == 1; });
  CHECK(first["status"] == "pending");
  CHECK(first["response_code"] == 500);
  CHECK(first["error"] == "answered HTTP 500");
  CHECK(first["next_attempt_at"] ==
        FormatRfc3339Utc(server.clock.Now() + std::chrono::seconds(30)));
  CHECK(receiver.count() == 1);
  server.clock.Advance(std::chrono::seconds(31));
  auto second = WaitDelivery(admin, "chat", id, [](const json& d) { return d["attempts"] == 2; });
  CHECK(second["status"] == "delivered");
  CHECK(second["response_code"] == 200);
  CHECK(second["error"] == "");
  REQUIRE(receiver.count() == 2);
  CHECK(receiver.received()[0].delivery == receiver.received()[1].delivery);
  CHECK(receiver.received()[1].signature_ok);

  auto again =
      admin.Post("/api/v1/webhooks/chat/deliveries/" + std::to_string(id) + "/redeliver", "");
  REQUIRE_MESSAGE(again.status == 202, again.body);
  const int64_t again_id = json::parse(again.body)["id"];
  CHECK(again_id != id);
  WaitDelivery(admin, "chat", again_id, [](const json& d) { return d["status"] == "delivered"; });
  REQUIRE(receiver.count() == 3);
  CHECK(receiver.received()[2].delivery == std::to_string(again_id));
  CHECK(json::parse(receiver.received()[2].body)["data"] ==
        json::parse(receiver.received()[0].body)["data"]);
  CHECK(admin.Post("/api/v1/webhooks/chat/deliveries/999999/redeliver", "").status == 404);
}

TEST_CASE_FIXTURE(ReceiverAndServer,
                  "a pending delivery survives a restart and goes out after it") {
  SaveHook(admin, "ops", receiver.url(), {"agent.offline"});
  receiver.AnswerNext({503});
  const int64_t id = Ping(admin, "ops")["id"];
  WaitDelivery(admin, "ops", id, [](const json& d) { return d["attempts"] == 1; });
  server.Restart(true);
  admin = server.Admin();
  auto kept =
      WaitDelivery(admin, "ops", id, [](const json& d) { return d["status"] == "pending"; });
  CHECK(kept["response_code"] == 503);
  server.clock.Advance(std::chrono::seconds(31));
  WaitDelivery(admin, "ops", id, [](const json& d) { return d["status"] == "delivered"; });
  CHECK(receiver.count() == 2);
}

TEST_CASE_FIXTURE(ReceiverAndServer, "a delivery that keeps failing is given up after 24 hours") {
  SaveHook(admin, "down", receiver.url(), {"agent.offline"});
  receiver.AnswerAlways(502);
  const auto queued_at = server.clock.Now();
  const int64_t id = Ping(admin, "down")["id"];
  json d = WaitDelivery(admin, "down", id, [](const json& x) { return x["attempts"] == 1; });
  // Each hour at most one more attempt (the backoff caps at an hour).
  for (int hour = 0; hour < 30 && d["status"] == "pending"; ++hour) {
    const int64_t attempts = d["attempts"];
    server.clock.Advance(std::chrono::hours(1));
    d = WaitDelivery(admin, "down", id, [&](const json& x) {
      return x["attempts"].get<int64_t>() > attempts || x["status"] != "pending";
    });
  }
  CHECK(d["status"] == "failed");
  CHECK(d["error"].get<std::string>().find("gave up after") == 0);
  CHECK(d["response_code"] == 502);
  CHECK(server.clock.Now() - queued_at <= std::chrono::hours(25));
  CHECK(server.clock.Now() - queued_at >= std::chrono::hours(23));
  const size_t sent = receiver.count();
  server.clock.Advance(std::chrono::hours(2));
  CHECK(Deliveries(admin, "down")[0]["status"] == "failed");
  CHECK(receiver.count() == sent);
}

TEST_CASE_FIXTURE(ReceiverAndServer,
                  "private and metadata URLs are refused when saved, and again when connecting") {
  // Saved while private addresses were allowed...
  SaveHook(admin, "inside", receiver.url(), {"agent.offline"});
  // ...then the server runs without --webhook-allow-private.
  server.Restart(false);
  admin = server.Admin();
  auto refused =
      admin.Put("/api/v1/webhooks/other", Hook(receiver.url(), {"agent.offline"}).dump());
  CHECK(refused.status == 400);
  CHECK(refused.body.find("field 'url'") != std::string::npos);
  CHECK(refused.body.find("127.0.0.1, a loopback address") != std::string::npos);
  for (auto [url, reason] : {std::pair{"http://169.254.169.254/latest", "cloud metadata"},
                             {"http://10.0.0.8/", "a private address"},
                             {"http://[::1]:9/", "a loopback address"},
                             {"http://[::ffff:192.168.0.1]/", "a private address"},
                             {"http://100.64.1.1/", "CGNAT"},
                             {"http://localhost:9/", "a loopback address"}}) {
    auto put = admin.Put("/api/v1/webhooks/other", Hook(url, {"agent.offline"}).dump());
    CHECK_MESSAGE(put.status == 400, url);
    CHECK_MESSAGE(put.body.find(reason) != std::string::npos, put.body);
  }
  // The stored one is checked again before connecting: nothing is sent.
  const int64_t id = Ping(admin, "inside")["id"];
  auto d = WaitDelivery(admin, "inside", id, [](const json& x) { return x["attempts"] == 1; });
  CHECK(d["status"] == "pending");
  CHECK(d["response_code"] == 0);
  CHECK(d["error"].get<std::string>().find("not sent: host '127.0.0.1' resolves to 127.0.0.1, a "
                                           "loopback address") == 0);
  CHECK(receiver.count() == 0);
}

TEST_CASE_FIXTURE(ReceiverAndServer,
                  "secrets are masked in answers and in the audit log; PUT ****** keeps them") {
  auto created = admin.Put("/api/v1/webhooks/ci", Hook(receiver.url(), {"agent.offline"}).dump());
  REQUIRE(created.status == 201);
  CHECK(json::parse(created.body)["secret"] == "******");
  auto one = admin.Get("/api/v1/webhooks/ci");
  REQUIRE(one.status == 200);
  CHECK(json::parse(one.body)["secret"] == "******");
  CHECK(json::parse(one.body)["events"] == json::array({"agent.offline"}));
  auto list = admin.Get("/api/v1/webhooks");
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body)["items"][0]["secret"] == "******");
  // "******" keeps the stored secret: deliveries still verify.
  json keep = Hook(receiver.url(), {"agent.offline", "hold.placed"});
  keep["secret"] = "******";
  keep["format"] = "slack";
  REQUIRE(admin.Put("/api/v1/webhooks/ci", keep.dump()).status == 200);
  keep["format"] = "json";
  REQUIRE(admin.Put("/api/v1/webhooks/ci", keep.dump()).status == 200);
  Ping(admin, "ci");
  REQUIRE(WaitUntil([&] { return receiver.count() == 1; }));
  CHECK(receiver.received()[0].signature_ok);
  CHECK(receiver.received()[0].event == "ping");
  for (const auto* body : {&created.body, &one.body, &list.body})
    CHECK(body->find(kReceiverSecret) == std::string::npos);
  auto audit = admin.Get("/api/v1/audit?action=webhook.");
  REQUIRE(audit.status == 200);
  CHECK(audit.body.find("webhook.put") != std::string::npos);
  CHECK(audit.body.find("secret ******") != std::string::npos);
  CHECK(audit.body.find(kReceiverSecret) == std::string::npos);
  // Deleting removes it and its deliveries.
  REQUIRE(admin.Send("DELETE", "/api/v1/webhooks/ci", "").status == 200);
  CHECK(admin.Get("/api/v1/webhooks/ci").status == 404);
  CHECK(admin.Get("/api/v1/webhooks/ci/deliveries").status == 404);
  CHECK(admin.Send("DELETE", "/api/v1/webhooks/ci", "").status == 404);
}

TEST_CASE("bad webhook input is a 400 naming the field; only admins may touch webhooks") {
  OwnServer server(true);
  auto admin = server.Admin();
  const std::string url = "http://127.0.0.1:9/hook";
  auto put = [&](const json& body) { return admin.Put("/api/v1/webhooks/w", body.dump()); };
  auto expect = [&](const json& body, const std::string& words) {
    auto res = put(body);
    CHECK_MESSAGE(res.status == 400, body.dump());
    CHECK_MESSAGE(res.body.find(words) != std::string::npos, res.body);
  };
  expect({{"events", {"agent.offline"}}, {"secret", kReceiverSecret}}, "missing field 'url'");
  expect(Hook("ftp://x.example/", {"agent.offline"}), "scheme 'ftp'");
  expect(Hook("https://u:p@x.example/", {"agent.offline"}), "credentials");
  expect(Hook(url, {}), "field 'events'");
  expect(Hook(url, {"deployment.exploded"}), "unknown event 'deployment.exploded'");
  expect(Hook(url, {"ping"}), "unknown event 'ping'");
  expect({{"url", url}, {"events", {"agent.offline"}}}, "field 'secret' is required");
  expect({{"url", url}, {"events", {"agent.offline"}}, {"secret", "******"}},
         "field 'secret' is required");
  expect({{"url", url}, {"events", {"agent.offline"}}, {"secret", "short"}}, "field 'secret'");
  json bad_format = Hook(url, {"agent.offline"});
  bad_format["format"] = "xml";
  expect(bad_format, "field 'format'");
  json bad_enabled = Hook(url, {"agent.offline"});
  bad_enabled["enabled"] = "yes";
  expect(bad_enabled, "field 'enabled'");
  json extra = Hook(url, {"agent.offline"});
  extra["colour"] = "red";
  expect(extra, "colour");
  CHECK(admin.Put("/api/v1/webhooks/w", "{not json").status == 400);
  CHECK(admin.Put("/api/v1/webhooks/.bad", Hook(url, {"agent.offline"}).dump()).status == 400);
  CHECK(admin.Get("/api/v1/webhooks?limit=0").status == 400);
  CHECK(admin.Get("/api/v1/webhooks/w").status == 404);

  REQUIRE(admin.Post("/api/v1/users", R"({"name":"dev","role":"deployer"})").status == 201);
  auto token = admin.Post("/api/v1/users/dev/tokens", "{}");
  REQUIRE(token.status == 201);
  HttpClient dev = server.Admin();
  dev.set_token(json::parse(token.body)["token"]);
  CHECK(dev.Get("/api/v1/webhooks").status == 403);
  CHECK(dev.Put("/api/v1/webhooks/w", Hook(url, {"agent.offline"}).dump()).status == 403);
}

}  // namespace reprise::testing
