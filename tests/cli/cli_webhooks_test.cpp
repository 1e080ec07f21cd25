// The CLI's webhook commands against a real server: set with the secret on
// stdin (never printed back), list and show with the secret masked,
// deliveries, test, redeliver, a refused URL, delete.
#include "tests/cli/cli_support.h"

namespace reprise::testing {

TEST_CASE("webhook commands: set, list, show, test, deliveries, redeliver, delete") {
  ServerOptions options = CliFixture::Options();
  options.webhook_allow_private = true;  // the URL below is on loopback; nothing listens there
  CliFixture f(options);
  const std::string secret = "a-secret-of-24-characters";
  auto set = f.Run({"webhook", "set", "chat", "--url", "http://127.0.0.1:9/hook", "--event",
                    "deployment.succeeded", "--event", "deployment.failed", "--secret-stdin"},
                   CliRun{.token = kAdminToken, .stdin_text = secret + "\n"});
  REQUIRE(set.code == 0);
  CHECK(Contains(set.out, "name:"));
  CHECK(Contains(set.out, "******"));
  CHECK_FALSE(Contains(set.out + set.err, secret));

  auto list = f.Run({"webhook", "list"});
  CHECK(list.code == 0);
  CHECK(Contains(list.out, "NAME"));
  CHECK(Contains(list.out, "http://127.0.0.1:9/hook"));
  auto shown = f.Run({"webhook", "show", "chat", "--output", "json"});
  REQUIRE(shown.code == 0);
  json hook = json::parse(shown.out);
  CHECK(hook["secret"] == "******");
  CHECK(hook["events"] == json::array({"deployment.failed", "deployment.succeeded"}));

  // A ping is queued; it shows among the deliveries and can be sent again.
  auto ping = f.Run({"webhook", "test", "chat", "--output", "json"});
  REQUIRE(ping.code == 0);
  const int64_t id = json::parse(ping.out)["id"].get<int64_t>();
  auto deliveries = f.Run({"webhook", "deliveries", "chat"});
  CHECK(deliveries.code == 0);
  CHECK(Contains(deliveries.out, "EVENT"));
  CHECK(Contains(deliveries.out, "ping"));
  auto again = f.Run({"webhook", "redeliver", "chat", std::to_string(id), "--output", "json"});
  REQUIRE(again.code == 0);
  CHECK(json::parse(again.out)["id"].get<int64_t>() != id);
  auto listed = json::parse(f.Run({"webhook", "deliveries", "chat", "--output", "json"}).out);
  int pings = 0;
  for (const auto& d : listed["items"]) pings += d["event"] == "ping" ? 1 : 0;
  CHECK(pings == 2);
  CHECK(f.Run({"webhook", "redeliver", "chat", "999999"}).code == 1);

  // Saved again without a secret: the stored one is kept.
  auto resaved = f.Run({"webhook", "set", "chat", "--url", "http://127.0.0.1:9/hook", "--event",
                        "deployment.succeeded", "--format", "slack"});
  CHECK(resaved.code == 0);
  CHECK(Contains(resaved.out, "slack"));

  // A metadata address is refused whatever the server allows, naming why.
  auto refused = f.Run({"webhook", "set", "meta", "--url", "http://169.254.169.254/", "--event",
                        "deployment.failed", "--secret-stdin"},
                       CliRun{.token = kAdminToken, .stdin_text = secret + "\n"});
  CHECK(refused.code == 1);
  CHECK(Contains(refused.err, "169.254.169.254"));
  CHECK(f.Run({"webhook", "set", "x", "--url", "http://127.0.0.1:9/", "--event", "e", "--format",
               "xml"})
            .code == 2);

  CHECK(f.Run({"webhook", "delete", "chat"}).code == 0);
  CHECK(Contains(f.Run({"webhook", "list"}).out, "no webhooks"));
  CHECK(f.Run({"webhook", "show", "chat"}).code == 1);
}

}  // namespace reprise::testing
