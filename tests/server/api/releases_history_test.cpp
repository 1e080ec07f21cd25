// Release and build notes and links, the deployments history's filters and
// CSV, and the scheduling bounds, against a real server (port 0, real SQLite,
// the in-process local agent).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/clock.h"
#include "tests/support/test_server.h"
#include "tests/support/wait.h"
#include "tests/support/seed.h"

namespace reprise::testing {
namespace {

using nlohmann::json;


std::string Message(const HttpResult& r) {
  auto j = Body(r);
  bool is_error = j.is_object() && j.contains("error") && j["error"].is_object();
  return is_error ? j["error"]["message"].get<std::string>() : r.body;
}

const std::string kApp = "/api/v1/applications/Shop";

// Application "Shop": stage Build (promotes automatically) then Live, both on
// the local agent; release 1.0.
void Seed(TestServer& server, HttpClient& admin) {
  REQUIRE(admin.Put("/api/v1/environments/Dev", "{}").status == 200);
  for (const char* t : {"web-a", "web-b"}) {
    json target = {{"environment", "Dev"},
                   {"agent", "local"},
                   {"path", (server.data_dir() / "targets" / t).string()}};
    REQUIRE(admin.Put(std::string("/api/v1/targets/") + t, target.dump()).status == 200);
  }
  auto put = admin.Put(kApp,
                       "pipeline:\n"
                       "  - {stage: Build, environment: Dev, targets: [web-a], plan: p, "
                       "auto_promote: true}\n"
                       "  - {stage: Live, environment: Dev, targets: [web-b], plan: p}\n"
                       "plans:\n  p: |\n    - log: \"hello\"\n",
                       "application/yaml");
  REQUIRE_MESSAGE(put.status == 200, put.body);
}

json WaitFinal(HttpClient& admin, int64_t id) {
  json d;
  REQUIRE(WaitUntil([&] {
    d = Body(admin.Get("/api/v1/deployments/" + std::to_string(id)));
    std::string s = d.value("status", "");
    return s == "succeeded" || s == "failed" || s == "cancelled";
  }));
  return d;
}

}  // namespace

TEST_CASE("releases and builds keep their notes and links; bad ones are refused by name") {
  TestServer server;
  auto admin = server.Admin();
  Seed(server, admin);
  const std::string hostile = "# 1.0\n<img src=x onerror=alert(1)> [x](javascript:alert(1))\n";
  json release = {{"number", "1.0"},
                  {"notes", hostile},
                  {"links",
                   {{{"title", "SHOP-12"}, {"url", "https://tracker.example/SHOP-12"}},
                    "https://git.example/shop/commit/0a1b2c"}}};
  auto created = admin.Post(kApp + "/releases", release.dump());
  REQUIRE_MESSAGE(created.status == 201, created.body);
  json got = Body(admin.Get(kApp + "/releases/1.0"));
  CHECK(got["notes"] == hostile);  // stored as written; the UI renders it as text
  REQUIRE(got["links"].size() == 2);
  CHECK(got["links"][0] == json{{"title", "SHOP-12"}, {"url", "https://tracker.example/SHOP-12"}});
  CHECK(got["links"][1] == json{{"title", ""}, {"url", "https://git.example/shop/commit/0a1b2c"}});
  CHECK(Body(admin.Get(kApp + "/releases"))["items"][0]["notes"] == hostile);

  auto build = admin.Post(kApp + "/releases/1.0/builds",
                          R"({"notes":"Fixes *checkout*.","links":["http://ci.example/42"]})");
  REQUIRE_MESSAGE(build.status == 201, build.body);
  json b = Body(admin.Get(kApp + "/releases/1.0/builds/1"));
  CHECK(b["notes"] == "Fixes *checkout*.");
  CHECK(b["links"][0]["url"] == "http://ci.example/42");
  // A build without notes has empty ones.
  REQUIRE(admin.Post(kApp + "/releases/1.0/builds", "{}").status == 201);
  json plain = Body(admin.Get(kApp + "/releases/1.0/builds/2"));
  CHECK(plain["notes"] == "");
  CHECK(plain["links"] == json::array());

  struct Bad {
    json links;
    std::string says;
  };
  for (const auto& bad : std::vector<Bad>{
           {json::array({"javascript:alert(1)"}),
            "links[0].url must start with http:// or https://"},
           {json::array({"JavaScript://x.example/%0aalert(1)"}), "links[0].url must start with"},
           {json::array({"data:text/html,<b>x</b>"}), "links[0].url must start with"},
           {json::array({"https://ok.example", "https:///nohost"}), "links[1].url has no host"},
           {json::array({"https://a.example/x y"}), "must not contain spaces"},
           {json::array({{{"url", "https://a.example"}, {"target", "_blank"}}}), "target"},
           {json::array({{{"title", std::string(201, 'x')}, {"url", "https://a.example"}}}),
            "links[0].title is longer than 200 bytes"},
           {json::array({42}), "links[0] must be a URL or an object"},
       }) {
    json body = {{"notes", ""}, {"links", bad.links}};
    auto r = admin.Post(kApp + "/releases/1.0/builds", body.dump());
    CAPTURE(bad.links.dump());
    CHECK(r.status == 400);
    CHECK_MESSAGE(Message(r).find(bad.says) != std::string::npos, Message(r));
  }
  json many = {{"links", json::array()}};
  for (int i = 0; i < 51; ++i) many["links"].push_back("https://a.example/" + std::to_string(i));
  auto too_many = admin.Post(kApp + "/releases/1.0/builds", many.dump());
  CHECK(too_many.status == 400);
  CHECK(Message(too_many).find("has 51 links; at most 50") != std::string::npos);
  json big = {{"number", "2.0"}, {"notes", std::string(65537, 'n')}};
  auto too_big = admin.Post(kApp + "/releases", big.dump());
  CHECK(too_big.status == 400);
  CHECK(Message(too_big).find("release notes are 65537 bytes; at most 65536") != std::string::npos);
  auto not_text = admin.Post(kApp + "/releases", R"({"number":"2.0","notes":["a"]})");
  CHECK(not_text.status == 400);
  CHECK(Message(not_text).find("'notes' must be a string") != std::string::npos);
  // Nothing was half-written: release 2.0 does not exist, the builds are 1 and 2.
  CHECK(admin.Get(kApp + "/releases/2.0").status == 404);
  CHECK(Body(admin.Get(kApp + "/releases/1.0/builds"))["items"].size() == 2);
  // Viewers read notes but cannot create releases.
  auto viewer = server.As(server.CreateUser("vera", "viewer"));
  CHECK(Body(viewer.Get(kApp + "/releases/1.0"))["notes"] == hostile);
  CHECK(viewer.Post(kApp + "/releases", R"({"number":"3.0","notes":"x"})").status == 403);
}

TEST_CASE("the deployments history filters without regard to case, exports CSV, names automation") {
  ServerOptions o;
  o.local_agent = true;
  TestServer server(o);
  auto admin = server.Admin();
  Seed(server, admin);
  REQUIRE(admin.Post(kApp + "/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post(kApp + "/releases/1.0/builds", "{}").status == 201);
  REQUIRE(admin.Post(kApp + "/releases/1.0/builds", "{}").status == 201);
  auto deployer = server.As(server.CreateUser("Dora", "deployer"));
  auto first = deployer.Post(kApp + "/releases/1.0/builds/1/deploy", R"({"stage":"Build"})");
  REQUIRE_MESSAGE(first.status == 202, first.body);
  REQUIRE(WaitFinal(admin, Body(first)["id"])["status"] == "succeeded");
  // Each success on Build promotes automatically to Live: by "automation", not by its requester.
  auto promoted_after = [&](int64_t id) {
    json found;
    REQUIRE(WaitUntil([&] {
      json list = Body(admin.Get("/api/v1/deployments?stage=live"));
      for (const auto& d : list["items"])
        if (d["comment"] == "automatic promotion after deployment " + std::to_string(id)) found = d;
      return !found.is_null();
    }));
    WaitFinal(admin, found["id"]);
    return found;
  };
  json automatic = promoted_after(Body(first)["id"]);
  CHECK(automatic["automatic"] == true);
  CHECK(automatic["by"] == "automation");
  CHECK(automatic["requested_by"] == "Dora");
  auto second = admin.Post(kApp + "/releases/1.0/builds/2/deploy", R"({"stage":"Build"})");
  REQUIRE(second.status == 202);
  WaitFinal(admin, Body(second)["id"]);
  json automatic2 = promoted_after(Body(second)["id"]);

  auto ids = [&](const std::string& q) {
    auto r = admin.Get("/api/v1/deployments?" + q);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    std::vector<int64_t> out;
    json list = Body(r);
    for (const auto& d : list["items"]) out.push_back(d["id"].get<int64_t>());
    return out;
  };
  int64_t a = Body(first)["id"], b = automatic["id"], c = Body(second)["id"], d = automatic2["id"];
  CHECK(ids("application=SHOP") == std::vector<int64_t>{d, c, b, a});
  CHECK(ids("stage=BUILD") == std::vector<int64_t>{c, a});
  CHECK(ids("target=WEB-B") == std::vector<int64_t>{d, b});
  CHECK(ids("user=dora") == std::vector<int64_t>{a});
  CHECK(ids("user=Automation") == std::vector<int64_t>{d, b});
  CHECK(ids("status=SUCCEEDED&release=1.0&build=1") == std::vector<int64_t>{b, a});
  std::string soon = FormatRfc3339Utc(SystemClock().Now() + std::chrono::hours(1));
  CHECK(ids("from=2000-01-01T00:00:00Z&to=" + soon).size() == 4);
  CHECK(ids("to=2000-01-01T00:00:00Z").empty());

  auto csv = admin.Get("/api/v1/deployments?application=shop&format=csv");
  REQUIRE(csv.status == 200);
  CHECK(csv.body.rfind("id,application,release,build,stage,kind,status,by,target_names,", 0) == 0);
  CHECK(csv.body.find(std::to_string(b) + ",Shop,1.0,1,Live,promote,succeeded,automation,web-b,") !=
        std::string::npos);

  for (const auto& [q, says] : std::vector<std::pair<std::string, std::string>>{
           {"format=xml", "'format' must be json or csv"},
           {"status=done", "unknown status 'done'"},
           {"from=yesterday", "'from' must be RFC 3339"},
           {"build=x", "build"},
           {"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "'to' must be after 'from'"},
           {"colour=red", "colour"}}) {
    auto r = admin.Get("/api/v1/deployments?" + q);
    CAPTURE(q);
    CHECK(r.status == 400);
    CHECK_MESSAGE(Message(r).find(says) != std::string::npos, Message(r));
  }
  CHECK(server.Anonymous().Get("/api/v1/deployments?format=csv").status == 401);
}

TEST_CASE("a deployment cannot be scheduled more than 366 days ahead, nor moved there") {
  TestServer server;
  auto admin = server.Admin();
  Seed(server, admin);
  REQUIRE(admin.Post(kApp + "/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post(kApp + "/releases/1.0/builds", "{}").status == 201);
  auto in_days = [](int days) {
    return FormatRfc3339Utc(SystemClock().Now() + std::chrono::hours(24 * days));
  };
  json far = {{"stage", "Build"}, {"at", in_days(400)}};
  auto refused = admin.Post(kApp + "/releases/1.0/builds/1/deploy", far.dump());
  CHECK(refused.status == 400);
  CHECK_MESSAGE(Message(refused).find("at most 366 days ahead") != std::string::npos,
                Message(refused));
  CHECK(Body(admin.Get("/api/v1/deployments"))["items"].empty());

  json near = {{"stage", "Build"}, {"at", in_days(30)}};
  auto scheduled = admin.Post(kApp + "/releases/1.0/builds/1/deploy", near.dump());
  REQUIRE_MESSAGE(scheduled.status == 202, scheduled.body);
  std::string path = "/api/v1/deployments/" + std::to_string(Body(scheduled)["id"].get<int64_t>());
  auto moved = admin.Send("PATCH", path, json{{"at", in_days(367)}}.dump());
  CHECK(moved.status == 400);
  CHECK(Message(moved).find("at most 366 days ahead") != std::string::npos);
  CHECK(Body(admin.Get(path))["scheduled_at"] == Body(scheduled)["scheduled_at"]);
}

}  // namespace reprise::testing
