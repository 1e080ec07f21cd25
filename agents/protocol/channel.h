// Channel: one framed agent connection over Boost.Asio, plain TCP or TLS.
// Used by both ends (server/hub/agent_hub.cpp, agents/agent/agent_client.cpp).
//
// Includes Boost.Asio and OpenSSL: include it only from those .cpp files.
//
// Thread-safety: all callbacks run on the io_context's thread (the hub and
// the agent each run one). Send() and Close() may be called from any thread;
// they post to the io_context. A channel holds no buffer while idle except
// the 8-byte frame prefix, so thousands of idle agents stay cheap.
#pragma once

// Boost 1.74 + GCC 12: awaitable.hpp needs <utility> first.
#include <utility>
// clang-format off
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on
#include <openssl/x509.h>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "agents/protocol/protocol.h"
#include "common/crypto.h"

namespace reprise::protocol {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// SHA-256 of an X509's DER encoding, "" on failure.
inline std::string X509Fingerprint(X509* cert) {
  if (cert == nullptr) return "";
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return "";
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &p);
  return Sha256Hex(der);
}

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  using ReadyHandler = std::function<void(const Status&)>;
  using FrameHandler = std::function<void(Frame)>;
  using CloseHandler = std::function<void(const std::string& why)>;

  // `tls` null: plain TCP. `is_server` picks the TLS handshake side.
  Channel(tcp::socket socket, asio::ssl::context* tls, bool is_server)
      : executor_(socket.get_executor()), is_server_(is_server) {
    if (tls != nullptr) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket), *tls);
    } else {
      plain_ = std::make_unique<tcp::socket>(std::move(socket));
    }
  }

  // Client side: the server certificate's SHA-256 must equal `expected`
  // ("" : accept any and report it through peer_fingerprint(), for trust on
  // first use).
  void set_expected_fingerprint(std::string expected) { expected_fp_ = std::move(expected); }
  // The server certificate's fingerprint (client side, after the handshake).
  const std::string& peer_fingerprint() const { return peer_fp_; }
  std::string remote_address() const {
    boost::system::error_code ec;
    auto ep = lowest().remote_endpoint(ec);
    return ec ? "" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void Start(ReadyHandler on_ready, FrameHandler on_frame, CloseHandler on_close) {
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
    boost::system::error_code ec;
    lowest().set_option(tcp::no_delay(true), ec);
    if (!tls_) {
      on_ready(Status::Ok());
      ReadPrefix();
      return;
    }
    if (!is_server_) {
      tls_->set_verify_mode(asio::ssl::verify_peer);
      // Runs only during the handshake, whose handler keeps `this` alive.
      Channel* self = this;
      tls_->set_verify_callback([self](bool, asio::ssl::verify_context& ctx) {
        X509_STORE_CTX* store = ctx.native_handle();
        if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
        std::string fp = X509Fingerprint(X509_STORE_CTX_get_current_cert(store));
        self->peer_fp_ = fp;
        return self->expected_fp_.empty() || ConstantTimeEquals(fp, self->expected_fp_);
      });
    }
    auto self = shared_from_this();
    tls_->async_handshake(
        is_server_ ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
        [self, on_ready](const boost::system::error_code& e) {
          if (e) {
            Status st =
                Unauthenticated("TLS handshake failed" +
                                std::string(!self->is_server_ && !self->expected_fp_.empty() &&
                                                    self->peer_fp_ != self->expected_fp_
                                                ? ": the server certificate fingerprint " +
                                                      self->peer_fp_ + " is not the pinned one"
                                                : ": " + e.message()));
            on_ready(st);
            self->DoClose(st.message());
            return;
          }
          on_ready(Status::Ok());
          self->ReadPrefix();
        });
  }

  // Queues a frame. `on_written` runs on the io thread once it is on the
  // wire (flow control for streams). A closed channel drops it silently.
  // kTooLarge (and nothing sent) when the frame is over the protocol's
  // limits: only this message fails, the connection and whatever else runs
  // over it carry on.
  Status Send(std::string header, std::string payload = {},
              std::function<void()> on_written = nullptr) {
    // The prefix and header encoded; the payload (megabytes of a blob)
    // written from its own string, not copied behind them.
    auto encoded = EncodeFrame(header, {});
    if (!encoded.ok()) return encoded.status();
    if (payload.size() > kMaxPayloadBytes) {
      return TooLarge("a message payload of " + std::to_string(payload.size()) +
                      " bytes exceeds the " + std::to_string(kMaxPayloadBytes) + "-byte limit");
    }
    std::string head = std::move(encoded).value();
    PatchPayloadSize(head, payload.size());
    auto self = shared_from_this();
    asio::post(executor_, [self, head = std::move(head), payload = std::move(payload),
                           cb = std::move(on_written)]() mutable {
      if (self->closed_) return;
      self->queued_bytes_ += head.size() + payload.size();
      self->queue_.push_back({std::move(head), std::move(payload), std::move(cb)});
      if (!self->writing_) self->WriteNext();
    });
    return Status::Ok();
  }

  // The largest frame (header + payload) accepted from the peer from the
  // next frame on; a larger one ends the connection before its bytes are
  // read. The server keeps it small until the agent has authenticated.
  // Before Start or on the io thread (from a frame handler).
  void set_max_frame_bytes(uint64_t bytes) { max_frame_bytes_ = bytes; }

  // Closes the connection. With `flush`, frames already queued are written
  // first (a `refused` message reaches the peer); without, at once.
  void Close(std::string why, bool flush = true) {
    auto self = shared_from_this();
    asio::post(executor_, [self, why = std::move(why), flush] {
      if (flush && self->writing_) {
        self->close_after_flush_ = true;
        self->close_why_ = why;
        return;
      }
      self->DoClose(why);
    });
  }

  // Flow control for a receiver slower than the wire: while reads are held
  // the channel reads no further frame (the peer's sends wait in TCP).
  // HoldReads() on the io thread only (from a frame handler: the frame being
  // handled is the last one read); ReleaseReads() from any thread, once per
  // hold. Reading resumes when every hold is released.
  void HoldReads() { ++read_holds_; }
  void ReleaseReads() {
    auto self = shared_from_this();
    asio::post(executor_, [self] {
      if (self->read_holds_ > 0) --self->read_holds_;
      if (self->read_holds_ == 0 && self->read_held_ && !self->closed_) {
        self->read_held_ = false;
        self->ReadPrefix();
      }
    });
  }

  // On the io thread only.
  bool closed() const { return closed_; }
  bool reads_held() const { return read_holds_ > 0; }
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  struct Out {
    std::string head;  // prefix and header
    std::string payload;
    std::function<void()> on_written;
  };

  // The prefix's payload length (its second big-endian u32) set to `size`.
  static void PatchPayloadSize(std::string& head, size_t size) {
    for (int i = 0; i < 4; ++i) {
      head[4 + static_cast<size_t>(i)] = static_cast<char>((size >> (8 * (3 - i))) & 0xff);
    }
  }

  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : *plain_; }
  const tcp::socket& lowest() const { return tls_ ? tls_->next_layer() : *plain_; }

  // Calls f with the stream the frames go through: TLS, or the plain socket.
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(*plain_);
    }
  }
  template <typename Buffers, typename Handler>
  void AsyncRead(const Buffers& b, Handler&& h) {
    WithStream([&](auto& stream) { asio::async_read(stream, b, std::forward<Handler>(h)); });
  }
  template <typename Buffers, typename Handler>
  void AsyncWrite(const Buffers& b, Handler&& h) {
    WithStream([&](auto& stream) { asio::async_write(stream, b, std::forward<Handler>(h)); });
  }

  void ReadPrefix() {
    auto self = shared_from_this();
    AsyncRead(asio::buffer(prefix_), [self](const boost::system::error_code& e, size_t) {
      if (e) return self->DoClose(e == asio::error::eof ? "closed by peer" : e.message());
      uint32_t hl = 0, pl = 0;
      Status st = DecodePrefix(self->prefix_.data(), &hl, &pl);
      if (!st.ok()) return self->DoClose("protocol violation: " + st.message());
      if (uint64_t{hl} + pl > self->max_frame_bytes_) {
        return self->DoClose("protocol violation: a frame of " + std::to_string(uint64_t{hl} + pl) +
                             " bytes is over the " + std::to_string(self->max_frame_bytes_) +
                             "-byte limit");
      }
      // Read straight into the frame's two strings: a payload of megabytes
      // is handed on without a copy.
      self->header_.resize(hl);
      self->payload_.resize(pl);
      self->ReadBody();
    });
  }

  void ReadBody() {
    auto self = shared_from_this();
    std::array<asio::mutable_buffer, 2> parts{asio::buffer(header_), asio::buffer(payload_)};
    AsyncRead(parts, [self](const boost::system::error_code& e, size_t) {
      if (e) return self->DoClose(e == asio::error::eof ? "closed by peer" : e.message());
      Frame f;
      // Moved out: idle connections hold no buffer.
      f.header = std::move(self->header_);
      f.payload = std::move(self->payload_);
      self->header_ = std::string();
      self->payload_ = std::string();
      if (self->on_frame_) self->on_frame_(std::move(f));
      if (self->closed_) return;
      if (self->read_holds_ > 0) {
        self->read_held_ = true;  // ReleaseReads() reads on
        return;
      }
      self->ReadPrefix();
    });
  }

  void WriteNext() {
    if (queue_.empty() || closed_) {
      writing_ = false;
      if (close_after_flush_ && !closed_) DoClose(close_why_);
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    const Out& out = queue_.front();
    std::array<asio::const_buffer, 2> parts{asio::buffer(out.head), asio::buffer(out.payload)};
    AsyncWrite(parts, [self](const boost::system::error_code& e, size_t) {
      if (self->closed_) {
        self->writing_ = false;
        return;
      }
      if (e) return self->DoClose(e.message());
      Out done = std::move(self->queue_.front());
      self->queue_.pop_front();
      self->queued_bytes_ -= done.head.size() + done.payload.size();
      if (done.on_written) done.on_written();
      self->WriteNext();
    });
  }

  void DoClose(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    lowest().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close(ec);
    // The queue is freed with the channel: a write in flight still points into it.
    // Its callbacks are not: one may hold what holds this channel (a blob
    // stream holds its connection), a cycle that would never be freed.
    for (Out& out : queue_) out.on_written = nullptr;
    auto cb = std::move(on_close_);
    on_frame_ = nullptr;
    on_close_ = nullptr;
    if (cb) cb(why);
  }

  asio::any_io_executor executor_;
  bool is_server_;
  std::unique_ptr<tcp::socket> plain_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  std::string expected_fp_;
  std::string peer_fp_;
  std::array<unsigned char, kPrefixBytes> prefix_{};
  uint64_t max_frame_bytes_ = kMaxFrameBytes;
  std::string header_;   // of the frame being read
  std::string payload_;  // of the frame being read
  std::deque<Out> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  int read_holds_ = 0;      // HoldReads() not yet released
  bool read_held_ = false;  // a frame's read waits for the holds' release
  bool closed_ = false;
  bool close_after_flush_ = false;
  std::string close_why_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
};

}  // namespace reprise::protocol
