// RawHttp: a plain TCP connection to 127.0.0.1 for tests that must send bytes
// no HTTP client library would (trickled headers, bodies without a length,
// invalid UTF-8). Every read waits at most a bounded time. Not thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace reprise::testing {

class RawHttp {
 public:
  explicit RawHttp(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Close();
  }
  ~RawHttp() { Close(); }
  RawHttp(const RawHttp&) = delete;
  RawHttp& operator=(const RawHttp&) = delete;
  RawHttp(RawHttp&& other) noexcept
      : fd_(other.fd_), received_(std::move(other.received_)), eof_(other.eof_) {
    other.fd_ = -1;
  }

  bool connected() const { return fd_ >= 0; }
  bool eof() const { return eof_; }
  const std::string& received() const { return received_; }

  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (fd_ >= 0 && sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return fd_ >= 0;
  }

  // Reads until `needle` has arrived, the peer closed, or `limit` passed.
  bool ReadUntil(const std::string& needle,
                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (received_.find(needle) == std::string::npos) {
      if (!ReadSome(deadline)) return received_.find(needle) != std::string::npos;
    }
    return true;
  }

  // Reads until the peer closes the connection or `limit` passed; true on close.
  bool ReadToEof(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!eof_) {
      if (!ReadSome(deadline)) break;
    }
    return eof_;
  }

  // Sends a whole request and reads the response; with `close` the request
  // asks the server to close the connection after it.
  std::string Exchange(const std::string& request,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    Send(request);
    ReadToEof(limit);
    return received_;
  }

  // The status code of the first response received (0: none yet).
  int Status() const {
    if (received_.rfind("HTTP/1.1 ", 0) != 0 || received_.size() < 12) return 0;
    return std::stoi(received_.substr(9, 3));
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool ReadSome(std::chrono::steady_clock::time_point deadline) {
    if (fd_ < 0 || eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    received_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string received_;
  bool eof_ = false;
};

}  // namespace reprise::testing
