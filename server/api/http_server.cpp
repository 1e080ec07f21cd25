#include "server/api/http_server.h"

// <utility> first: Boost 1.74's Asio uses std::exchange without it (DEPENDENCIES.md).
#include <utility>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "server/api/http_router.h"

namespace reprise {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Bodies not read (refused requests) are drained up to this much after the
// answer, so the client can read it; beyond it the connection is dropped.
constexpr size_t kDrainCap = 64 << 20;
constexpr size_t kChunk = 256 << 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

// "bytes=a-b", "bytes=a-", "bytes=-n" against a file of `size` bytes. nullopt:
// serve the whole file (no Range, several ranges, or one we do not parse);
// {size, 0}: not satisfiable.
std::optional<std::pair<int64_t, int64_t>> ParseRange(const std::string& header, int64_t size) {
  if (header.rfind("bytes=", 0) != 0 || header.find(',') != std::string::npos) return std::nullopt;
  std::string spec = header.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  auto number = [](const std::string& s) -> std::optional<int64_t> {
    if (s.empty() || s.size() > 18) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  auto first = number(spec.substr(0, dash));
  auto last = number(spec.substr(dash + 1));
  if (!first && !last) return std::nullopt;
  if (!first) {  // the last n bytes
    if (*last == 0) return std::make_pair(size, int64_t{0});
    int64_t n = std::min(*last, size);
    return std::make_pair(size - n, n);
  }
  if (*first >= size) return std::make_pair(size, int64_t{0});
  int64_t end = last ? std::min(*last, size - 1) : size - 1;
  if (end < *first) return std::nullopt;
  return std::make_pair(*first, end - *first + 1);
}

}  // namespace

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

struct HttpServer::Impl : ServerState {};

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
  void ReadHeader() {
    header_.emplace();
    header_->header_limit(static_cast<uint32_t>(options().max_header_bytes));
    // Checked per route once the route is known (boost::none compares wrongly in 1.74).
    header_->body_limit(std::numeric_limits<uint64_t>::max());
    request_complete_ = false;
    stream_.expires_after(served_ == 0 ? options().header_timeout : options().keep_alive_timeout);
    http::async_read_header(
        stream_, buffer_, *header_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::header_limit) {
        keep_alive_ = false;
        return Respond(HttpResponse::Error(431, "too_large", "request headers are too large"));
      }
      if (IsHttpParseError(ec) && ec != http::error::end_of_stream &&
          ec != http::error::partial_message) {
        keep_alive_ = false;
        return Respond(HttpResponse::Error(400, "invalid_argument", "malformed HTTP request"));
      }
      return Shutdown();  // closed, timed out (the header deadline) or failed
    }
    ++served_;
    auto& msg = header_->get();
    req_ = HttpRequest{};
    req_.method = std::string(msg.method_string());
    head_only_ = req_.method == "HEAD";
    if (head_only_) req_.method = "GET";
    for (const auto& field : msg)
      req_.headers[Lower(std::string_view(
          field.name_string().data(), field.name_string().size()))] = std::string(field.value());
    beast::error_code ignored;
    auto peer = stream_.socket().remote_endpoint(ignored);
    req_.remote_addr = ignored ? std::string() : peer.address().to_string();
    keep_alive_ = msg.keep_alive() && served_ < options().max_requests_per_connection;
    request_complete_ = header_->is_done();
    std::string target(msg.target());
    stream_.expires_never();  // the router may take a while (SQLite): no deadline meanwhile
    OnWorker([target = std::move(target)](Session& s) {
      auto decision = s.impl_.router->Prepare(target, s.req_);
      s.OnStrand([decision = std::move(decision)](Session& s2) mutable {
        s2.OnDecision(std::move(decision));
      });
    });
  }

  void OnDecision(RequestRouter::Decision decision) {
    if (decision.response) return Respond(std::move(*decision.response));
    route_ = decision.route;
    int64_t limit = impl_.router->BodyLimit(*route_);
    if (auto length = header_->content_length(); length && *length > static_cast<uint64_t>(limit))
      return Respond(TooLarge(limit));
    auto expect = header_->get()[http::field::expect];
    if (!request_complete_ && beast::iequals(expect, "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      stream_.expires_after(options().write_timeout);
      return http::async_write(stream_, *cont,
                               [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                                 if (ec) return self->Shutdown();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  HttpResponse TooLarge(int64_t limit) {
    return HttpResponse::Error(413, "too_large",
                               "request body is larger than " + std::to_string(limit) + " bytes");
  }

  void ReadBody() {
    if (route_->streaming) return RunUpload();
    body_.emplace(std::move(*header_));
    body_->body_limit(static_cast<uint64_t>(options().max_json_body));
    stream_.expires_after(options().body_timeout);
    http::async_read(
        stream_, buffer_, *body_, [self = shared_from_this()](beast::error_code ec, size_t) {
          self->stream_.expires_never();
          if (ec == http::error::body_limit)
            return self->Respond(self->TooLarge(self->options().max_json_body));
          if (ec) return self->Shutdown();  // cut off or too slow: nobody to answer
          self->request_complete_ = true;
          self->req_.body = std::move(self->body_->get().body());
          self->body_.reset();
          self->OnWorker([](Session& s) {
            HttpResponse res = s.impl_.router->Run(*s.route_, s.req_);
            s.OnStrand([res = std::move(res)](Session& s2) mutable { s2.Respond(std::move(res)); });
          });
        });
  }

  // The handler runs on a worker and pulls the body through the BodyReader,
  // chunk by chunk, each read done on the strand: nothing is buffered whole.
  void RunUpload() {
    upload_.emplace(std::move(*header_));
    upload_->body_limit(static_cast<uint64_t>(options().max_upload_body));
    upload_buf_.resize(kChunk);
    OnWorker(
        [](Session& s) {
          BodyReader reader = [&s](const std::function<bool(const char*, size_t)>& sink) {
            return s.PullUpload(sink);
          };
          HttpResponse res = s.impl_.router->RunStreaming(*s.route_, s.req_, reader);
          if (s.upload_too_large_) res = s.TooLarge(s.options().max_upload_body);
          s.OnStrand([res = std::move(res)](Session& s2) mutable { s2.Respond(std::move(res)); });
        },
        true);
  }

  // On a worker thread, inside the upload handler.
  bool PullUpload(const std::function<bool(const char*, size_t)>& sink) {
    while (!request_complete_) {
      // Shared: the io thread may still be inside set_value when this thread
      // wakes up and leaves the iteration.
      auto read = std::make_shared<std::promise<std::pair<beast::error_code, size_t>>>();
      auto got = read->get_future();
      asio::post(stream_.get_executor(), [this, read] {
        if (closed_) return read->set_value({asio::error::operation_aborted, 0});
        auto& body = upload_->get().body();
        body.data = upload_buf_.data();
        body.size = upload_buf_.size();
        stream_.expires_after(options().upload_idle_timeout);
        http::async_read(stream_, buffer_, *upload_, [this, read](beast::error_code ec, size_t) {
          stream_.expires_never();
          if (ec == http::error::need_buffer) ec = {};
          if (!ec && upload_->is_done()) request_complete_ = true;
          read->set_value({ec, upload_buf_.size() - upload_->get().body().size});
        });
      });
      auto [ec, n] = got.get();
      if (ec) {
        if (ec == http::error::body_limit) upload_too_large_ = true;
        return false;
      }
      if (n > 0 && !sink(upload_buf_.data(), n)) return true;  // the handler has enough
    }
    return true;
  }

  // ---- responses
  template <typename Message>
  void FillHeaders(Message& msg, const HttpResponse& res) {
    msg.result(static_cast<unsigned>(res.status));
    msg.set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) msg.insert(k, v);
    msg.keep_alive(keep_alive_);
  }

  void Respond(HttpResponse res) {
    route_ = nullptr;
    if (!request_complete_ || impl_.stopping) keep_alive_ = false;
    if (res.events && !head_only_) return StartEvents(std::move(res));
    if (res.file_path) return SendFile(std::move(res));
    // These statuses have no body (Beast refuses one).
    if (res.status == 204 || res.status == 304 || res.status < 200) res.body.clear();
    if (head_only_) {
      auto msg = std::make_shared<http::response<http::empty_body>>();
      FillHeaders(*msg, res);
      msg->content_length(res.body.size());
      return Write(msg);
    }
    auto msg = std::make_shared<http::response<http::string_body>>();
    FillHeaders(*msg, res);
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    Write(msg);
  }

  template <typename Message>
  void Write(std::shared_ptr<Message> msg) {
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg](beast::error_code ec, size_t) {
                        self->AfterResponse(ec);
                      });
  }

  void AfterResponse(beast::error_code ec) {
    stream_.expires_never();
    if (ec) return Shutdown();
    if (keep_alive_ && !impl_.stopping) return ReadHeader();
    LingerClose();
  }

  void SendFile(HttpResponse res) {
    file_fd_ = ::open(res.file_path->c_str(), O_RDONLY | O_CLOEXEC);
    if (file_fd_ < 0) {
      res = HttpResponse::Error(500, "io_error", "cannot open stored file");
      return Respond(std::move(res));
    }
    int64_t size = res.file_size, offset = 0, length = size;
    if (res.status == 200) {
      if (auto range = ParseRange(req_.Header("range").value_or(""), size)) {
        if (range->second == 0) {
          ::close(file_fd_);
          file_fd_ = -1;
          res = HttpResponse::Error(
              416, "range_not_satisfiable",
              "the range lies outside the file's " + std::to_string(size) + " bytes");
          res.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
          return Respond(std::move(res));
        }
        offset = range->first;
        length = range->second;
        res.status = 206;
        res.headers.emplace_back("Content-Range", "bytes " + std::to_string(offset) + "-" +
                                                      std::to_string(offset + length - 1) + "/" +
                                                      std::to_string(size));
      }
    }
    if (head_only_) {
      auto msg = std::make_shared<http::response<http::empty_body>>();
      FillHeaders(*msg, res);
      msg->content_length(static_cast<uint64_t>(length));
      return Write(msg);
    }
    file_msg_.emplace();
    FillHeaders(*file_msg_, res);
    file_msg_->content_length(static_cast<uint64_t>(length));
    file_msg_->body().data = nullptr;
    file_msg_->body().more = true;
    file_sr_.emplace(*file_msg_);
    file_offset_ = offset;
    file_left_ = length;
    file_buf_.resize(kChunk);
    stream_.expires_after(options().write_timeout);
    http::async_write_header(stream_, *file_sr_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Shutdown();
                               self->SendFileChunk();
                             });
  }

  void SendFileChunk() {
    size_t want = static_cast<size_t>(std::min<int64_t>(file_left_, static_cast<int64_t>(kChunk)));
    ssize_t n = want == 0 ? 0 : ::pread(file_fd_, file_buf_.data(), want, file_offset_);
    if (want > 0 && n <= 0) return Shutdown();  // the file shrank: the length was promised
    file_offset_ += n;
    file_left_ -= n;
    auto& body = file_msg_->body();
    body.data = n > 0 ? file_buf_.data() : nullptr;
    body.size = static_cast<size_t>(n);
    body.more = file_left_ > 0;
    stream_.expires_after(options().write_timeout);
    http::async_write(stream_, *file_sr_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec == http::error::need_buffer) return self->SendFileChunk();
                        ::close(self->file_fd_);
                        self->file_fd_ = -1;
                        self->file_sr_.reset();
                        self->file_msg_.reset();
                        self->AfterResponse(ec);
                      });
  }

  // ---- live event streams: no thread waits; wake-ups and the heartbeat poll.
  void StartEvents(HttpResponse res) {
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

  // The wake-up runs inside the event source's notification: it only posts,
  // so the session is never released (and destroyed) there.
  void Subscribe() {
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

  // A stream's client sends nothing more; a read ends when it hangs up.
  void WatchForHangUp() {
    hangup_buf_.resize(512);
    stream_.socket().async_read_some(asio::buffer(hangup_buf_),
                                     [self = shared_from_this()](beast::error_code ec, size_t) {
                                       if (ec) return self->Shutdown();
                                       self->WatchForHangUp();
                                     });
  }

  void ArmHeartbeat() {
    timer_.expires_after(options().heartbeat_interval);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->heartbeat_due_ = true;
      self->wake_requested_ = true;
      self->MaybePoll();
      self->ArmHeartbeat();
    });
  }

  void MaybePoll() {
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

  void OnPolled(std::string text, bool done) {
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

  void EndEvents() {
    stream_.expires_after(options().write_timeout);
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code, size_t) { self->Shutdown(); });
  }

  // ---- closing
  // Sends FIN, then reads and drops what the client still sends (a body we
  // did not read) so it can read our answer, then closes.
  void LingerClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (request_complete_) return Shutdown();
    hangup_buf_.resize(64 << 10);
    stream_.expires_after(options().header_timeout);
    Drain(0);
  }

  void Drain(size_t drained) {
    stream_.async_read_some(asio::buffer(hangup_buf_),
                            [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                              if (ec || drained + n > kDrainCap) return self->Shutdown();
                              self->Drain(drained + n);
                            });
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    if (unsubscribe_) {
      auto unsubscribe = std::move(unsubscribe_);
      unsubscribe_ = nullptr;
      unsubscribe();
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

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
  HttpRequest req_;
  const Route* route_ = nullptr;
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
