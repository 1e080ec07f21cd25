// Channel::HoldReads: a receiver slower than the wire stops reading frames
// (the peer's sends wait in TCP) and resumes on ReleaseReads; what the
// in-memory blob fetch bounds its memory with. Two real channels over a
// loopback TCP connection (port chosen by the OS).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "agents/protocol/channel.h"
#include "tests/support/wait.h"

namespace reprise::protocol {
namespace {

using testing::WaitUntil;

struct Pair {
  asio::io_context io;
  std::shared_ptr<Channel> sender, receiver;
  std::thread thread;

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    tcp::socket server = acceptor.accept();
    sender = std::make_shared<Channel>(std::move(client), nullptr, false);
    receiver = std::make_shared<Channel>(std::move(server), nullptr, true);
  }
  ~Pair() {
    sender->Close("done", false);
    receiver->Close("done", false);
    io.stop();
    if (thread.joinable()) thread.join();
  }
  void Run() {
    thread = std::thread([this] { io.run(); });
  }
};

TEST_CASE("held reads stop the frames until released, then every frame arrives in order") {
  Pair p;
  constexpr int kFrames = 40;  // 40 MiB: far more than the sockets buffer
  constexpr int kHoldAt = 3;
  std::atomic<int> received{0}, written{0}, out_of_order{0};
  p.sender->Start([](const Status&) {}, [](Frame) {}, [](const std::string&) {});
  p.receiver->Start([](const Status&) {},
                    [&](Frame f) {
                      if (f.header != std::to_string(received.load())) ++out_of_order;
                      if (++received == kHoldAt) p.receiver->HoldReads();  // io thread
                    },
                    [](const std::string&) {});
  for (int i = 0; i < kFrames; ++i) {
    REQUIRE(p.sender->Send(std::to_string(i), std::string(1 << 20, 'x'), [&] { ++written; }).ok());
  }
  p.Run();
  REQUIRE(WaitUntil([&] { return received.load() == kHoldAt; }));
  // The sender's writes stall once the sockets are full: it cannot have
  // written them all while nothing is read.
  REQUIRE(WaitUntil([&] { return written.load() >= kHoldAt + 2; }));
  CHECK(received.load() == kHoldAt);
  CHECK(written.load() < kFrames);
  p.receiver->ReleaseReads();
  REQUIRE(WaitUntil([&] { return received.load() == kFrames; }));
  CHECK(written.load() == kFrames);
  CHECK(out_of_order.load() == 0);
}

}  // namespace
}  // namespace reprise::protocol
