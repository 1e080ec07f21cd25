// Deployment windows in named time zones, across DST changes, driven by a
// fake clock; NextOpening; window and time zone errors in specs.
#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "planner/app_spec.h"
#include "tests/planner/parse_errors.h"

namespace reprise {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TimePoint At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  REQUIRE_MESSAGE(t.has_value(), rfc3339);
  return *t;
}

DeploymentWindow Window(const char* text) {
  auto w = ParseDeploymentWindow(text);
  REQUIRE_MESSAGE(w.ok(), w.status().message());
  return std::move(w).value();
}

std::string Utc(std::optional<TimePoint> t) { return t ? FormatRfc3339Utc(*t) : "never"; }

// Walks a fake clock minute by minute and records when the window is open.
struct OpenSpan {
  int minutes_open = 0;
  std::string first_open;
  std::string last_open;
  friend bool operator==(const OpenSpan&, const OpenSpan&) = default;
};
std::ostream& operator<<(std::ostream& os, const OpenSpan& span) {
  return os << span.minutes_open << " min open, " << span.first_open << " to " << span.last_open;
}
OpenSpan Walk(const DeploymentWindow& w, const char* from, int minutes_to_walk) {
  FakeClock clock(At(from));
  OpenSpan span;
  for (int i = 0; i < minutes_to_walk; ++i, clock.Advance(minutes(1))) {
    if (!w.Contains(clock.Now())) continue;
    ++span.minutes_open;
    if (span.first_open.empty()) span.first_open = FormatRfc3339Utc(clock.Now());
    span.last_open = FormatRfc3339Utc(clock.Now());
  }
  return span;
}

constexpr const char* kSpec = R"(pipeline:
  - stage: Production
    environment: Production
    targets: [prod-web]
    plan: p
    gates:
      timezone: Europe/Berlin
      window: ["Mon-Fri 22:00-06:00", "Sat 10:00-12:00 America/New_York"]
plans:
  p: "- log: hi\n"
)";

}  // namespace

TEST_CASE("a Berlin window across the spring-forward and fall-back nights (fake clock)") {
  DeploymentWindow w = Window("daily 01:00-03:00 Europe/Berlin");
  CHECK(w.zone_name() == "Europe/Berlin");
  struct Night {
    const char* from;  // walked for 8 hours
    OpenSpan open;
  };
  const Night nights[] = {
      // An ordinary night: 01:00-03:00 CET is 00:00-02:00Z.
      {"2026-03-21T22:00:00Z", {120, "2026-03-22T00:00:00.000Z", "2026-03-22T01:59:00.000Z"}},
      // 2026-03-29: at 02:00 CET the clock jumps to 03:00 CEST, which closes
      // the window after one real hour.
      {"2026-03-28T22:00:00Z", {60, "2026-03-29T00:00:00.000Z", "2026-03-29T00:59:00.000Z"}},
      // The night after: 01:00-03:00 CEST is 23:00-01:00Z.
      {"2026-03-29T20:00:00Z", {120, "2026-03-29T23:00:00.000Z", "2026-03-30T00:59:00.000Z"}},
      // 2026-10-25: 01:00 CEST (23:00Z) until 03:00 CET (02:00Z); the
      // repeated 02:00-03:00 is inside both times.
      {"2026-10-24T20:00:00Z", {180, "2026-10-24T23:00:00.000Z", "2026-10-25T01:59:00.000Z"}},
      // The night after: 01:00-03:00 CET is 00:00-02:00Z.
      {"2026-10-25T20:00:00Z", {120, "2026-10-26T00:00:00.000Z", "2026-10-26T01:59:00.000Z"}},
  };
  for (const Night& night : nights) {
    const std::string from = night.from;
    CAPTURE(from);
    CHECK(Walk(w, night.from, 8 * 60) == night.open);
  }
}

TEST_CASE("windows inside the skipped or repeated hour") {
  DeploymentWindow w = Window("daily 02:00-02:30 Europe/Berlin");
  // 02:00-02:30 never shows on the clock on 2026-03-29: no window that night.
  CHECK(Walk(w, "2026-03-28T22:00:00Z", 8 * 60).minutes_open == 0);
  CHECK(Utc(w.NextOpening(At("2026-03-28T22:00:00Z"))) == "2026-03-30T00:00:00.000Z");
  // On 2026-10-25 it shows twice; only the first pass (CEST) counts.
  CHECK(Walk(w, "2026-10-24T22:00:00Z", 8 * 60) ==
        OpenSpan{30, "2026-10-25T00:00:00.000Z", "2026-10-25T00:29:00.000Z"});
  CHECK_FALSE(w.Contains(At("2026-10-25T01:15:00Z")));  // 02:15 CET, second pass

  // A window that ends inside the gap closes at the jump.
  DeploymentWindow ny = Window("Sun 01:30-02:30 America/New_York");
  CHECK(Walk(ny, "2026-03-08T04:00:00Z", 6 * 60) ==
        OpenSpan{30, "2026-03-08T06:30:00.000Z", "2026-03-08T06:59:00.000Z"});

  // A window that wraps past midnight over the fall-back: 23:00 CEST to 03:00 CET.
  DeploymentWindow night = Window("Sat 23:00-03:00 Europe/Berlin");
  CHECK(Walk(night, "2026-10-24T18:00:00Z", 10 * 60) ==
        OpenSpan{5 * 60, "2026-10-24T21:00:00.000Z", "2026-10-25T01:59:00.000Z"});
}

TEST_CASE("southern hemisphere and half-hour zones") {
  // Sydney leaves summer time on 2026-04-05 at 03:00 AEDT (16:00Z the day before).
  DeploymentWindow sydney = Window("Sun 02:00-04:00 Australia/Sydney");
  CHECK(Walk(sydney, "2026-04-04T12:00:00Z", 8 * 60) ==
        OpenSpan{3 * 60, "2026-04-04T15:00:00.000Z", "2026-04-04T17:59:00.000Z"});
  DeploymentWindow kolkata = Window("Mon-Fri 09:00-17:30 Asia/Kolkata");
  CHECK(kolkata.Contains(At("2026-11-23T03:30:00Z")));  // Monday 09:00 IST
  CHECK_FALSE(kolkata.Contains(At("2026-11-23T03:29:59Z")));
  CHECK(kolkata.Contains(At("2026-11-23T11:59:59Z")));
  CHECK_FALSE(kolkata.Contains(At("2026-11-23T12:00:00Z")));
}

TEST_CASE("NextOpening says when a waiting deployment may start") {
  DeploymentWindow w = Window("Mon-Fri 22:00-06:00 Europe/Berlin");
  // Saturday noon (2026-03-28): Friday's window closed at 06:00 CET; next is
  // Monday 22:00, after the switch to CEST.
  CHECK(Utc(w.NextOpening(At("2026-03-28T12:00:00Z"))) == "2026-03-30T20:00:00.000Z");
  // Inside a window: now, to the sub-second.
  TimePoint inside = At("2026-03-31T21:00:00.250Z");
  REQUIRE(w.NextOpening(inside).has_value());
  CHECK(*w.NextOpening(inside) == inside);
  // Friday's window runs into Saturday morning.
  CHECK(Utc(w.NextOpening(At("2026-11-28T04:00:00Z"))) == "2026-11-28T04:00:00.000Z");
  CHECK(Utc(w.NextOpening(At("2026-11-28T05:00:00Z"))) == "2026-11-30T21:00:00.000Z");

  // UTC windows behave as before.
  DeploymentWindow utc = Window("Sat,Sun 08:00-12:00");
  CHECK(utc.zone_name() == "UTC");
  CHECK(Utc(utc.NextOpening(At("2026-11-23T12:00:00Z"))) == "2026-11-28T08:00:00.000Z");
  CHECK(Utc(utc.NextOpening(At("2026-11-29T11:59:59Z"))) == "2026-11-29T11:59:59.000Z");
  CHECK(Utc(utc.NextOpening(At("2026-11-29T12:00:00Z"))) == "2026-12-05T08:00:00.000Z");

  DeploymentWindow never;  // no days
  CHECK_FALSE(never.NextOpening(At("2026-11-23T12:00:00Z")).has_value());
}

TEST_CASE("NextOpening agrees with Contains around DST changes") {
  const char* texts[] = {
      "daily 01:00-03:00 Europe/Berlin",      "Mon-Fri 22:00-06:00 Europe/Berlin",
      "daily 02:00-02:30 Europe/Berlin",      "Sun 00:30-02:30 America/New_York",
      "Sat,Sun 23:30-02:15 Australia/Sydney", "Wed 12:00-24:00 Asia/Kolkata"};
  const char* periods[][2] = {{"2026-03-01T00:00:00Z", "2026-04-12T00:00:00Z"},
                              {"2026-10-01T00:00:00Z", "2026-11-10T00:00:00Z"}};
  for (const char* text : texts) {
    DeploymentWindow w = Window(text);
    for (const auto& period : periods) {
      for (TimePoint t = At(period[0]); t < At(period[1]); t += minutes(37)) {
        std::optional<TimePoint> next = w.NextOpening(t);
        INFO(text << " at " << FormatRfc3339Utc(t) << " next " << Utc(next));
        REQUIRE(next.has_value());
        CHECK(*next >= t);
        CHECK(w.Contains(*next));
        CHECK(w.Contains(t) == (*next == t));
        if (*next > t) CHECK_FALSE(w.Contains(*next - seconds(1)));
        CHECK(*next - t < std::chrono::hours(24 * 8));
      }
    }
  }
}

TEST_CASE("gates: a stage time zone, a window's own zone, and the JSON round trip") {
  auto spec = ParseAppSpec(kSpec, "s.yaml");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  const GateSpec& gates = spec->pipeline[0].gates;
  CHECK(gates.timezone == "Europe/Berlin");
  REQUIRE(gates.windows.size() == 2);
  CHECK(gates.windows[0].zone_name() == "Europe/Berlin");
  CHECK(gates.windows[0].text == "Mon-Fri 22:00-06:00");
  CHECK(gates.windows[1].zone_name() == "America/New_York");

  // Saturday 2026-03-28: Berlin's Friday window closed at 05:00Z; New York's
  // Saturday window is 10:00-12:00 EDT = 14:00-16:00Z.
  CHECK_FALSE(gates.InWindow(At("2026-03-28T12:00:00Z")));
  CHECK(Utc(gates.NextWindowOpening(At("2026-03-28T12:00:00Z"))) == "2026-03-28T14:00:00.000Z");
  CHECK(gates.InWindow(At("2026-03-28T14:30:00Z")));
  CHECK(Utc(gates.NextWindowOpening(At("2026-03-28T16:00:00Z"))) == "2026-03-30T20:00:00.000Z");
  GateSpec none;
  CHECK(none.InWindow(At("2026-03-28T12:00:00Z")));
  CHECK(Utc(none.NextWindowOpening(At("2026-03-28T12:00:00Z"))) == "2026-03-28T12:00:00.000Z");

  std::string json = AppSpecToJson(*spec);
  CHECK(json.find(R"("timezone":"Europe/Berlin")") != std::string::npos);
  CHECK(json.find(R"("Sat 10:00-12:00 America/New_York")") != std::string::npos);
  auto again = ParseAppSpec(json, "stored.json");
  REQUIRE_MESSAGE(again.ok(), again.status().message());
  CHECK(AppSpecToJson(*again) == json);
  const GateSpec& gates2 = again->pipeline[0].gates;
  REQUIRE(gates2.windows.size() == 2);
  CHECK(gates2.windows[0].zone_name() == "Europe/Berlin");
  CHECK(gates2.windows[1].zone_name() == "America/New_York");
  CHECK(Utc(gates2.NextWindowOpening(At("2026-03-28T16:00:00Z"))) == "2026-03-30T20:00:00.000Z");

  // Without a stage time zone, windows are UTC and the JSON says so.
  auto utc = ParseAppSpec(Replace(kSpec, "      timezone: Europe/Berlin\n", ""), "s.yaml");
  REQUIRE_MESSAGE(utc.ok(), utc.status().message());
  CHECK(utc->pipeline[0].gates.windows[0].zone_name() == "UTC");
  CHECK(AppSpecToJson(*utc).find(R"("timezone":"UTC")") != std::string::npos);
}

TEST_CASE("time zone errors in specs name the zone and its position") {
  CheckSpecEdits(
      kSpec, "s.yaml",
      {
          {"timezone: Europe/Berlin", "timezone: Nope/Zone",
           "s.yaml:7:17: 'timezone' in gates: unknown time zone \"Nope/Zone\""},
          {"timezone: Europe/Berlin", "timezone: ../etc/passwd",
           "s.yaml:7:17: 'timezone' in gates: invalid time zone name \"../etc/passwd\" (expected "
           "an "
           "IANA name such as \"Europe/Berlin\")"},
          {"timezone: Europe/Berlin", "timezone: [Europe/Berlin]",
           "s.yaml:7:17: 'timezone' in gates must be a string"},
          {"America/New_York", "Mars/Olympus",
           "s.yaml:8:39: 'window' in gates: bad deployment window \"Sat 10:00-12:00 "
           "Mars/Olympus\": unknown time zone \"Mars/Olympus\""},
          {"America/New_York", "America/New_York extra",
           "s.yaml:8:39: 'window' in gates: bad deployment window \"Sat 10:00-12:00 "
           "America/New_York extra\": too many parts (expected e.g. \"Mon-Fri 22:00-06:00\" or "
           "\"daily 01:00-05:00 Europe/Berlin\"; UTC unless a time zone is named)"},
          {"timezone:", "time_zone:",
           "s.yaml:7:7: unknown key 'time_zone' in gates (allowed: approvals, window, timezone, "
           "allow_self_approval)"},
      });

  auto bad = ParseDeploymentWindow("Mon 01:00-02:00 /etc/passwd");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(bad.status().message().find("\"/etc/passwd\"") != std::string::npos);
}

}  // namespace reprise
