// TimeZone: one IANA time zone ("Europe/Berlin"), read from the system's TZif
// files (/usr/share/zoneinfo, Debian package tzdata), for converting instants
// to local civil time and back, DST-correct.
//
// libstdc++ 12 has no std::chrono::tzdb, and TZ + localtime_r is process-wide
// state, so the TZif data (v1, v2, v3 and v4; the 64-bit block when present)
// and the footer's POSIX TZ rule (for instants after the last listed
// transition) are parsed here. "UTC", "Etc/UTC", "GMT" and "Etc/GMT" are built
// in and work without tzdata. Leap-second ("right/") zones are refused.
//
// A TimeZone is immutable after loading and safe to share between threads.
// TimeZone::Get() is thread-safe and caches loaded zones for the process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace reprise {

// A civil date and time of day, as shown on a clock (no zone attached).
struct CivilTime {
  int64_t year = 1970;
  int month = 1;    // 1..12
  int day = 1;      // 1..31
  int weekday = 4;  // 0 = Sunday ... 6 = Saturday; ignored as input
  int hour = 0;     // 0..23
  int minute = 0;
  int second = 0;

  bool operator==(const CivilTime&) const = default;
};

// Proleptic Gregorian calendar helpers, exact for any int64 day count a
// TimePoint can hold. Days and seconds count from 1970-01-01 (00:00).
int64_t DaysFromCivil(int64_t year, int month, int day);
CivilTime CivilFromSeconds(int64_t seconds);  // seconds since the epoch, no offset
// Inverse of CivilFromSeconds; out-of-range fields are normalised arithmetically.
int64_t SecondsFromCivil(const CivilTime& civil);
// Whole seconds since the epoch, rounded towards the past.
int64_t FloorSeconds(TimePoint t);

class TimeZone {
 public:
  // Loads `name` from `zoneinfo_dir`. A malformed name ("../etc/passwd",
  // "/etc/passwd", characters outside [A-Za-z0-9_+-/], over 64 bytes) or a
  // file that is not TZif is kInvalidArgument; an unknown zone is kNotFound.
  // Messages name the zone.
  [[nodiscard]] static Result<TimeZone> Load(
      std::string_view name, const std::filesystem::path& zoneinfo_dir = "/usr/share/zoneinfo");
  // Parses TZif bytes; `name` is only what name() returns.
  [[nodiscard]] static Result<TimeZone> FromTzif(std::string name, std::string_view bytes);
  // The process-wide cache over Load() from /usr/share/zoneinfo. Failures are
  // not cached (a name typed by a user must not grow the cache).
  [[nodiscard]] static Result<std::shared_ptr<const TimeZone>> Get(std::string_view name);
  // Built-in UTC (name "UTC").
  static std::shared_ptr<const TimeZone> Utc();

  // Whether `name` is a syntactically acceptable zone name (not whether it exists).
  static bool IsValidName(std::string_view name);

  std::string_view name() const { return name_; }
  // UTC offset in seconds east of Greenwich at `utc` (Berlin in summer: 7200).
  int OffsetSeconds(TimePoint utc) const;
  CivilTime ToLocal(TimePoint utc) const;
  // The first instant at which this zone's clock reads `local` or later: the
  // instant itself when the local time occurs once, its first occurrence when
  // a fall-back repeats it, and the moment of the jump when a spring-forward
  // skips it. Monotonic in `local`. (`weekday` is ignored.)
  TimePoint FromLocal(const CivilTime& local) const;
  // The next instant after `after` at which the UTC offset changes, or
  // nullopt when it never changes again.
  std::optional<TimePoint> NextTransition(TimePoint after) const;

  // Seconds-based forms of the above (local seconds = SecondsFromCivil(local)).
  int OffsetAt(int64_t utc_seconds) const;
  int64_t LocalSecondsToUtc(int64_t local_seconds) const;
  std::optional<int64_t> NextTransitionAfter(int64_t utc_seconds) const;

  // A footer TZ rule such as "CET-1CEST,M3.5.0,M10.5.0/3" (public for tests).
  struct PosixRule {
    enum class Kind { kJulian1, kJulian0, kMonthWeekDay };  // "Jn", "n", "Mm.w.d"
    struct Date {
      Kind kind = Kind::kMonthWeekDay;
      int day = 0;  // Jn: 1..365; n: 0..365; M: day of week 0..6
      int month = 0;
      int week = 0;             // 1..5, 5 = last
      int time_seconds = 7200;  // local time of the change, -167h..167h
    };
    int std_offset = 0;  // seconds east of UTC
    bool has_dst = false;
    int dst_offset = 0;
    Date start;  // standard -> daylight, in standard time
    Date end;    // daylight -> standard, in daylight time
  };
  [[nodiscard]] static Result<PosixRule> ParsePosixRule(std::string_view tz);

 private:
  struct Event {
    int64_t at;
    int offset;
  };
  TimeZone() = default;
  int RuleOffsetAt(int64_t t) const;
  // The rule's changes in years first..last (UTC years), in time order.
  std::vector<Event> RuleEvents(int64_t first_year, int64_t last_year) const;
  // The first table transition or rule change strictly after t (offset may be unchanged).
  std::optional<int64_t> NextEventAfter(int64_t t) const;

  std::string name_;
  std::vector<int64_t> transitions_;     // ascending
  std::vector<int> transition_offsets_;  // offset from transitions_[i] on
  int initial_offset_ = 0;               // before the first transition
  std::optional<PosixRule> rule_;        // after the last transition
};

}  // namespace reprise
