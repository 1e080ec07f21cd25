// RawAgent: a hand-written agent speaking the protocol over a blocking
// socket, for tests that try what a compromised agent could. Not
// thread-safe: one test thread uses it.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "agents/protocol/protocol.h"

namespace reprise::testing {

// A hand-written agent speaking the protocol over a blocking socket, to
// try what a compromised agent could.
class RawAgent {
 public:
  explicit RawAgent(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawAgent() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Send(const nlohmann::json& h, const std::string& payload = "") {
    auto bytes = protocol::EncodeFrame(h.dump(), payload);
    REQUIRE(bytes.ok());
    REQUIRE(::send(fd_, bytes->data(), bytes->size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes->size()));
  }
  void SendRaw(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  // The next frame's header (and its payload into `payload`), or null when
  // the connection ended.
  nlohmann::json Read(std::string* payload = nullptr) {
    while (true) {
      if (auto f = decoder_.Next()) {
        if (payload) *payload = std::move(f->payload);
        return nlohmann::json::parse(f->header);
      }
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return nullptr;
      REQUIRE(decoder_.Feed(std::string_view(buf, static_cast<size_t>(n))).ok());
    }
  }
  // Sends what it can; the peer may close the connection meanwhile.
  void SendRawBestEffort(const std::string& bytes) {
    (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  // hello; returns the challenge (or refused) header, null when closed.
  nlohmann::json Hello(const std::string& name, const protocol::Identity& id,
                       const std::string& token) {
    Send({{"type", "hello"},
          {"protocol", protocol::kProtocolVersion},
          {"name", name},
          {"version", "rogue"},
          {"public_key", id.public_key_hex()},
          {"enroll_token", token}});
    return Read();
  }
  // auth in answer to `challenge`; returns the welcome (or refused) header.
  nlohmann::json Auth(const std::string& name, const protocol::Identity& id,
                      const nlohmann::json& challenge) {
    Send({{"type", "auth"},
          {"signature",
           *id.Sign(protocol::AuthMessage(challenge["nonce"].get<std::string>(), name, ""))}});
    return Read();
  }
  // hello + auth; returns the welcome (or refused) header.
  nlohmann::json Handshake(const std::string& name, const protocol::Identity& id,
                           const std::string& token) {
    auto ch = Hello(name, id, token);
    if (ch.is_null() || ch["type"] != "challenge") return ch;
    return Auth(name, id, ch);
  }

 private:
  int fd_ = -1;
  protocol::FrameDecoder decoder_;
};

}  // namespace reprise::testing
