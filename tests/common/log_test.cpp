#include "common/log.h"

#include <doctest/doctest.h>

namespace reprise::log {

TEST_CASE("a log line is the level, the event and key=value fields") {
  CHECK(Format(Level::kWarn, "deployment.write-lost", {{"deployment", 7}, {"what", "audit"}}) ==
        "warn  deployment.write-lost deployment=7 what=audit");
}

TEST_CASE("values that would break the line are quoted and escaped") {
  CHECK(Format(Level::kInfo, "e", {{"msg", "two words"}}) == "info  e msg=\"two words\"");
  CHECK(Format(Level::kInfo, "e", {{"msg", "a\nb\"c\\"}}) == "info  e msg=\"a\\nb\\\"c\\\\\"");
  CHECK(Format(Level::kInfo, "e", {{"msg", std::string_view("x\x01y", 3)}}) ==
        "info  e msg=\"x\\x01y\"");
  CHECK(Format(Level::kInfo, "e", {{"k", "a=b"}, {"empty", ""}}) == "info  e k=\"a=b\" empty=\"\"");
}

TEST_CASE("events below the level are dropped") {
  SetLevel(Level::kWarn);
  CHECK_FALSE(Enabled(Level::kInfo));
  CHECK(Enabled(Level::kError));
  SetLevel(Level::kInfo);
  CHECK(Enabled(Level::kInfo));
  CHECK_FALSE(Enabled(Level::kDebug));
}

}  // namespace reprise::log
