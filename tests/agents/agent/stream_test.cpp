// A remote agent extracts an artifact while it arrives: a real hub, a real
// reprise-agent process, and a loopback relay between them that can hold the
// server's bytes after a point, or cut the connection. Every failure of the
// transfer (a wrong sha256, a cut connection, a server error) leaves no
// release, no switched `current` and nothing in the agent's tmp/.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <random>

#include "tests/server/hub/hub_test_support.h"

namespace reprise::testing {
namespace {

// Relays loopback TCP connections to `upstream_port`. The server-to-client
// direction can be held once a number of bytes went through (until
// Release or Cut), and every open connection can be cut. Connections made
// after a cut are relayed freely.
class Relay {
 public:
  explicit Relay(int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~Relay() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
      holding_ = false;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    ::shutdown(listen_fd_, SHUT_RDWR);
    // Pump threads are added only by the accept loop, which has ended once
    // its thread is joined.
    accept_thread_.join();
    for (auto& t : threads_) t.join();
    ::close(listen_fd_);
    for (int fd : fds_) ::close(fd);
  }
  int port() const { return port_; }

  // Holds the server's bytes once `bytes` more went through.
  void HoldAfter(uint64_t bytes) {
    std::lock_guard<std::mutex> g(mu_);
    holding_ = true;
    hold_at_ = forwarded_ + bytes;
  }
  bool Held() {
    std::lock_guard<std::mutex> g(mu_);
    return holding_ && forwarded_ >= hold_at_;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> g(mu_);
      holding_ = false;
    }
    cv_.notify_all();
  }
  // Cuts every open connection (both ways) and stops holding.
  void Cut() {
    {
      std::lock_guard<std::mutex> g(mu_);
      holding_ = false;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
  }

 private:
  void AcceptLoop() {
    for (int accepted = 0; accepted < 64; ++accepted) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        if (server >= 0) ::close(server);
        continue;
      }
      std::lock_guard<std::mutex> g(mu_);
      fds_.push_back(client);
      fds_.push_back(server);
      if (stopping_) {
        ::shutdown(client, SHUT_RDWR);
        ::shutdown(server, SHUT_RDWR);
      }
      threads_.emplace_back([this, client, server] { Pump(client, server, false); });
      threads_.emplace_back([this, client, server] { Pump(server, client, true); });
    }
  }

  // Copies `from` to `to` until either ends; ends both then.
  void Pump(int from, int to, bool from_server) {
    std::vector<char> buf(64 << 10);
    for (;;) {
      ssize_t n = ::read(from, buf.data(), buf.size());
      if (n <= 0) break;
      if (from_server) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !holding_ || forwarded_ < hold_at_; });
        forwarded_ += static_cast<uint64_t>(n);
      }
      ssize_t off = 0;
      while (off < n) {
        ssize_t w = ::send(to, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) break;
        off += w;
      }
      if (off < n) break;
    }
    ::shutdown(to, SHUT_RDWR);
    ::shutdown(from, SHUT_RDWR);
  }

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool holding_ = false;
  uint64_t forwarded_ = 0;  // server-to-client bytes, all connections
  uint64_t hold_at_ = 0;
  std::vector<int> fds_;
  std::thread accept_thread_;
  std::vector<std::thread> threads_;  // pumps, added under mu_
};

DeployArtifactOp Deploy(const std::string& sha) { return {"web", sha, "", DeployMode::kAtomic, 3}; }

// 600 small files first (the extraction reports progress every 256 files),
// then 40 MiB that do not compress: the transfer is far from over when the
// small files are written.
std::map<std::string, std::string> StreamFiles(unsigned seed) {
  std::mt19937_64 rng(seed);
  auto random_bytes = [&rng](size_t size) {
    std::string s(size, '\0');
    for (size_t j = 0; j + 8 <= s.size(); j += 8) {
      uint64_t v = rng();
      std::memcpy(&s[j], &v, 8);
    }
    return s;
  };
  std::map<std::string, std::string> files;
  for (int i = 0; i < 600; ++i) files["a/small-" + std::to_string(1000 + i)] = random_bytes(2048);
  for (int i = 0; i < 10; ++i) files["b/big-" + std::to_string(i)] = random_bytes(4 << 20);
  files["index.html"] = "streamed build " + std::to_string(seed);
  return files;
}

std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// A hub, an agent connected through a relay, build 1 deployed.
struct StreamFixture {
  // Held bytes include the server's heartbeats: both sides wait long.
  HubFixture f{false, false,
               [](AgentHubOptions& o) { o.heartbeat_timeout = std::chrono::seconds(30); }};
  fs::path root = f.tmp.path() / "s";
  TargetInfo t{"s", "stream", root.string(), {}};
  std::unique_ptr<Relay> relay;
  std::unique_ptr<AgentProcess> agent;
  std::atomic<bool> extracted_some{false};

  StreamFixture() {
    relay = std::make_unique<Relay>(f.hub->port());
    f.AddTarget("s", "stream", root);
    agent = std::make_unique<AgentProcess>(
        std::vector<std::string>{"--server", "127.0.0.1:" + std::to_string(relay->port()), "--name",
                                 "stream", "--root", root.string(), "--heartbeat-ms", "5000",
                                 "--no-fsync", "--enroll-token", f.Token(true), "--plain"},
        f.tmp.path() / "stream-agent.log");
    REQUIRE_MESSAGE(f.WaitStatus("stream", "online"), agent->Log());
    std::string b1 = f.AddArtifact({{"index.html", "build 1"}});
    auto first = RunOn(*f.hub, t, Deploy(b1), "1");
    REQUIRE_MESSAGE(first.succeeded(), first.message);
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = [this](const std::string&, const TransferProgress& p) {
      if (p.phase == "extract" && p.files_done > 0) extracted_some = true;
    };
  }
  ~StreamFixture() {
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = nullptr;
  }

  // Runs deploy(sha) on a thread of its own while the relay holds the
  // server's bytes after 3 MiB; returns once files were extracted with the
  // rest of the artifact held back (false when that never happened).
  bool DeployHeld(const std::string& sha, std::thread& runner, OperationOutcome& out) {
    relay->HoldAfter(3 << 20);
    runner = std::thread([this, sha, &out] { out = RunOn(*f.hub, t, Deploy(sha), "2"); });
    return WaitUntil([&] { return relay->Held() && extracted_some; });
  }

  // Nothing of build 2 on the target: build 1 current, its release alone,
  // nothing in tmp/ once the agent has cleaned up.
  void CheckNothingLeft() {
    CHECK(ReadFile(root / "current/index.html") == "build 1");
    CHECK(Listing(root / ".reprise/releases").size() == 1);
    CHECK_MESSAGE(WaitUntil([&] { return Listing(root / ".reprise/tmp").empty(); }),
                  Listing(root / ".reprise/tmp").size());
  }
};

TEST_CASE("a remote agent writes files while the artifact is still arriving") {
  StreamFixture s;
  Manifest m2;
  std::string b2 = s.f.AddArtifact(StreamFiles(2), &m2);
  std::thread runner;
  OperationOutcome out;
  CHECK(s.DeployHeld(b2, runner, out));
  s.relay->Release();
  runner.join();
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
  CHECK(ReadFile(s.root / "current/index.html") == "streamed build 2");
  auto v = s.f.hub->Validate("s", m2);
  REQUIRE(v.ok());
  CHECK(v->ok());
  CHECK(Listing(s.root / ".reprise/tmp").empty());
  auto state = s.f.hub->GetTargetState("s");
  REQUIRE(state.ok());
  CHECK(state->build == "2");
}

TEST_CASE("a streamed update reuses the unchanged files of the live release") {
  StreamFixture s;
  std::string b2 = s.f.AddArtifact(StreamFiles(2));
  auto second = RunOn(*s.f.hub, s.t, Deploy(b2), "2");
  REQUIRE_MESSAGE(second.succeeded(), second.message);
  auto files = StreamFiles(2);
  files["index.html"] = "streamed build 3";
  Manifest m3;
  std::string b3 = s.f.AddArtifact(files, &m3);
  LogCollector logs;
  auto third = RunOn(*s.f.hub, s.t, Deploy(b3), "3", &logs);
  REQUIRE_MESSAGE(third.succeeded(), third.message);
  CHECK(logs.Contains("extracting it as it arrives"));
  CHECK(logs.Contains(" unchanged ("));
  CHECK(ReadFile(s.root / "current/index.html") == "streamed build 3");
  auto v = s.f.hub->Validate("s", m3);
  REQUIRE(v.ok());
  CHECK(v->ok());
}

TEST_CASE("an artifact whose bytes do not have its sha256 is refused after extraction") {
  StreamFixture s;
  std::string b2 = s.f.AddArtifact(StreamFiles(2));
  // The store's file now holds another valid archive: it extracts, but it
  // is not the blob.
  fs::path other = s.f.tmp.path() / "other.tar.gz";
  fs::path tree = s.f.NewTreeDir();
  fs::create_directories(tree);
  std::ofstream(tree / "index.html") << "not build 2";
  REQUIRE(CreateTarGz(tree, other).ok());
  auto path = s.f.blobs->Path(b2);
  REQUIRE(path.ok());
  fs::permissions(*path, fs::perms::owner_write, fs::perm_options::add);
  fs::rename(other, *path);
  LogCollector logs;
  auto out = RunOn(*s.f.hub, s.t, Deploy(b2), "2", &logs);
  CHECK_FALSE(out.succeeded());
  CHECK_MESSAGE(out.message.find("has sha256") != std::string::npos, out.message);
  s.CheckNothingLeft();
}

TEST_CASE("a connection cut while extracting leaves the previous release") {
  StreamFixture s;
  std::string b2 = s.f.AddArtifact(StreamFiles(2));
  std::thread runner;
  OperationOutcome out;
  CHECK(s.DeployHeld(b2, runner, out));
  s.relay->Cut();
  runner.join();
  CHECK_FALSE(out.succeeded());
  REQUIRE_MESSAGE(s.f.WaitStatus("stream", "online"), s.agent->Log());
  s.CheckNothingLeft();
  // The next deploy succeeds.
  auto again = RunOn(*s.f.hub, s.t, Deploy(b2), "2");
  REQUIRE_MESSAGE(again.succeeded(), again.message, again.error.ToString());
  CHECK(ReadFile(s.root / "current/index.html") == "streamed build 2");
}

TEST_CASE("a server error while extracting leaves the previous release") {
  StreamFixture s;
  std::string b2 = s.f.AddArtifact(StreamFiles(2));
  auto path = s.f.blobs->Path(b2);
  REQUIRE(path.ok());
  std::thread runner;
  OperationOutcome out;
  CHECK(s.DeployHeld(b2, runner, out));
  // The server reads the rest from a file cut short: it answers a read error.
  fs::permissions(*path, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(*path, fs::file_size(*path) / 2);
  s.relay->Release();
  runner.join();
  CHECK_FALSE(out.succeeded());
  CHECK_MESSAGE(out.message.find("transfer failed") != std::string::npos, out.message);
  s.CheckNothingLeft();
}

}  // namespace
}  // namespace reprise::testing
