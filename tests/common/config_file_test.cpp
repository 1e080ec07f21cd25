#include "common/config_file.h"

#include <doctest/doctest.h>

namespace reprise {

namespace {

std::vector<OptionSpec> Known() {
  OptionSpec config{"config", true};
  config.command_line_only = true;
  OptionSpec token{"token", true};
  token.secret = true;
  OptionSpec data{"data", true};
  data.default_value = "./var";
  return {config, data, {"http", true}, {"demo"}, token, {"tag", true, true}};
}

}  // namespace

TEST_CASE("a configuration file sets options and switches by flag name") {
  auto parsed = ParseConfigText("data: /var/lib/reprise\nhttp: 0.0.0.0:8080\ndemo: true\n",
                                "server.yaml", Known());
  REQUIRE(parsed.ok());
  CHECK(parsed->Value("data") == "/var/lib/reprise");
  CHECK(parsed->Value("http") == "0.0.0.0:8080");
  CHECK(parsed->Has("demo"));
  auto off = ParseConfigText("demo: false\n", "server.yaml", Known());
  REQUIRE(off.ok());
  CHECK_FALSE(off->Has("demo"));
}

TEST_CASE("configuration errors name the file, the line and the key") {
  CHECK(ParseConfigText("data: /x\nhtp: 1\n", "server.yaml", Known()).status().message() ==
        "server.yaml:2:1: unknown key 'htp'");
  CHECK(ParseConfigText("demo: maybe\n", "server.yaml", Known()).status().message() ==
        "server.yaml:1:1: 'demo' is a switch: true or false");
  CHECK(ParseConfigText("http: [a, b]\n", "server.yaml", Known()).status().message() ==
        "server.yaml:1:1: 'http' takes one value");
  CHECK(ParseConfigText("config: /etc/x\n", "server.yaml", Known()).status().message() ==
        "server.yaml:1:1: unknown key 'config'");
  CHECK(ParseConfigText("data: [\n", "server.yaml", Known())
            .status()
            .message()
            .find("server.yaml:") == 0);
  CHECK(ParseConfigText("- a\n", "server.yaml", Known()).status().message() ==
        "server.yaml: a configuration file is a map of settings (key: value)");
  CHECK(ParseConfigText("", "server.yaml", Known()).ok());
}

TEST_CASE("the command line overrides the file key by key") {
  auto file = ParseConfigText("data: /from-file\nhttp: 1.2.3.4:80\n", "f", Known());
  auto command_line = ParseArgs({"--data", "/from-flag"}, Known());
  REQUIRE(file.ok());
  REQUIRE(command_line.ok());
  ParsedArgs merged = MergeArgs(*file, *command_line);
  CHECK(merged.Value("data") == "/from-flag");
  CHECK(merged.Value("http") == "1.2.3.4:80");
}

TEST_CASE("the printed configuration masks secrets and shows defaults") {
  auto parsed = ParseConfigText("token: s3cret\nhttp: \"1.2.3.4:80\"\ntag: [a, b]\n", "f", Known());
  REQUIRE(parsed.ok());
  std::string text = PrintConfig(*parsed, Known());
  CHECK(text.find("s3cret") == std::string::npos);
  CHECK(text.find("token: \"********\"") != std::string::npos);
  CHECK(text.find("# data: ./var") != std::string::npos);
  CHECK(text.find("http: \"1.2.3.4:80\"") != std::string::npos);
  CHECK(text.find("tag:\n  - \"a\"\n  - \"b\"\n") != std::string::npos);
  auto again = ParseConfigText(text, "printed", Known());
  REQUIRE(again.ok());
  CHECK(again->Value("http") == "1.2.3.4:80");
}

}  // namespace reprise
