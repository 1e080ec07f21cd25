#include "common/timezone.h"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "tests/temp_dir.h"

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

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void Write(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string BigEndian32(uint32_t v) {
  std::string s;
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  return s;
}

// A v2 TZif with one time type, no transitions and `footer` as the rule.
std::string MinimalTzif(int32_t utoff, const std::string& footer) {
  std::string header = std::string("TZif2") + std::string(15, '\0');
  for (uint32_t count : {0u, 0u, 0u, 0u, 1u, 4u}) header += BigEndian32(count);
  std::string block = BigEndian32(static_cast<uint32_t>(utoff)) + std::string("\0\0XST\0", 6);
  return header + block + header + block + "\n" + footer + "\n";
}

CivilTime Civil(int64_t y, int mo, int d, int h, int mi, int s = 0) {
  CivilTime c;
  c.year = y;
  c.month = mo;
  c.day = d;
  c.hour = h;
  c.minute = mi;
  c.second = s;
  return c;
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

TEST_CASE("UTC is built in; everything else needs tzdata") {
  TempDir empty;
  for (const char* name : {"UTC", "Etc/UTC"}) {
    auto utc = TimeZone::Load(name, empty.path() / "missing");
    REQUIRE_MESSAGE(utc.ok(), utc.status().message());
    CHECK(utc->name() == name);
    CHECK(utc->OffsetSeconds(At("2026-07-01T00:00:00Z")) == 0);
  }
  auto berlin = TimeZone::Load("Europe/Berlin", empty.path() / "missing");
  REQUIRE_FALSE(berlin.ok());
  CHECK(berlin.status().code() == Code::kNotFound);
  CHECK(berlin.status().message().find("\"Europe/Berlin\"") != std::string::npos);
  CHECK(berlin.status().message().find("install tzdata") != std::string::npos);
}

TEST_CASE("files that are not TZif are refused with the zone's name") {
  TempDir dir;
  Write(dir.path() / "Bad" / "Text", "hello, world");
  std::string berlin = ReadAll("/usr/share/zoneinfo/Europe/Berlin");
  REQUIRE(berlin.size() > 200);
  Write(dir.path() / "Bad" / "Truncated", berlin.substr(0, 200));
  Write(dir.path() / "Bad" / "NoFooter", berlin.substr(0, berlin.size() - 1));
  Write(dir.path() / "Bad" / "Rule", MinimalTzif(3600, "CET-1CEST,M13.5.0,M10.5.0/3"));
  for (const char* name : {"Bad/Text", "Bad/Truncated", "Bad/NoFooter", "Bad/Rule"}) {
    CAPTURE(name);
    auto tz = TimeZone::Load(name, dir.path());
    REQUIRE_FALSE(tz.ok());
    CHECK(tz.status().code() == Code::kInvalidArgument);
    CHECK(tz.status().message().find(name) != std::string::npos);
  }
  Write(dir.path() / "Good" / "Berlin", berlin);
  auto copy = TimeZone::Load("Good/Berlin", dir.path());
  REQUIRE_MESSAGE(copy.ok(), copy.status().message());
  CHECK(copy->OffsetSeconds(At("2026-07-01T00:00:00Z")) == 7200);
}

TEST_CASE("a version 1 TZif file (32-bit data, no footer) is read") {
  std::string bytes = ReadAll("/usr/share/zoneinfo/Europe/Berlin");
  REQUIRE(bytes.size() > 44);
  auto count = [&](int i) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = (v << 8) | static_cast<uint8_t>(bytes[20 + 4 * i + k]);
    return uint64_t{v};
  };
  uint64_t isut = count(0), isstd = count(1), leap = count(2), times = count(3), types = count(4),
           chars = count(5);
  uint64_t v1_size = 44 + times * 5 + types * 6 + chars + leap * 8 + isstd + isut;
  std::string v1 = bytes.substr(0, v1_size);
  v1[4] = '\0';
  auto tz = TimeZone::FromTzif("v1/Berlin", v1);
  REQUIRE_MESSAGE(tz.ok(), tz.status().message());
  CHECK(tz->OffsetSeconds(At("2026-03-29T00:59:59Z")) == 3600);
  CHECK(tz->OffsetSeconds(At("2026-03-29T01:00:00Z")) == 7200);
  CHECK(tz->OffsetSeconds(At("2026-10-25T01:00:00Z")) == 3600);
}

TEST_CASE("footer rules: M, J and zero-based day forms, permanent DST") {
  auto with_rule = [](const std::string& rule) {
    auto tz = TimeZone::FromTzif("Test/Rule", MinimalTzif(3600, rule));
    REQUIRE_MESSAGE(tz.ok(), tz.status().message());
    return std::move(tz).value();
  };
  // Jn never counts February 29: J60 is March 1 every year.
  TimeZone julian1 = with_rule("XST-1XDT,J60/2,J300/3");
  CHECK(julian1.OffsetSeconds(At("2028-02-29T12:00:00Z")) == 3600);
  CHECK(julian1.OffsetSeconds(At("2028-03-01T00:59:59Z")) == 3600);
  CHECK(julian1.OffsetSeconds(At("2028-03-01T01:00:00Z")) == 7200);
  // n counts from 0 and includes February 29: day 59 is February 29 in a leap year.
  TimeZone julian0 = with_rule("XST-1XDT,59/2,300/3");
  CHECK(julian0.OffsetSeconds(At("2028-02-29T01:00:00Z")) == 7200);
  CHECK(julian0.OffsetSeconds(At("2027-02-28T12:00:00Z")) == 3600);
  CHECK(julian0.OffsetSeconds(At("2027-03-01T01:00:00Z")) == 7200);
  // Angle-bracket names, minutes in offsets, v3 hours beyond 24.
  TimeZone odd = with_rule("<+0330>-3:30<+0430>,J79/24,J263/24");
  CHECK(odd.OffsetSeconds(At("2027-01-01T00:00:00Z")) == 12600);
  CHECK(odd.OffsetSeconds(At("2027-06-01T00:00:00Z")) == 16200);
  // Permanent daylight time, as zic writes it.
  TimeZone permanent = with_rule("EST5EDT,0/0,J365/25");
  for (const char* t : {"2030-01-01T04:59:59Z", "2030-01-01T05:00:00Z", "2030-07-01T00:00:00Z",
                        "2030-12-31T23:00:00Z"}) {
    CAPTURE(t);
    CHECK(permanent.OffsetSeconds(At(t)) == -14400);
  }
  CHECK_FALSE(permanent.NextTransition(At("2030-01-01T00:00:00Z")).has_value());

  auto rule = TimeZone::ParsePosixRule("CET-1CEST,M3.5.0,M10.5.0/3");
  REQUIRE(rule.ok());
  CHECK(rule->std_offset == 3600);
  CHECK(rule->dst_offset == 7200);
  CHECK(rule->start.month == 3);
  CHECK(rule->start.week == 5);
  CHECK(rule->end.time_seconds == 3 * 3600);
  for (const char* bad :
       {"", "CET", "C-1", "CET-1CEST,M3.5.0", "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J300", "CET-1CEST,M3.5.0,M10.5.0x", "<+03-3"}) {
    CAPTURE(bad);
    CHECK_FALSE(TimeZone::ParsePosixRule(bad).ok());
  }
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
