// The scheduler's timer: a deadline of a fake clock fires when the test moves
// the clock there, not before; with the system clock it waits for the time.
#include "server/engine/engine_loop.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>

namespace reprise {

namespace {

struct Counts {
  std::mutex mu;
  std::condition_variable cv;
  int fired = 0;
  int clock_set = 0;
  TimePoint fired_at{};

  // Waits until `pred` holds (the loop runs on its own thread).
  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), pred);
  }
};

}  // namespace

TEST_CASE("a deadline of a fake clock fires once the clock is set to it") {
  TimePoint start = FromUnixMillis(1'000'000'000);
  FakeClock clock(start);
  Counts c;
  EngineLoop loop(
      clock,
      [&] {
        std::lock_guard lock(c.mu);
        ++c.fired;
        c.cv.notify_all();
      },
      [&] {
        std::lock_guard lock(c.mu);
        ++c.clock_set;
        c.cv.notify_all();
      });
  loop.Start();
  loop.ArmDeadline(start + std::chrono::hours(1));
  loop.RunAndWait([] {});  // the deadline is armed
  clock.Advance(std::chrono::minutes(30));
  REQUIRE(c.WaitFor([&] { return c.clock_set == 1; }));
  loop.RunAndWait([] {});
  CHECK(c.fired == 0);
  clock.Advance(std::chrono::minutes(30));
  REQUIRE(c.WaitFor([&] { return c.fired == 1; }));

  // A deadline already passed fires at once; a disarmed one never.
  loop.ArmDeadline(clock.Now() - std::chrono::seconds(1));
  REQUIRE(c.WaitFor([&] { return c.fired == 2; }));
  loop.ArmDeadline(clock.Now() + std::chrono::minutes(1));
  loop.ArmDeadline(std::nullopt);
  clock.Advance(std::chrono::minutes(2));
  REQUIRE(c.WaitFor([&] { return c.clock_set == 3; }));
  loop.RunAndWait([] {});
  CHECK(c.fired == 2);
  // Re-arming replaces the earlier deadline.
  loop.ArmDeadline(clock.Now() + std::chrono::minutes(10));
  loop.ArmDeadline(clock.Now() + std::chrono::minutes(5));
  clock.Advance(std::chrono::minutes(5));
  REQUIRE(c.WaitFor([&] { return c.fired == 3; }));
  clock.Advance(std::chrono::minutes(5));
  REQUIRE(c.WaitFor([&] { return c.clock_set == 5; }));
  loop.RunAndWait([] {});
  CHECK(c.fired == 3);
  loop.Stop();
}

TEST_CASE("with the system clock a deadline fires at its wall-clock time") {
  const Clock& clock = SystemClock::Instance();
  Counts c;
  EngineLoop loop(
      clock,
      [&] {
        std::lock_guard lock(c.mu);
        c.fired_at = clock.Now();
        ++c.fired;
        c.cv.notify_all();
      },
      nullptr);
  loop.Start();
  TimePoint due = clock.Now() + std::chrono::milliseconds(200);
  loop.ArmDeadline(due);
  REQUIRE(c.WaitFor([&] { return c.fired == 1; }));
  CHECK(c.fired_at >= due);
  int ran = 0;
  loop.Every(std::chrono::milliseconds(10), [&] {
    std::lock_guard lock(c.mu);
    ++ran;
    c.cv.notify_all();
  });
  REQUIRE(c.WaitFor([&] { return ran >= 3; }));
  loop.Stop();
  // Stopped: posted work runs on the caller's thread.
  bool inline_run = false;
  loop.RunAndWait([&] { inline_run = true; });
  CHECK(inline_run);
}

}  // namespace reprise
