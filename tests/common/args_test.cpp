#include "common/args.h"

#include <doctest/doctest.h>

namespace reprise {

TEST_CASE("ParseArgs: options in any order, inline values, -- ends options") {
  auto parsed = ParseArgs({"deploy", "--stage", "Prod", "--force", "shop", "--at=now", "--", "--x"},
                          {{"stage", true}, {"force"}, {"at", true}});
  REQUIRE(parsed.ok());
  CHECK(parsed->positional == std::vector<std::string>{"deploy", "shop", "--x"});
  CHECK(parsed->Value("stage") == "Prod");
  CHECK(parsed->Value("at") == "now");
  CHECK(parsed->Has("force"));
}

TEST_CASE("ParseArgs: unknown, missing value, flag with value, repeated") {
  CHECK(ParseArgs({"--nope"}, {}).status().message() == "unknown option '--nope'");
  CHECK(ParseArgs({"--stage"}, {{"stage", true}}).status().message() == "--stage needs a value");
  CHECK(ParseArgs({"--force=yes"}, {{"force"}}).status().message() == "--force takes no value");
  CHECK(ParseArgs({"--a", "1", "--a", "2"}, {{"a", true}}).status().message() ==
        "--a is given more than once");
}

TEST_CASE("ParsePort is strict") {
  CHECK(*ParsePort("80", "--port") == 80);
  CHECK(*ParsePort("65535", "--port") == 65535);
  for (const char* bad : {"80x", "", " 80", "+80", "-1", "65536", "0", "8 0", "0x50"}) {
    auto p = ParsePort(bad, "--port");
    CHECK_FALSE(p.ok());
    CHECK(p.status().message().find("--port needs a port number") == 0);
  }
  CHECK(*ParsePort("0", "--port", true) == 0);
}

TEST_CASE("ParseHostPort: HOST:PORT and [IPv6]:PORT, nothing looser") {
  auto a = ParseHostPort("agents.example:8081", "--server");
  REQUIRE(a.ok());
  CHECK(a->host == "agents.example");
  CHECK(a->port == 8081);
  auto b = ParseHostPort("[::1]:9", "--server");
  REQUIRE(b.ok());
  CHECK(b->host == "::1");
  CHECK(b->port == 9);
  for (const char* bad : {"h:80x", "h", ":80", "::1:80", "[::1:80", "[]:80", "h:"}) {
    auto r = ParseHostPort(bad, "--server");
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.status().message().find("--server needs") == 0);
  }
}

TEST_CASE("ParseInteger names the value and its range") {
  CHECK(*ParseInteger("250", "--heartbeat-ms", 10, 1000) == 250);
  CHECK(ParseInteger("5", "--heartbeat-ms", 10, 1000).status().message() ==
        "--heartbeat-ms needs a whole number from 10 to 1000, got '5'");
  CHECK_FALSE(ParseInteger("12ms", "--heartbeat-ms", 10, 1000).ok());
}

}  // namespace reprise
