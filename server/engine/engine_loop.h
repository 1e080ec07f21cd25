// EngineLoop: the deployment engine's scheduler thread. One Boost.Asio
// io_context on one thread runs posted work in order, a system_timer armed
// for the next deadline (the next scheduled deployment), and steady timers
// for periodic work. Asio stays inside engine_loop.cpp.
//
// Deadlines are times of the engine's Clock. With the system clock the timer
// waits for that wall-clock time itself. With another clock (a FakeClock in
// tests) it waits for the remaining time on the wall clock, and the loop
// re-arms whenever that clock is set (Clock::Subscribe): a test moves its
// fake clock and the deadline handler runs if the new time has reached it.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "common/clock.h"

namespace reprise {

class EngineLoop {
 public:
  // `on_deadline` runs on the loop thread once the armed deadline is reached
  // (by the clock's time). `on_clock_set` runs on the loop thread after the
  // clock was set by hand (never for the system clock).
  EngineLoop(const Clock& clock, std::function<void()> on_deadline,
             std::function<void()> on_clock_set);
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  void Start();
  // Stops the thread and joins it; work not yet run is dropped.
  void Stop();
  bool OnLoopThread() const;

  // Runs `fn` on the loop thread, after what was posted before it.
  void Post(std::function<void()> fn);
  // Runs `fn` on the loop thread and waits for it (inline when called from
  // the loop thread or while the loop is not running).
  void RunAndWait(const std::function<void()>& fn);
  // Arms the deadline timer for `at` (clock time), replacing the previous
  // deadline; nullopt disarms it. A deadline already reached fires at once.
  void ArmDeadline(std::optional<TimePoint> at);
  // Runs `fn` on the loop thread every `period` (wall time) while running.
  void Every(std::chrono::milliseconds period, std::function<void()> fn);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace reprise
