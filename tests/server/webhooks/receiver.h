// Receiver: an HTTP server on 127.0.0.1 (port 0) standing in for a webhook
// endpoint in tests. It records every delivery, checks its signature with
// kReceiverSecret, and answers the codes it was told (then 200).
//
// Thread-safety: its methods may be called from any thread; requests are
// served on its own thread.
#pragma once

#include <doctest/doctest.h>
#include <httplib.h>

#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "tests/support/wait.h"

namespace reprise::testing {

inline constexpr const char* kReceiverSecret = "receiver-secret-0123456789";

// One request the receiver got.
struct Received {
  std::string event;
  std::string delivery;
  std::string timestamp;
  std::string signature;
  std::string body;
  bool signature_ok = false;
};

// An HTTP receiver on 127.0.0.1, port 0: records what it gets, checks the
// signature with kReceiverSecret, and answers the codes it was told (then 200).
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      Received r{req.get_header_value("X-Reprise-Event"),
                 req.get_header_value("X-Reprise-Delivery"),
                 req.get_header_value("X-Reprise-Timestamp"),
                 req.get_header_value("X-Reprise-Signature"),
                 req.body,
                 false};
      r.signature_ok =
          ConstantTimeEquals(r.signature, "sha256=" + HmacSha256Hex(kReceiverSecret, req.body));
      std::lock_guard lock(mu_);
      received_.push_back(r);
      res.status = codes_.empty() ? 200 : codes_.front();
      if (!codes_.empty()) codes_.pop_front();
      res.set_content("{}", "application/json");
    });
    server_.set_keep_alive_timeout(1);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    REQUIRE(WaitUntil([&] { return server_.is_running(); }));
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  void AnswerNext(std::initializer_list<int> codes) {
    std::lock_guard lock(mu_);
    codes_.insert(codes_.end(), codes.begin(), codes.end());
  }
  void AnswerAlways(int code) {
    std::lock_guard lock(mu_);
    codes_.assign(1000, code);
  }
  std::vector<Received> received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  size_t count() { return received().size(); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::deque<int> codes_;
  std::vector<Received> received_;
};

}  // namespace reprise::testing
