// EventBus: the server's in-process change-event bus. Where a status really
// changes (a deployment requested, waiting, started, finished; a hold
// placed; a rollback record moving; an agent going offline) the code that
// made the change durable publishes one Event; subscribers (webhook
// deliveries, later a live UI stream) receive every event in publication
// order.
//
// Publish() never blocks on subscribers and never throws: it appends to a
// bounded in-memory queue and returns; one bus thread calls the subscribers.
// When the queue is full the oldest event is dropped (and counted), so a
// stuck subscriber cannot hold the engine back. Events are not durable: a
// subscriber that must not lose one writes it down itself (the webhook
// subscriber queues deliveries in the store).
//
// Where to add an event: publish right after the store call that made the
// change succeed (never before: subscribers may read the store), with the
// fields that identify the subject; add its type to KnownEventTypes() in
// event_bus.cpp and describe it in docs/webhooks.md.
//
// Thread-safety: every method may be called from any thread. Subscribers
// run on the bus thread, one event at a time; they must not call
// Unsubscribe() or Stop() themselves (Publish is fine).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace reprise {

// One change. Fields that do not apply stay empty / 0.
struct Event {
  std::string type;   // e.g. "deployment.succeeded" (KnownEventTypes)
  int64_t time = 0;   // ms since the Unix epoch; 0: the bus fills in its clock's now
  std::string actor;  // who caused it ("scheduler", "automation", a user)
  int64_t deployment_id = 0;
  std::string application;
  std::string stage;
  std::string release;
  int64_t build = 0;
  std::string kind;    // a deployment's kind: promote | redeploy | rollback | ...
  std::string status;  // the subject's status after the change
  std::string target;
  std::string agent;
  int64_t record_id = 0;  // a rollback record
  std::string reason;     // why (gates waited for, an error, a hold's reason)
};

// Every event type the server publishes, sorted.
const std::vector<std::string>& KnownEventTypes();
bool IsKnownEventType(const std::string& type);

class EventBus {
 public:
  using Handler = std::function<void(const Event&)>;

  // `clock` stamps events published without a time; `capacity` bounds the queue.
  explicit EventBus(const Clock& clock, size_t capacity = 10000);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Returns an id for Unsubscribe. Events published before are not replayed.
  int64_t Subscribe(Handler handler);
  // Once it returns, the handler is not running and is never called again.
  void Unsubscribe(int64_t id);

  // Queues `event` for the subscribers; never blocks on them, never throws.
  void Publish(Event event) noexcept;

  // Delivers what is queued, then stops the bus thread; later publications
  // are dropped. Idempotent.
  void Stop();

  // Events dropped because the queue was full or the bus had stopped.
  uint64_t dropped() const;

 private:
  void Run();

  const Clock& clock_;
  const size_t capacity_;
  mutable std::mutex mu_;  // queue_, stopping_, dropped_, handlers_ (map)
  std::condition_variable cv_;
  std::deque<Event> queue_;
  bool stopping_ = false;
  uint64_t dropped_ = 0;
  std::map<int64_t, std::shared_ptr<Handler>> handlers_;
  int64_t next_id_ = 1;
  std::mutex dispatch_mu_;  // held while handlers run (Unsubscribe waits on it)
  std::thread thread_;
};

// Publishes when `bus` is set (components run without a bus in some tests).
inline void Publish(EventBus* bus, Event event) noexcept {
  if (bus != nullptr) bus->Publish(std::move(event));
}

}  // namespace reprise
