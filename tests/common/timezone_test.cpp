#include "common/timezone.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace reprise {
namespace {

TimePoint At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  REQUIRE_MESSAGE(t.has_value(), rfc3339);
  return *t;
}

int Offset(const char* zone, const char* rfc3339) {
  auto tz = TimeZone::Get(zone);
  REQUIRE_MESSAGE(tz.ok(), tz.status().message());
  return (*tz)->OffsetSeconds(At(rfc3339));
}

CivilTime Civil(int64_t y, int mo, int d, int h, int mi, int s = 0) {
  return {.year = y, .month = mo, .day = d, .hour = h, .minute = mi, .second = s};
}

}  // namespace

TEST_CASE("known offsets across the 2026 DST changes, both directions") {
  // Europe/Berlin: CET -> CEST at 01:00Z on 2026-03-29, back at 01:00Z on 2026-10-25.
  CHECK(Offset("Europe/Berlin", "2026-01-15T12:00:00Z") == 3600);
  CHECK(Offset("Europe/Berlin", "2026-03-29T00:59:59Z") == 3600);
  CHECK(Offset("Europe/Berlin", "2026-03-29T01:00:00Z") == 7200);
  CHECK(Offset("Europe/Berlin", "2026-10-25T00:59:59Z") == 7200);
  CHECK(Offset("Europe/Berlin", "2026-10-25T01:00:00Z") == 3600);
  // America/New_York: 2026-03-08 02:00 EST and 2026-11-01 02:00 EDT.
  CHECK(Offset("America/New_York", "2026-03-08T06:59:59Z") == -18000);
  CHECK(Offset("America/New_York", "2026-03-08T07:00:00Z") == -14400);
  CHECK(Offset("America/New_York", "2026-11-01T05:59:59Z") == -14400);
  CHECK(Offset("America/New_York", "2026-11-01T06:00:00Z") == -18000);
  // Australia/Sydney, southern hemisphere: summer time ends in April, starts in October.
  CHECK(Offset("Australia/Sydney", "2026-01-15T00:00:00Z") == 39600);
  CHECK(Offset("Australia/Sydney", "2026-04-04T15:59:59Z") == 39600);
  CHECK(Offset("Australia/Sydney", "2026-04-04T16:00:00Z") == 36000);
  CHECK(Offset("Australia/Sydney", "2026-10-03T15:59:59Z") == 36000);
  CHECK(Offset("Australia/Sydney", "2026-10-03T16:00:00Z") == 39600);
  // Asia/Kolkata: +05:30 all year.
  CHECK(Offset("Asia/Kolkata", "2026-01-15T00:00:00Z") == 19800);
  CHECK(Offset("Asia/Kolkata", "2026-07-15T00:00:00Z") == 19800);
  CHECK(Offset("UTC", "2026-07-15T00:00:00Z") == 0);
  CHECK(Offset("Etc/UTC", "2026-07-15T00:00:00Z") == 0);
}

TEST_CASE("far-future instants follow the zone's footer rule") {
  // Past the transitions listed in the file, the POSIX TZ rule applies.
  CHECK(Offset("Europe/Berlin", "2100-03-28T00:59:59Z") == 3600);
  CHECK(Offset("Europe/Berlin", "2100-03-28T01:00:00Z") == 7200);
  CHECK(Offset("Europe/Berlin", "2100-10-31T00:59:59Z") == 7200);
  CHECK(Offset("Europe/Berlin", "2100-10-31T01:00:00Z") == 3600);
  CHECK(Offset("America/New_York", "2200-07-01T00:00:00Z") == -14400);
  CHECK(Offset("Australia/Sydney", "2200-01-01T00:00:00Z") == 39600);
  CHECK(Offset("Australia/Sydney", "2200-07-01T00:00:00Z") == 36000);
  CHECK(Offset("Asia/Kolkata", "2200-07-01T00:00:00Z") == 19800);

  auto berlin = TimeZone::Get("Europe/Berlin");
  REQUIRE(berlin.ok());
  auto next = (*berlin)->NextTransition(At("2099-12-31T00:00:00Z"));
  REQUIRE(next.has_value());
  CHECK(FormatRfc3339Utc(*next) == "2100-03-28T01:00:00.000Z");
}

TEST_CASE("next transition") {
  auto berlin = TimeZone::Get("Europe/Berlin");
  REQUIRE(berlin.ok());
  auto spring = (*berlin)->NextTransition(At("2026-01-01T00:00:00Z"));
  REQUIRE(spring.has_value());
  CHECK(FormatRfc3339Utc(*spring) == "2026-03-29T01:00:00.000Z");
  auto autumn = (*berlin)->NextTransition(*spring);  // strictly after
  REQUIRE(autumn.has_value());
  CHECK(FormatRfc3339Utc(*autumn) == "2026-10-25T01:00:00.000Z");
  auto kolkata = TimeZone::Get("Asia/Kolkata");
  REQUIRE(kolkata.ok());
  CHECK_FALSE((*kolkata)->NextTransition(At("2026-01-01T00:00:00Z")).has_value());
  CHECK_FALSE(TimeZone::Utc()->NextTransition(At("2026-01-01T00:00:00Z")).has_value());
}

TEST_CASE("local civil time, and back across gaps and overlaps") {
  auto berlin = *TimeZone::Get("Europe/Berlin");
  CivilTime local = berlin->ToLocal(At("2026-10-25T01:30:00Z"));
  CHECK(local == CivilTime{2026, 10, 25, 0, 2, 30, 0});  // 02:30 CET, a Sunday
  CHECK(berlin->ToLocal(At("2026-10-25T00:30:00Z")) == CivilTime{2026, 10, 25, 0, 2, 30, 0});
  CHECK((*TimeZone::Get("Asia/Kolkata"))->ToLocal(At("2026-06-01T20:00:00Z")) ==
        CivilTime{2026, 6, 2, 2, 1, 30, 0});
  CHECK((*TimeZone::Get("America/New_York"))->ToLocal(At("2026-01-01T03:00:00.750Z")) ==
        CivilTime{2025, 12, 31, 3, 22, 0, 0});

  auto from_local = [&](const CivilTime& c) { return FormatRfc3339Utc(berlin->FromLocal(c)); };
  CHECK(from_local(Civil(2026, 7, 1, 12, 0)) == "2026-07-01T10:00:00.000Z");
  // 02:30 is skipped on 2026-03-29: the clock reaches it at the jump.
  CHECK(from_local(Civil(2026, 3, 29, 2, 30)) == "2026-03-29T01:00:00.000Z");
  CHECK(from_local(Civil(2026, 3, 29, 3, 0)) == "2026-03-29T01:00:00.000Z");
  CHECK(from_local(Civil(2026, 3, 29, 1, 59, 59)) == "2026-03-29T00:59:59.000Z");
  // 02:30 happens twice on 2026-10-25: the first time counts.
  CHECK(from_local(Civil(2026, 10, 25, 2, 30)) == "2026-10-25T00:30:00.000Z");
  CHECK(from_local(Civil(2026, 10, 25, 3, 0)) == "2026-10-25T02:00:00.000Z");
  // Sydney's autumn overlap is in April.
  auto sydney = *TimeZone::Get("Australia/Sydney");
  CHECK(FormatRfc3339Utc(sydney->FromLocal(Civil(2026, 4, 5, 2, 30))) ==
        "2026-04-04T15:30:00.000Z");
}

TEST_CASE("calendar helpers") {
  CHECK(DaysFromCivil(1970, 1, 1) == 0);
  CHECK(DaysFromCivil(2000, 3, 1) - DaysFromCivil(2000, 2, 28) == 2);
  CHECK(DaysFromCivil(1900, 3, 1) - DaysFromCivil(1900, 2, 28) == 1);
  CHECK(CivilFromSeconds(-1) == CivilTime{1969, 12, 31, 3, 23, 59, 59});
  CHECK(CivilFromSeconds(951782400) == CivilTime{2000, 2, 29, 2, 0, 0, 0});
  CHECK(SecondsFromCivil(Civil(2026, 13, 1, 0, 0)) == SecondsFromCivil(Civil(2027, 1, 1, 0, 0)));
  CHECK(SecondsFromCivil(Civil(2026, 3, 32, 0, 0)) == SecondsFromCivil(Civil(2026, 4, 1, 0, 0)));
  CHECK(FloorSeconds(FromUnixMillis(-1)) == -1);
  for (int64_t s : {int64_t{-5000000000}, int64_t{0}, int64_t{1795000000}, int64_t{7258118400}}) {
    CAPTURE(s);
    CHECK(SecondsFromCivil(CivilFromSeconds(s)) == s);
  }
}

TEST_CASE("zone names are validated strictly") {
  for (const char* bad : {"../etc/passwd", "/etc/passwd", "Europe/../../etc/passwd", "",
                          "Europe//Berlin", "Europe/Berlin/", "Europe/.hidden", "Europe/Ber lin",
                          "Europe\\Berlin", "Europe/Berlin\n"}) {
    CAPTURE(bad);
    CHECK_FALSE(TimeZone::IsValidName(bad));
    auto tz = TimeZone::Load(bad);
    REQUIRE_FALSE(tz.ok());
    CHECK(tz.status().code() == Code::kInvalidArgument);
  }
  auto traversal = TimeZone::Get("../etc/passwd");
  REQUIRE_FALSE(traversal.ok());
  CHECK(traversal.status().message().find("\"../etc/passwd\"") != std::string::npos);
  CHECK_FALSE(TimeZone::IsValidName(std::string(65, 'a')));
  CHECK(TimeZone::IsValidName("America/Argentina/Buenos_Aires"));
  CHECK(TimeZone::IsValidName("Etc/GMT+5"));

  auto nope = TimeZone::Get("Nope/Zone");
  REQUIRE_FALSE(nope.ok());
  CHECK(nope.status().code() == Code::kNotFound);
  CHECK(nope.status().message() == "unknown time zone \"Nope/Zone\"");
  auto dir = TimeZone::Load("Europe");  // a directory, not a zone
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.status().code() == Code::kNotFound);
}

TEST_CASE("UTC is built in; links and leap-second zones") {
  for (const char* name : {"UTC", "Etc/UTC", "GMT", "Etc/GMT"}) {
    auto utc = TimeZone::Load(name);
    REQUIRE_MESSAGE(utc.ok(), utc.status().message());
    CHECK(utc->name() == name);
    CHECK(utc->OffsetSeconds(At("2026-07-01T00:00:00Z")) == 0);
    CHECK_FALSE(utc->NextTransition(At("2026-07-01T00:00:00Z")).has_value());
  }
  // A link name loads its target's data under the name it was asked for.
  auto calcutta = TimeZone::Load("Asia/Calcutta");
  REQUIRE_MESSAGE(calcutta.ok(), calcutta.status().message());
  CHECK(calcutta->name() == "Asia/Calcutta");
  CHECK(calcutta->OffsetSeconds(At("2026-07-01T00:00:00Z")) == 19800);
  auto leap = TimeZone::Load("right/Europe/Berlin");
  REQUIRE_FALSE(leap.ok());
  CHECK(leap.status().code() == Code::kInvalidArgument);
  CHECK(leap.status().message().find("\"right/Europe/Berlin\"") != std::string::npos);
}

TEST_CASE("the cache returns one shared zone and is safe to use from threads") {
  auto a = TimeZone::Get("Europe/Berlin");
  auto b = TimeZone::Get("Europe/Berlin");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->get() == b->get());
  CHECK((*a)->name() == "Europe/Berlin");

  const char* names[] = {"Europe/Paris", "America/Chicago", "Asia/Tokyo", "Europe/Berlin"};
  const TimePoint july = At("2026-07-01T00:00:00Z");
  std::vector<int> offsets(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {  // no doctest assertions off the main thread
      auto tz = TimeZone::Get(names[i % 4]);
      offsets[i] = tz.ok() ? (*tz)->OffsetSeconds(july) : -1;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(offsets == std::vector<int>{7200, -18000, 32400, 7200, 7200, -18000, 32400, 7200});
}

}  // namespace reprise
