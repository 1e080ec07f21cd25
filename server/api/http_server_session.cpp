// One HTTP connection: reading a request's header and body (or streaming an
// upload to its handler), handing it to the router on a worker, writing the
// answer (a file with ranges too), keep-alive, and closing.
#include <fcntl.h>
#include <unistd.h>

#include <future>
#include <limits>

#include "server/api/http_server_internal.h"
#include "server/metrics/metrics.h"

namespace reprise {

using http_internal::kChunk;
using http_internal::kDrainCap;
using http_internal::kUploadChunk;

namespace {

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

void Session::ReadHeader() {
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

void Session::OnHeader(beast::error_code ec) {
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
  started_ = std::chrono::steady_clock::now();
  metric_route_ = "unmatched";
  auto& msg = header_->get();
  req_ = HttpRequest{};
  req_.method = std::string(msg.method_string());
  head_only_ = req_.method == "HEAD";
  if (head_only_) req_.method = "GET";
  for (const auto& field : msg)
    req_.headers[Lower(std::string_view(field.name_string().data(), field.name_string().size()))] =
        std::string(field.value());
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

void Session::OnDecision(RequestRouter::Decision decision) {
  if (decision.matched)
    metric_route_ = decision.matched->pattern;
  else if (req_.path.rfind("/api/", 0) != 0)
    metric_route_ = "static";
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

void Session::ReadBody() {
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

void Session::RunUpload() {
  auto length = header_->content_length();
  upload_by_length_ = length.has_value() && !header_->chunked();
  if (upload_by_length_) {
    // Beast's parser would copy every byte and read at most 64 KiB at a time
    // (often 512 bytes: its buffer is only as large as the header was).
    upload_left_ = *length;
    upload_abandoned_ = false;
    if (upload_left_ > 0)
      for (auto& buf : upload_bufs_) buf.resize(std::min<uint64_t>(kUploadChunk, upload_left_));
  } else {
    upload_.emplace(std::move(*header_));
    upload_->body_limit(static_cast<uint64_t>(options().max_upload_body));
    upload_buf_.resize(kChunk);
  }
  OnWorker(
      [](Session& s) {
        BodyReader reader = [&s](const std::function<bool(const char*, size_t)>& sink) {
          return s.upload_by_length_ ? s.PullLengthBody(sink) : s.PullUpload(sink);
        };
        HttpResponse res = s.impl_.router->RunStreaming(*s.route_, s.req_, reader);
        if (s.upload_too_large_) res = s.TooLarge(s.options().max_upload_body);
        s.OnStrand([res = std::move(res)](Session& s2) mutable {
          s2.upload_bufs_[0] = {};
          s2.upload_bufs_[1] = {};
          s2.Respond(std::move(res));
        });
      },
      true);
}

bool Session::PullUpload(const std::function<bool(const char*, size_t)>& sink) {
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

bool Session::PullLengthBody(const std::function<bool(const char*, size_t)>& sink) {
  if (request_complete_) return true;
  int current = 0;
  ChunkRead pending = ReadUploadChunk(upload_bufs_[0].data(), upload_bufs_[0].size());
  // Each round waits for one chunk; the body has an end, so this ends.
  for (;;) {
    auto [ec, n] = pending.get();
    if (ec) return false;  // cut off, too slow, or the server stops
    const bool last = request_complete_;
    std::vector<char>& next = upload_bufs_[current ^ 1];
    if (!last) pending = ReadUploadChunk(next.data(), next.size());
    if (n > 0 && !sink(upload_bufs_[current].data(), n)) {
      // The handler has enough: the read ahead is cancelled, and its buffer
      // stays untouched once it has returned.
      if (!last) {
        asio::post(stream_.get_executor(), [this] {
          upload_abandoned_ = true;
          stream_.cancel();
        });
        (void)pending.get();
      }
      return true;
    }
    if (last) return true;
    current ^= 1;
  }
}

Session::ChunkRead Session::ReadUploadChunk(char* data, size_t capacity) {
  // Shared: the io thread may still be inside set_value when the worker
  // wakes up and goes on.
  auto read = std::make_shared<std::promise<std::pair<beast::error_code, size_t>>>();
  ChunkRead got = read->get_future();
  asio::post(stream_.get_executor(), [this, read, data, capacity] {
    if (closed_ || upload_abandoned_) return read->set_value({asio::error::operation_aborted, 0});
    const size_t want = static_cast<size_t>(std::min<uint64_t>(capacity, upload_left_));
    // The body's first bytes may have come with the header.
    const size_t buffered = std::min(want, buffer_.size());
    if (buffered > 0) {
      asio::buffer_copy(asio::buffer(data, buffered), buffer_.data());
      buffer_.consume(buffered);
      upload_left_ -= buffered;
    }
    FillUploadChunk(read, data, want, buffered);
  });
  return got;
}

void Session::FillUploadChunk(
    std::shared_ptr<std::promise<std::pair<beast::error_code, size_t>>> read, char* data,
    size_t want, size_t have) {
  if (have == want) {
    if (upload_left_ == 0) request_complete_ = true;
    return read->set_value({beast::error_code{}, have});
  }
  if (closed_ || upload_abandoned_) return read->set_value({asio::error::operation_aborted, have});
  // The idle deadline: for each read, not for the whole chunk.
  stream_.expires_after(options().upload_idle_timeout);
  stream_.async_read_some(
      asio::buffer(data + have, want - have),
      [this, read = std::move(read), data, want, have](beast::error_code ec, size_t n) mutable {
        stream_.expires_never();
        upload_left_ -= n;
        if (ec) return read->set_value({ec, have + n});
        FillUploadChunk(std::move(read), data, want, have + n);
      });
}

void Session::Respond(HttpResponse res) {
  route_ = nullptr;
  if (Metrics* m = impl_.options.metrics) {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
    m->ObserveHttp(req_.method, metric_route_, res.status, took.count());
  }
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

void Session::AfterResponse(beast::error_code ec) {
  stream_.expires_never();
  if (ec) return Shutdown();
  if (keep_alive_ && !impl_.stopping) return ReadHeader();
  LingerClose();
}

void Session::SendFile(HttpResponse res) {
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

void Session::SendFileChunk() {
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
  http::async_write(stream_, *file_sr_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec == http::error::need_buffer) return self->SendFileChunk();
    ::close(self->file_fd_);
    self->file_fd_ = -1;
    self->file_sr_.reset();
    self->file_msg_.reset();
    self->AfterResponse(ec);
  });
}

void Session::LingerClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (request_complete_) return Shutdown();
  hangup_buf_.resize(64 << 10);
  stream_.expires_after(options().header_timeout);
  Drain(0);
}

void Session::Drain(size_t drained) {
  stream_.async_read_some(asio::buffer(hangup_buf_),
                          [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                            if (ec || drained + n > kDrainCap) return self->Shutdown();
                            self->Drain(drained + n);
                          });
}

void Session::Shutdown() {
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

}  // namespace reprise
