// HttpServer: listening, accepting, start and stop. A connection (Session)
// is in http_server_session.cpp and http_server_events.cpp, over
// http_server_internal.h.
#include "server/api/http_server.h"

// <utility> first: Boost 1.74's Asio uses std::exchange without it (DEPENDENCIES.md).
#include <utility>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/api/http_server_internal.h"

namespace reprise {

struct HttpServer::Impl : ServerState {};

void ServerState::Accept() {
  acceptor->async_accept(asio::make_strand(*io), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void ServerState::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (stopping || !acceptor->is_open()) return;
  if (ec) {
    // Out of descriptors (or another passing failure): retry shortly, not in a busy loop.
    accept_retry->expires_after(std::chrono::milliseconds(50));
    accept_retry->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping) Accept();
    });
    return;
  }
  // Asio accepts without SOCK_CLOEXEC: no child process may hold a client's connection.
  ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
  if (connections.load() >= options.max_connections) {
    std::make_shared<Session>(*this, std::move(socket), false)->Refuse();
  } else {
    std::make_shared<Session>(*this, std::move(socket), true)->Start();
  }
  Accept();
}

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() { Stop(); }

uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

Status HttpServer::Start() {
  Impl& impl = *impl_;
  RaiseOpenFileLimit();
  impl.router = std::make_unique<RequestRouter>(impl.options);
  impl.io = std::make_unique<asio::io_context>(std::max(1, impl.options.io_threads));
  impl.acceptor = std::make_unique<tcp::acceptor>(*impl.io);
  impl.accept_retry = std::make_unique<asio::steady_timer>(*impl.io);
  std::string where = impl.options.host + ":" + std::to_string(impl.options.port);
  beast::error_code ec;
  auto address = asio::ip::make_address(impl.options.host, ec);
  if (ec) return InvalidArgument("cannot listen on " + where + ": not an IP address");
  tcp::endpoint endpoint(address, static_cast<uint16_t>(impl.options.port));
  impl.acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor->bind(endpoint, ec);
  if (!ec) impl.acceptor->listen(4096, ec);
  if (ec) return Unavailable("cannot listen on " + where + ": " + ec.message());
  ::fcntl(impl.acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  impl.port = impl.acceptor->local_endpoint().port();
  impl.workers = std::make_unique<asio::thread_pool>(std::max(1, impl.options.worker_threads));
  impl.uploaders = std::make_unique<asio::thread_pool>(std::max(1, impl.options.upload_threads));
  impl.Accept();
  for (int i = 0; i < std::max(1, impl.options.io_threads); ++i)
    impl.io_threads.emplace_back([io = impl.io.get()] {
      auto guard = asio::make_work_guard(*io);
      io->run();
    });
  impl.started = true;
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->started) return;
  Impl& impl = *impl_;
  impl.started = false;
  impl.stopping = true;
  asio::post(*impl.io, [&impl] {
    beast::error_code ignored;
    impl.acceptor->close(ignored);
    impl.accept_retry->cancel();
  });
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(impl.live_mu);
    for (auto& [ptr, weak] : impl.live)
      if (auto s = weak.lock()) open.push_back(std::move(s));
  }
  for (auto& s : open) s->Close();
  open.clear();
  // Handlers finish (uploads see their connection closed); then the io threads.
  impl.workers->join();
  impl.uploaders->join();
  impl.io->stop();
  for (auto& t : impl.io_threads) t.join();
  impl.io_threads.clear();
  impl.acceptor.reset();
  impl.accept_retry.reset();
  impl.io.reset();  // drops what was still queued, and the sessions with it
  impl.workers.reset();
  impl.uploaders.reset();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace reprise
