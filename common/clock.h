// Clock: the wall clock behind an interface, so tests can use FakeClock.
//
// SystemClock is stateless and thread-safe. FakeClock is thread-safe. Code
// that waits for a time of a clock other than the system clock (timers) can
// subscribe to its changes: FakeClock::Set() and Advance() call the
// subscribers, so a test that moves the clock nudges what waits on it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace reprise {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // True when Now() is std::chrono::system_clock::now(): timers may wait for
  // its deadlines directly.
  virtual bool IsSystemClock() const { return false; }
  // `fn` is called (on the thread that changed the clock) after the clock
  // was set by hand. Returns an id for Unsubscribe; 0 when the clock never
  // changes that way. `fn` must be quick and must not call Subscribe or
  // Unsubscribe.
  virtual int64_t Subscribe(std::function<void()> fn) const {
    (void)fn;
    return 0;
  }
  virtual void Unsubscribe(int64_t id) const { (void)id; }
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  bool IsSystemClock() const override { return true; }
  static const Clock& Instance();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void Set(TimePoint t) {
    now_ = t.time_since_epoch().count();
    Notify();
  }
  void Advance(std::chrono::milliseconds d) {
    now_ += std::chrono::duration_cast<TimePoint::duration>(d).count();
    Notify();
  }
  int64_t Subscribe(std::function<void()> fn) const override {
    std::lock_guard lock(mu_);
    subscribers_[++last_id_] = std::move(fn);
    return last_id_;
  }
  void Unsubscribe(int64_t id) const override {
    std::lock_guard lock(mu_);
    subscribers_.erase(id);
  }

 private:
  void Notify() const {
    std::lock_guard lock(mu_);
    for (const auto& [id, fn] : subscribers_) fn();
  }

  std::atomic<TimePoint::rep> now_;
  mutable std::mutex mu_;
  mutable int64_t last_id_ = 0;
  mutable std::map<int64_t, std::function<void()>> subscribers_;
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
