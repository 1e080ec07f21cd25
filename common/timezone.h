// TimeZone: one IANA time zone ("Europe/Berlin"), for converting instants to
// local civil time and back, DST-correct.
//
// Backed by Howard Hinnant's date/tz (libdate-tz, reading the system tzdata in
// /usr/share/zoneinfo); libstdc++ 12 has no std::chrono::tzdb. Past the last
// transition a zone file lists (2037 in Debian's files) the file's POSIX TZ
// rule applies. "UTC", "Etc/UTC", "GMT" and "Etc/GMT" are built in and work
// without tzdata. No date/tz type appears here: only timezone.cpp includes it.
//
// A TimeZone is immutable after loading and safe to share between threads.
// TimeZone::Get() is thread-safe and caches loaded zones for the process.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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
  // Loads `name` from the system's time zone database. A malformed name
  // ("../etc/passwd", "/etc/passwd", characters outside [A-Za-z0-9_+-/], over
  // 64 bytes) or a leap-second ("right/") zone is kInvalidArgument; an unknown
  // zone, or any zone but UTC when tzdata is missing, is kNotFound. Messages
  // name the zone.
  [[nodiscard]] static Result<TimeZone> Load(std::string_view name);
  // The process-wide cache over Load(). Failures are
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

 private:
  struct Data;  // the date/tz zone and rule behind this one; null for UTC
  TimeZone() = default;
  // The first boundary between two stretches of the zone's data strictly
  // after t (the offset may stay the same across it).
  std::optional<int64_t> NextEventAfter(int64_t t) const;

  std::string name_;
  std::shared_ptr<const Data> data_;
};

}  // namespace reprise
