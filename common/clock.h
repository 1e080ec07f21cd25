// Clock: the wall clock behind an interface, so tests can use FakeClock.
//
// SystemClock is stateless and thread-safe. FakeClock is thread-safe; Advance()
// wakes nobody by itself: code that waits on time polls Now() or is driven by
// the test.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace reprise {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  static const Clock& Instance();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void Set(TimePoint t) { now_ = t.time_since_epoch().count(); }
  void Advance(std::chrono::milliseconds d) {
    now_ += std::chrono::duration_cast<TimePoint::duration>(d).count();
  }

 private:
  std::atomic<TimePoint::rep> now_;
};

// Milliseconds since the Unix epoch, the unit the store keeps times in.
int64_t ToUnixMillis(TimePoint t);
TimePoint FromUnixMillis(int64_t ms);

// "2026-11-23T17:36:01.123Z" (always UTC).
std::string FormatRfc3339Utc(TimePoint t);
// Parses RFC 3339 with a 'Z' or a numeric offset ("2026-11-23T18:00:00+01:00",
// fractional seconds allowed). Returns nullopt when malformed.
std::optional<TimePoint> ParseRfc3339(std::string_view text);

}  // namespace reprise
