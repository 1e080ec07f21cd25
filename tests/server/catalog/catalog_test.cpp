#include "server/catalog/catalog.h"

#include <doctest/doctest.h>

namespace reprise {

TEST_CASE("names and release numbers") {
  CHECK(IsValidName("shop"));
  CHECK(IsValidName("int-web.eu_1"));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName(".hidden"));
  CHECK_FALSE(IsValidName("-x"));
  CHECK_FALSE(IsValidName("a/b"));
  CHECK_FALSE(IsValidName("a b"));
  CHECK_FALSE(IsValidName(std::string(65, 'a')));
  CHECK(IsValidReleaseNumber("1"));
  CHECK(IsValidReleaseNumber("1.0"));
  CHECK(IsValidReleaseNumber("1.0.2"));
  CHECK_FALSE(IsValidReleaseNumber(""));
  CHECK_FALSE(IsValidReleaseNumber("1."));
  CHECK_FALSE(IsValidReleaseNumber(".1"));
  CHECK_FALSE(IsValidReleaseNumber("1..2"));
  CHECK_FALSE(IsValidReleaseNumber("v1"));
  CHECK_FALSE(IsValidReleaseNumber("1234567"));
}

TEST_CASE("variables JSON: plain and sensitive values round-trip") {
  auto vars = VariablesFromJson(R"({"A":"1","N":5,"S":{"value":"x","sensitive":true}})");
  REQUIRE(vars.ok());
  CHECK(vars->at("A").value == "1");
  CHECK(vars->at("N").value == "5");
  CHECK(vars->at("S").sensitive);
  auto again = VariablesFromJson(VariablesToJson(*vars));
  REQUIRE(again.ok());
  CHECK(*again == *vars);
}

TEST_CASE("variables JSON: bad input names what is wrong") {
  struct Case {
    const char* json;
    const char* expect;
  };
  for (auto c : {Case{"[]", "object"}, Case{R"({"9a":"x"})", "9a"},
                 Case{R"({"A":{"value":1}})", "value"}, Case{R"({"A":{"valu":"x"}})", "valu"},
                 Case{R"({"A":["x"]})", "A"}, Case{R"({"A":{"value":"x","sensitive":"yes"}})",
                                                   "sensitive"},
                 Case{R"({"ReleaseNumber":"1"})", "built in"}}) {
    CAPTURE(c.json);
    auto r = VariablesFromJson(c.json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find(c.expect) != std::string::npos);
  }
}

}  // namespace reprise
