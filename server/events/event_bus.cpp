// EventBus: a bounded queue and one thread calling the subscribers.
#include "server/events/event_bus.h"

#include <algorithm>

#include "common/log.h"

namespace reprise {

const std::vector<std::string>& KnownEventTypes() {
  static const std::vector<std::string> kTypes = [] {
    std::vector<std::string> t = {
        "agent.offline",
        "approval.needed",
        "deployment.cancelled",
        "deployment.expired",
        "deployment.failed",
        "deployment.requested",
        "deployment.rolled-back",
        "deployment.started",
        "deployment.succeeded",
        "deployment.waiting",
        "hold.placed",
        "rollback-record.approved",
        "rollback-record.created",
        "rollback-record.executed",
        "rollback-record.executing",
        "rollback-record.failed",
        "rollback-record.rejected",
        "rollback-record.scheduled",
        "rollback-record.submitted",
        "rollback-record.validated",
        "rollback-record.validation-failed",
    };
    std::sort(t.begin(), t.end());
    return t;
  }();
  return kTypes;
}

bool IsKnownEventType(const std::string& type) {
  const auto& t = KnownEventTypes();
  return std::binary_search(t.begin(), t.end(), type);
}

EventBus::EventBus(const Clock& clock, size_t capacity)
    : clock_(clock), capacity_(capacity == 0 ? 1 : capacity) {
  thread_ = std::thread([this] { Run(); });
}

EventBus::~EventBus() { Stop(); }

int64_t EventBus::Subscribe(Handler handler) {
  std::lock_guard lock(mu_);
  handlers_[next_id_] = std::make_shared<Handler>(std::move(handler));
  return next_id_++;
}

void EventBus::Unsubscribe(int64_t id) {
  std::lock_guard dispatching(dispatch_mu_);
  std::lock_guard lock(mu_);
  handlers_.erase(id);
}

void EventBus::Publish(Event event) noexcept {
  try {
    if (event.time == 0) event.time = ToUnixMillis(clock_.Now());
    std::lock_guard lock(mu_);
    if (stopping_) {
      ++dropped_;
      return;
    }
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(event));
    cv_.notify_one();
  } catch (...) {
    // Out of memory: the event is lost, the publisher carries on.
  }
}

void EventBus::Run() {
  for (;;) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything delivered
    Event event = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // The handlers are read under dispatch_mu_: one unsubscribed before is
    // never called.
    std::lock_guard dispatching(dispatch_mu_);
    std::vector<std::shared_ptr<Handler>> handlers;
    lock.lock();
    for (const auto& [id, h] : handlers_) handlers.push_back(h);
    lock.unlock();
    for (const auto& h : handlers) {
      try {
        (*h)(event);
      } catch (const std::exception& e) {
        log::Error("events.subscriber-failed", {{"event", event.type}, {"error", e.what()}});
      } catch (...) {
        log::Error("events.subscriber-failed", {{"event", event.type}});
      }
    }
  }
}

void EventBus::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

uint64_t EventBus::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace reprise
