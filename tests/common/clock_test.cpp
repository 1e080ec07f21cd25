#include "common/clock.h"

#include <doctest/doctest.h>

namespace reprise {

TEST_CASE("RFC 3339 with offset is stored as UTC") {
  auto t = ParseRfc3339("2026-11-23T18:30:00+01:00");
  REQUIRE(t.has_value());
  CHECK(FormatRfc3339Utc(*t) == "2026-11-23T17:30:00.000Z");
  auto z = ParseRfc3339("2026-03-29T01:00:00.25Z");
  REQUIRE(z.has_value());
  CHECK(FormatRfc3339Utc(*z) == "2026-03-29T01:00:00.250Z");
  CHECK(ToUnixMillis(*ParseRfc3339("1970-01-01T00:00:00Z")) == 0);
  CHECK(ToUnixMillis(*ParseRfc3339("2000-02-29T00:00:00-00:30")) == 951784200000);
}

TEST_CASE("malformed RFC 3339 is refused") {
  for (const char* bad :
       {"", "2026-11-23", "2026-11-23T18:30:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-23T18:30:00+1", "2026-11-23T18:30:00Zjunk", "tomorrow"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseRfc3339(bad).has_value());
  }
}

TEST_CASE("fake clock advances only when told") {
  FakeClock clock(FromUnixMillis(1000));
  CHECK(ToUnixMillis(clock.Now()) == 1000);
  clock.Advance(std::chrono::milliseconds(1500));
  CHECK(ToUnixMillis(clock.Now()) == 2500);
}

}  // namespace reprise
