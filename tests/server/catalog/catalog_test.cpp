#include "server/catalog/catalog.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/catalog/artifact_settings.h"

namespace reprise {

TEST_CASE("names and release numbers") {
  for (const std::string& ok : std::vector<std::string>{"shop", "int-web.eu_1"})
    CHECK_MESSAGE(IsValidName(ok), ok);
  for (const std::string& bad :
       std::vector<std::string>{"", ".hidden", "-x", "a/b", "a b", std::string(65, 'a')})
    CHECK_MESSAGE(!IsValidName(bad), bad);
  for (const std::string& ok : std::vector<std::string>{"1", "1.0", "1.0.2"})
    CHECK_MESSAGE(IsValidReleaseNumber(ok), ok);
  for (const std::string& bad : std::vector<std::string>{"", "1.", ".1", "1..2", "v1", "1234567"})
    CHECK_MESSAGE(!IsValidReleaseNumber(bad), bad);
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
  for (auto c :
       {Case{"[]", "object"}, Case{R"({"9a":"x"})", "9a"}, Case{R"({"A":{"value":1}})", "value"},
        Case{R"({"A":{"valu":"x"}})", "valu"}, Case{R"({"A":["x"]})", "A"},
        Case{R"({"A":{"value":"x","sensitive":"yes"}})", "sensitive"},
        Case{R"({"ReleaseNumber":"1"})", "built in"}}) {
    CAPTURE(c.json);
    auto r = VariablesFromJson(c.json);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find(c.expect) != std::string::npos);
  }
}

TEST_CASE("artifact flags set the archive limits, the body limit and the retention defaults") {
  ArchiveLimits limits;
  uint64_t max_bytes = 0;
  RetentionPolicy retention;
  auto apply = [&](const char* flag, const char* value) {
    return ApplyArtifactFlag(flag, value, limits, max_bytes, retention);
  };
  CHECK(apply("--artifact-max-bytes", "2G").ok());
  CHECK(max_bytes == (2ULL << 30));
  CHECK(apply("--artifact-max-entries", "50000").ok());
  CHECK(limits.max_entries == 50000);
  CHECK(apply("--artifact-max-total-bytes", "512m").ok());
  CHECK(limits.max_total_bytes == (512ULL << 20));
  CHECK(apply("--artifact-max-entry-bytes", "4096").ok());
  CHECK(limits.max_entry_bytes == 4096);
  CHECK(apply("--artifact-max-ratio", "50.5").ok());
  CHECK(limits.max_compression_ratio == 50.5);
  CHECK(apply("--artifact-ratio-min-bytes", "0").ok());
  CHECK(limits.ratio_check_min_bytes == 0);
  CHECK(apply("--retention-keep-builds", "3").ok());
  CHECK(apply("--retention-keep-days", "0").ok());
  CHECK(apply("--retention-keep-candidates", "7").ok());
  CHECK(retention.keep_builds_per_release == 3);
  CHECK(retention.keep_days == 0);
  CHECK(retention.keep_rollback_candidates == 7);
  CHECK(IsArtifactFlag("--artifact-max-entries"));
  CHECK_FALSE(IsArtifactFlag("--demo"));

  struct Bad {
    const char* flag;
    const char* value;
  };
  for (auto bad :
       {Bad{"--artifact-max-entries", "0"}, Bad{"--artifact-max-entries", "-1"},
        Bad{"--artifact-max-bytes", "1X"}, Bad{"--artifact-max-bytes", "99999999999T"},
        Bad{"--artifact-max-total-bytes", ""}, Bad{"--artifact-max-ratio", "0.9"},
        Bad{"--artifact-max-ratio", "inf"}, Bad{"--artifact-max-ratio", "2x"},
        Bad{"--retention-keep-days", "1000001"}, Bad{"--retention-keep-candidates", "1001"},
        Bad{"--retention-keep-builds", nullptr}}) {
    CAPTURE(bad.flag);
    CAPTURE(bad.value ? bad.value : "(none)");
    Status st = apply(bad.flag, bad.value);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(bad.flag) != std::string::npos);
  }
  CHECK(ParseByteSize("64M").value() == (64ULL << 20));
  CHECK(ParseByteSize("1t").value() == (1ULL << 40));
  CHECK_FALSE(ParseByteSize("M").ok());
}

}  // namespace reprise
