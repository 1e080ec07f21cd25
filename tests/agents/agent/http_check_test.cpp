// The http-check operation against a real cpp-httplib server on 127.0.0.1:
// retries until the expected status, failure after the last attempt, a
// refused connection, cancellation during the delay, URL parsing, and the
// dispatch through AgentRunner::Run.
#include "agents/agent/http_check.h"

#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agents/agent/runner.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

// Answers GET /health with 503 for the first `failures` requests, then
// `final_status`.
class HealthServer {
 public:
  HealthServer(int failures, int final_status) {
    server_.set_keep_alive_timeout(1);
    server_.Get("/health",
                [this, failures, final_status](const httplib::Request&, httplib::Response& res) {
                  int n = ++requests_;
                  res.status = n <= failures ? 503 : final_status;
                  res.set_content("status " + std::to_string(res.status), "text/plain");
                });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HealthServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path = "/health") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// Collects log lines; safe to read from another thread.
struct Lines {
  std::mutex mu;
  std::vector<std::string> lines;
  RunnerLog Log() {
    return [this](LogLevel, std::string_view text) {
      std::lock_guard<std::mutex> g(mu);
      lines.emplace_back(text);
    };
  }
  size_t size() {
    std::lock_guard<std::mutex> g(mu);
    return lines.size();
  }
  bool Has(const std::string& s) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& l : lines) {
      if (l == s) return true;
    }
    return false;
  }
};

HttpCheckOp Check(std::string url, int retries, int delay = 0) {
  HttpCheckOp op;
  op.url = std::move(url);
  op.expect_status = 200;
  op.retries = retries;
  op.delay_seconds = delay;
  op.timeout_seconds = 5;
  return op;
}

TEST_CASE("http-check succeeds once the service answers the expected status") {
  HealthServer server(2, 200);
  Lines log;
  CancelToken cancel;
  auto out = RunHttpCheck(Check(server.Url(), 10), log.Log(), cancel);
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
  CHECK(server.requests() == 3);
  CHECK(log.Has("attempt 1/11: GET " + server.Url() + " -> 503, expected 200"));
  CHECK(log.Has("attempt 2/11: GET " + server.Url() + " -> 503, expected 200"));
  CHECK(log.Has("attempt 3/11: GET " + server.Url() + " -> 200"));
  CHECK(log.size() == 3);
}

TEST_CASE("http-check through AgentRunner::Run, with a delay between attempts") {
  HealthServer server(1, 204);
  TempDir tmp;
  AgentRunner runner(RunnerOptions{tmp.path(), false, {}, 100});
  struct NoBlobs : BlobSource {
    Result<Fetched> Fetch(const std::string&, const std::filesystem::path&, const CancelToken&,
                          const ProgressFn&) override {
      return NotFound("no blobs here");
    }
  } blobs;
  Lines log;
  CancelToken cancel;
  HttpCheckOp op = Check(server.Url(), 2, 1);  // one real 1 s wait
  op.expect_status = 204;
  auto out = runner.Run((tmp.path() / "target").string(), op, {}, blobs, log.Log(), cancel);
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
  CHECK(server.requests() == 2);
  CHECK(log.Has("attempt 1/3: GET " + server.Url() + " -> 503, expected 204"));
  CHECK(log.Has("attempt 2/3: GET " + server.Url() + " -> 204"));
}

TEST_CASE("http-check fails after the last attempt with the status it got") {
  HealthServer server(0, 500);
  Lines log;
  CancelToken cancel;
  auto out = RunHttpCheck(Check(server.Url(), 3), log.Log(), cancel);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message ==
        "http-check: " + server.Url() + " answered 500 after 4 attempts, expected 200");
  CHECK(server.requests() == 4);
  CHECK(log.Has("attempt 4/4: GET " + server.Url() + " -> 500, expected 200"));

  // An unknown path is a 404 like any other status.
  auto missing = RunHttpCheck(Check(server.Url("/nope"), 0), log.Log(), cancel);
  CHECK(missing.message ==
        "http-check: " + server.Url("/nope") + " answered 404 after 1 attempt, expected 200");
}

TEST_CASE("http-check fails when nothing listens on the port") {
  // A bound socket that never listens: connecting to it is refused, and no
  // other test can take the port meanwhile.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/health";

  Lines log;
  CancelToken cancel;
  auto out = RunHttpCheck(Check(url, 2), log.Log(), cancel);
  ::close(fd);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message == "http-check: GET " + url + ": cannot connect (after 3 attempts)");
  CHECK(log.Has("attempt 3/3: GET " + url + ": cannot connect"));
}

TEST_CASE("https to a server that does not speak TLS fails the handshake") {
  HealthServer server(0, 200);
  std::string url = server.Url();
  url.replace(0, 4, "https");
  Lines log;
  CancelToken cancel;
  auto out = RunHttpCheck(Check(url, 0), log.Log(), cancel);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message == "http-check: GET " + url + ": TLS handshake failed (after 1 attempt)");
}

TEST_CASE("cancelling during the delay stops the check") {
  HealthServer server(1000, 200);
  Lines log;
  CancelToken cancel;
  // Without cancellation this would wait 60 s between attempts.
  auto run = std::async(std::launch::async, [&] {
    return RunHttpCheck(Check(server.Url(), 5, 60), log.Log(), cancel);
  });
  while (log.size() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  cancel.Cancel();
  REQUIRE(run.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto out = run.get();
  CHECK(out.kind == OperationOutcome::Kind::kError);
  CHECK(out.error.code() == Code::kCancelled);
  CHECK(server.requests() == 1);

  // Already cancelled: no request at all.
  auto again = RunHttpCheck(Check(server.Url(), 0), log.Log(), cancel);
  CHECK(again.error.code() == Code::kCancelled);
  CHECK(server.requests() == 1);
}

TEST_CASE("http-check refuses URLs it cannot check, naming them") {
  Lines log;
  CancelToken cancel;
  auto out = RunHttpCheck(Check("ftp://example.com/health", 3), log.Log(), cancel);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message ==
        "http-check: cannot check 'ftp://example.com/health': only http:// and https:// URLs can "
        "be checked");
  CHECK(log.size() == 0);
  for (const char* bad :
       {"localhost:8080/health", "http://", "http://:80/", "http://host:0/", "http://host:99999/",
        "http://host:8x/", "http://host:/x", "http://[::1/", "http://ho st/"}) {
    auto r = RunHttpCheck(Check(bad, 0), log.Log(), cancel);
    CHECK_MESSAGE(r.kind == OperationOutcome::Kind::kFailed, bad);
    CHECK_MESSAGE(r.message.find(std::string("'") + bad + "'") != std::string::npos, r.message);
  }
}

TEST_CASE("ParseHttpUrl") {
  auto u = ParseHttpUrl("HTTP://127.0.0.1:8080/health?full=1#top");
  REQUIRE(u.ok());
  CHECK(u->scheme == "http");
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8080);
  CHECK(u->path == "/health?full=1");
  CHECK(u->userinfo.empty());

  u = ParseHttpUrl("https://example.com");
  REQUIRE(u.ok());
  CHECK(u->port == 443);
  CHECK(u->path == "/");

  u = ParseHttpUrl("http://user:pw@[::1]:81?q");
  REQUIRE(u.ok());
  CHECK(u->host == "::1");
  CHECK(u->port == 81);
  CHECK(u->path == "/?q");
  CHECK(u->userinfo == "user:pw");

  u = ParseHttpUrl("http://example.com/");
  REQUIRE(u.ok());
  CHECK(u->port == 80);
}

}  // namespace
}  // namespace reprise
