// <utility> before Asio: Boost 1.74's awaitable.hpp uses std::exchange
// without including it (GCC 12, C++20). Only the Asio headers used here.
#include <utility>

#include "server/engine/engine_loop.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace reprise {

namespace asio = boost::asio;

namespace {

// How long to wait before looking again when a timer for another clock
// than the system clock fired early (that clock did not move as fast as the
// wall clock). Moving that clock re-arms at once anyway.
constexpr std::chrono::seconds kForeignClockRetry{1};

}  // namespace

struct EngineLoop::Impl {
  Impl(const Clock& c, std::function<void()> deadline, std::function<void()> clock_set)
      : clock(c),
        on_deadline(std::move(deadline)),
        on_clock_set(std::move(clock_set)),
        work(asio::make_work_guard(io)),
        deadline_timer(io) {}

  const Clock& clock;
  std::function<void()> on_deadline;
  std::function<void()> on_clock_set;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::system_timer deadline_timer;
  std::vector<std::unique_ptr<asio::steady_timer>> periodic;
  std::mutex mu;  // thread, running, subscription
  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<std::thread::id> loop_id{};
  int64_t subscription = 0;
  // Loop thread only.
  std::optional<TimePoint> armed;
  uint64_t generation = 0;

  // Loop thread: (re)starts the wait for `armed`.
  void Rearm(bool fired_early) {
    ++generation;
    if (!armed) {
      deadline_timer.cancel();
      return;
    }
    if (clock.IsSystemClock()) {
      deadline_timer.expires_at(*armed);
    } else {
      auto remaining = *armed - clock.Now();
      if (fired_early && remaining < kForeignClockRetry) remaining = kForeignClockRetry;
      deadline_timer.expires_after(remaining);
    }
    uint64_t gen = generation;
    deadline_timer.async_wait([this, gen](const boost::system::error_code& ec) {
      if (ec || gen != generation || !armed) return;
      if (clock.Now() < *armed) return Rearm(true);
      armed.reset();
      on_deadline();
    });
  }

  void Periodic(asio::steady_timer* timer, std::chrono::milliseconds period,
                std::function<void()> fn) {
    timer->expires_after(period);
    timer->async_wait(
        [this, timer, period, fn = std::move(fn)](const boost::system::error_code& ec) {
          if (ec) return;
          fn();
          Periodic(timer, period, fn);
        });
  }
};

EngineLoop::EngineLoop(const Clock& clock, std::function<void()> on_deadline,
                       std::function<void()> on_clock_set)
    : impl_(std::make_shared<Impl>(clock, std::move(on_deadline), std::move(on_clock_set))) {}

EngineLoop::~EngineLoop() { Stop(); }

void EngineLoop::Start() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  if (im.running) return;
  im.running = true;
  im.subscription = im.clock.Subscribe([&im] {
    asio::post(im.io, [&im] {
      if (im.on_clock_set) im.on_clock_set();
      im.Rearm(false);
    });
  });
  im.thread = std::thread([&im] {
    im.loop_id = std::this_thread::get_id();
    im.io.run();
  });
}

void EngineLoop::Stop() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  if (im.subscription != 0) im.clock.Unsubscribe(im.subscription);
  im.subscription = 0;
  if (!im.thread.joinable()) return;
  im.work.reset();
  im.io.stop();
  im.thread.join();
  im.running = false;
  im.loop_id = std::thread::id();
}

bool EngineLoop::OnLoopThread() const { return impl_->loop_id == std::this_thread::get_id(); }

void EngineLoop::Post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

void EngineLoop::RunAndWait(const std::function<void()>& fn) {
  Impl& im = *impl_;
  if (!im.running || OnLoopThread()) return fn();
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  asio::post(im.io, [&fn, done] {
    fn();
    done->set_value();
  });
  // The loop may be stopped before it gets to it: once its thread has
  // ended, `fn` either ran or never will, so run it here.
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (!im.running) {
      if (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) fn();
      return;
    }
  }
}

void EngineLoop::ArmDeadline(std::optional<TimePoint> at) {
  Impl& im = *impl_;
  asio::post(im.io, [&im, at] {
    im.armed = at;
    im.Rearm(false);
  });
}

void EngineLoop::Every(std::chrono::milliseconds period, std::function<void()> fn) {
  Impl& im = *impl_;
  asio::post(im.io, [&im, period, fn = std::move(fn)] {
    im.periodic.push_back(std::make_unique<asio::steady_timer>(im.io));
    im.Periodic(im.periodic.back().get(), period, fn);
  });
}

}  // namespace reprise
