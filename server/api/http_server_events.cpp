// Live event streams (text/event-stream): no thread waits; the event
// source's wake-ups and a heartbeat timer make the session poll on a worker
// and write what it returns as one chunk, until the source says it is done
// or the client hangs up.
#include <cstdio>

#include "server/api/http_server_internal.h"

namespace reprise {

void Session::StartEvents(HttpResponse res) {
  events_ = std::move(res.events);
  keep_alive_ = false;
  auto msg = std::make_shared<http::response<http::empty_body>>();
  res.content_type = "text/event-stream";
  FillHeaders(*msg, res);
  msg->chunked(true);
  auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*msg);
  stream_.expires_after(options().write_timeout);
  http::async_write_header(stream_, *sr,
                           [self = shared_from_this(), msg, sr](beast::error_code ec, size_t) {
                             self->stream_.expires_never();
                             if (ec) return self->Shutdown();
                             self->Subscribe();
                             self->WatchForHangUp();
                             self->ArmHeartbeat();
                             self->wake_requested_ = true;
                             self->MaybePoll();
                           });
}

void Session::Subscribe() {
  if (!events_->subscribe) return;
  std::weak_ptr<Session> weak = shared_from_this();
  auto strand = stream_.get_executor();
  unsubscribe_ = events_->subscribe([weak, strand] {
    asio::post(strand, [weak] {
      if (auto s = weak.lock()) {
        s->wake_requested_ = true;
        s->MaybePoll();
      }
    });
  });
}

void Session::WatchForHangUp() {
  hangup_buf_.resize(512);
  stream_.socket().async_read_some(asio::buffer(hangup_buf_),
                                   [self = shared_from_this()](beast::error_code ec, size_t) {
                                     if (ec) return self->Shutdown();
                                     self->WatchForHangUp();
                                   });
}

void Session::ArmHeartbeat() {
  timer_.expires_after(options().heartbeat_interval);
  timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_) return;
    self->heartbeat_due_ = true;
    self->wake_requested_ = true;
    self->MaybePoll();
    self->ArmHeartbeat();
  });
}

void Session::MaybePoll() {
  if (closed_ || polling_ || writing_ || !events_) return;
  if (!wake_requested_.exchange(false)) return;
  polling_ = true;
  OnWorker([](Session& s) {
    bool done = false;
    std::string text;
    try {
      text = s.events_->poll(&done);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http: event stream failed: %s\n", e.what());
      done = true;
    }
    s.OnStrand([text = std::move(text), done](Session& s2) mutable {
      s2.OnPolled(std::move(text), done);
    });
  });
}

void Session::OnPolled(std::string text, bool done) {
  polling_ = false;
  if (closed_) return;
  if (text.empty() && heartbeat_due_) text = ": keep-alive\n\n";
  if (text.empty() && !done) return MaybePoll();
  heartbeat_due_ = false;
  writing_ = true;
  auto data = std::make_shared<std::string>(std::move(text));
  stream_.expires_after(options().write_timeout);
  auto after = [self = shared_from_this(), data, done](beast::error_code ec, size_t) {
    self->writing_ = false;
    self->stream_.expires_never();
    if (ec) return self->Shutdown();
    if (done) return self->EndEvents();
    self->MaybePoll();
  };
  if (data->empty()) {
    writing_ = false;
    return EndEvents();
  }
  asio::async_write(stream_, http::make_chunk(asio::buffer(*data)), std::move(after));
}

void Session::EndEvents() {
  stream_.expires_after(options().write_timeout);
  asio::async_write(stream_, http::make_chunk_last(),
                    [self = shared_from_this()](beast::error_code, size_t) { self->Shutdown(); });
}

}  // namespace reprise
