// The HTTP server's insides, shared by its files: ServerState (what every
// connection shares) and Session (one connection). Boost.Beast stays in
// these files:
//   http_server.cpp          listening, accepting, start and stop
//   http_server_session.cpp  reading requests, writing answers and files, closing
//   http_server_events.cpp   live event streams (text/event-stream)
// Not a public API; included by server/api/http_server*.cpp only.
//
// Thread-safety: a Session runs on its connection's strand, except the
// handlers posted to the worker pools (OnWorker), which hand their results
// back to the strand (OnStrand).
#pragma once

// <utility> first: Boost 1.74's Asio uses std::exchange without it (DEPENDENCIES.md).
#include <utility>

#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/api/http_router.h"
#include "server/api/http_server.h"

namespace reprise {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace http_internal {

// Bodies not read (refused requests) are drained up to this much after the
// answer, so the client can read it; beyond it the connection is dropped.
inline constexpr size_t kDrainCap = 64 << 20;
inline constexpr size_t kChunk = 256 << 10;
// An upload with a Content-Length is read straight from the socket into two
// buffers of this size, one read ahead of its handler.
inline constexpr size_t kUploadChunk = 1 << 20;

}  // namespace http_internal

class Session;

// Everything the sessions share; HttpServer::Impl is this.
struct ServerState {
  HttpServerOptions options;
  std::unique_ptr<RequestRouter> router;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::mutex live_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> live;
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_retry;
  std::unique_ptr<asio::thread_pool> workers;
  // Upload handlers hold their thread while the body streams in: apart, so
  // slow uploads cannot starve the API.
  std::unique_ptr<asio::thread_pool> uploaders;
  std::vector<std::thread> io_threads;
  int port = 0;
  bool started = false;

  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
};

// One connection: reads requests, hands them to the router on the worker
// pool, writes the answers. Everything but the worker tasks runs on the
// connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerState& impl, tcp::socket socket, bool counted)
      : impl_(impl), stream_(std::move(socket)), timer_(stream_.get_executor()), counted_(counted) {
    if (counted_) ++impl_.connections;
  }
  ~Session() {
    if (unsubscribe_) unsubscribe_();
    if (file_fd_ >= 0) ::close(file_fd_);
    if (counted_) --impl_.connections;
    std::lock_guard lock(impl_.live_mu);
    impl_.live.erase(this);
  }

  void Start() {
    {
      std::lock_guard lock(impl_.live_mu);
      impl_.live[this] = weak_from_this();
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->impl_.stopping) return self->Shutdown();
      self->ReadHeader();
    });
  }

  // Answers 503 at once and closes: the server has too many connections.
  void Refuse() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->keep_alive_ = false;
      self->Respond(HttpResponse::Error(503, "unavailable",
                                        "too many connections to this server; retry shortly"));
    });
  }

  // From any thread: ends the connection (a live stream too).
  void Close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Shutdown(); });
  }

 private:
  const HttpServerOptions& options() const { return impl_.options; }

  template <typename Fn>
  void OnWorker(Fn fn, bool upload = false) {
    if (impl_.stopping) return Shutdown();
    asio::post(upload ? *impl_.uploaders : *impl_.workers,
               [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(*self); });
  }
  template <typename Fn>
  void OnStrand(Fn fn) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(*self); });
  }

  // ---- requests
  void ReadHeader();
  void OnHeader(beast::error_code ec);
  void OnDecision(RequestRouter::Decision decision);

  HttpResponse TooLarge(int64_t limit) {
    return HttpResponse::Error(413, "too_large",
                               "request body is larger than " + std::to_string(limit) + " bytes");
  }

  void ReadBody();
  // The handler runs on a worker and pulls the body through the BodyReader,
  // chunk by chunk, each read done on the strand: nothing is buffered whole.
  void RunUpload();
  // On a worker thread, inside the upload handler: a chunked body, through
  // Beast's parser.
  bool PullUpload(const std::function<bool(const char*, size_t)>& sink);
  // The same for a body with a Content-Length: read without the parser's
  // copy, in large reads, the next chunk read while the handler takes the
  // last one.
  using ChunkRead = std::future<std::pair<beast::error_code, size_t>>;
  bool PullLengthBody(const std::function<bool(const char*, size_t)>& sink);
  // From the worker: fills `data` (up to `capacity`, at most what is left of
  // the body) on the strand, the bytes read with the header first.
  ChunkRead ReadUploadChunk(char* data, size_t capacity);
  // On the strand: reads until `want` bytes are in, the body ended, or an error.
  void FillUploadChunk(std::shared_ptr<std::promise<std::pair<beast::error_code, size_t>>> read,
                       char* data, size_t want, size_t have);

  // ---- responses
  template <typename Message>
  void FillHeaders(Message& msg, const HttpResponse& res) {
    msg.result(static_cast<unsigned>(res.status));
    msg.set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) msg.insert(k, v);
    msg.keep_alive(keep_alive_);
  }

  void Respond(HttpResponse res);

  template <typename Message>
  void Write(std::shared_ptr<Message> msg) {
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg](beast::error_code ec, size_t) {
                        self->AfterResponse(ec);
                      });
  }

  void AfterResponse(beast::error_code ec);
  void SendFile(HttpResponse res);
  void SendFileChunk();

  // ---- live event streams: no thread waits; wake-ups and the heartbeat poll.
  void StartEvents(HttpResponse res);
  // The wake-up runs inside the event source's notification: it only posts,
  // so the session is never released (and destroyed) there.
  void Subscribe();
  // A stream's client sends nothing more; a read ends when it hangs up.
  void WatchForHangUp();
  void ArmHeartbeat();
  void MaybePoll();
  void OnPolled(std::string text, bool done);
  void EndEvents();

  // ---- closing
  // Sends FIN, then reads and drops what the client still sends (a body we
  // did not read) so it can read our answer, then closes.
  void LingerClose();
  void Drain(size_t drained);
  void Shutdown();

  ServerState& impl_;
  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  bool counted_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> body_;
  std::optional<http::request_parser<http::buffer_body>> upload_;
  std::vector<char> upload_buf_;
  bool upload_too_large_ = false;
  // A Content-Length upload (PullLengthBody): its buffers, the bytes not yet
  // read, and whether the handler stopped reading (strand only but buffers).
  bool upload_by_length_ = false;
  std::vector<char> upload_bufs_[2];
  uint64_t upload_left_ = 0;
  bool upload_abandoned_ = false;
  HttpRequest req_;
  const Route* route_ = nullptr;
  // For the metrics: when the request's headers were in, and its route.
  std::chrono::steady_clock::time_point started_;
  std::string metric_route_;
  int served_ = 0;
  bool keep_alive_ = false;
  bool head_only_ = false;
  std::atomic<bool> request_complete_{false};
  bool closed_ = false;
  // File responses.
  int file_fd_ = -1;
  int64_t file_offset_ = 0, file_left_ = 0;
  std::vector<char> file_buf_;
  std::optional<http::response<http::buffer_body>> file_msg_;
  std::optional<http::response_serializer<http::buffer_body>> file_sr_;
  // Live event streams.
  std::shared_ptr<EventStream> events_;
  std::function<void()> unsubscribe_;
  std::atomic<bool> wake_requested_{false};
  bool polling_ = false, writing_ = false, heartbeat_due_ = false;
  std::vector<char> hangup_buf_;
};

}  // namespace reprise
