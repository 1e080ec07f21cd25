// bench_http: the HTTP server under many slow or long-lived clients. Starts a
// real reprise-server on loopback and measures, with everything bounded:
//   - GET /api/v1/health latency (p50/p99) while N connections trickle their
//     headers one line at a time (target p99 < 50 ms with N = 1,000)
//   - N concurrent live log streams (SSE) of one running deployment: how many
//     receive every line and the end, how long the last one took, and the
//     server's RSS with them open (target < 150 MB with N = 1,000)
// Prints numbers; asserts nothing. bench/run_http.sh drives it.
//
//   bench_http --server BIN/reprise-server --work DIR [--trickle 1000]
//              [--streams 1000] [--lines 200] [--probes 500]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "tests/support/spawn.h"
#include "tests/support/wait.h"

namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

constexpr const char* kToken = "bench-http-token-0123456789abcdef0123";

struct Options {
  fs::path server, work;
  int trickle = 1000, streams = 1000, lines = 200, probes = 500;
};

double Ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void RaiseFdLimit() {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &l);
  }
}

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// One request on a fresh connection (Connection: close); the whole response.
std::string Request(int port, const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& type = "application/json") {
  int fd = Connect(port);
  if (fd < 0) return "";
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SendAll(fd, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                  kToken + "\r\nContent-Type: " + type + "\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

int StatusOf(const std::string& r) { return r.size() > 12 ? std::atoi(r.c_str() + 9) : 0; }

using reprise::testing::WaitUntil;

struct Server {
  pid_t pid = -1;
  int port = 0;
  bool Start(const Options& o) {
    fs::remove_all(o.work);
    fs::create_directories(o.work / "data" / "targets" / "web");
    fs::path log = o.work / "server.log";
    std::vector<std::string> args = {o.server.string(),
                                     "--data",
                                     (o.work / "data").string(),
                                     "--http",
                                     "127.0.0.1:0",
                                     "--agent-port",
                                     "0",
                                     "--agent-host",
                                     "127.0.0.1",
                                     "--agent-plain",
                                     "--local-agent"};
    std::vector<std::string> env = reprise::testing::InheritedEnvironment();
    env.push_back(std::string("REPRISE_ADMIN_TOKEN=") + kToken);
    pid = reprise::testing::Spawn({.argv = args, .env = env, .out = log});
    if (pid < 0) return false;
    return WaitUntil(
        [&] {
          std::ifstream in(log);
          std::string line;
          while (std::getline(in, line)) {
            auto at = line.find("listening on http://127.0.0.1:");
            if (at != std::string::npos) port = std::atoi(line.c_str() + at + 30);
          }
          return port > 0;
        },
        std::chrono::seconds(20));
  }
  ~Server() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Health latency while `n` connections trickle header lines.
void TrickleBench(const Options& o, int port) {
  std::vector<int> slow;
  for (int i = 0; i < o.trickle; ++i) {
    int fd = Connect(port);
    if (fd < 0) break;
    SendAll(fd, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    slow.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    for (int round = 0; round < 40 && !stop; ++round) {  // at most ~8 s
      for (int fd : slow) SendAll(fd, "X-Slow-" + std::to_string(round) + ": 1\r\n");
      for (int i = 0; i < 20 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::vector<double> ms;
  int failed = 0;
  auto end = Steady::now() + std::chrono::seconds(6);
  for (int i = 0; i < o.probes && Steady::now() < end; ++i) {
    auto t0 = Steady::now();
    int status = StatusOf(Request(port, "GET", "/api/v1/health"));
    ms.push_back(Ms(Steady::now() - t0));
    if (status != 200) ++failed;
  }
  stop = true;
  trickler.join();
  for (int fd : slow) ::close(fd);
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms.empty() ? -1.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))];
  };
  std::printf(
      "trickle: %zu connections trickling headers; %zu health probes, %d failed; "
      "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      slow.size(), ms.size(), failed, pct(0.50), pct(0.99), ms.empty() ? -1.0 : ms.back());
}

// Sets up an application whose deployment waits at a manual step, then logs `lines` lines.
std::string StartDeployment(const Options& o, int port) {
  Request(port, "PUT", "/api/v1/environments/Production", "{}");
  std::string target = (o.work / "data" / "targets" / "web").string();
  Request(port, "PUT", "/api/v1/targets/web",
          R"({"environment":"Production","agent":"local","path":")" + target + "\"}");
  std::string spec =
      "pipeline:\n  - {stage: Production, environment: Production, targets: [web], plan: p}\n"
      "plans:\n  p: |\n    - manual: { message: \"wait here\" }\n";
  for (int i = 1; i <= o.lines; ++i) spec += "    - log: \"line-" + std::to_string(i) + "\"\n";
  Request(port, "PUT", "/api/v1/applications/shop", spec, "application/yaml");
  Request(port, "POST", "/api/v1/applications/shop/releases", R"({"number":"1.0"})");
  Request(port, "POST", "/api/v1/applications/shop/releases/1.0/builds", "{}");
  std::string r = Request(port, "POST", "/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                          R"({"stage":"Production","force":true,"comment":"bench"})");
  auto at = r.find("\"id\":");
  if (StatusOf(r) != 202 || at == std::string::npos) {
    std::printf("streams: cannot start the deployment: %s\n", r.c_str());
    return "";
  }
  std::string id = std::to_string(std::atoll(r.c_str() + at + 5));
  bool waiting = WaitUntil(
      [&] {
        return Request(port, "GET", "/api/v1/deployments/" + id).find("\"manual\"") !=
               std::string::npos;
      },
      std::chrono::seconds(30));
  return waiting ? id : "";
}

void StreamBench(const Options& o, const Server& server) {
  std::string id = StartDeployment(o, server.port);
  if (id.empty()) return;
  long rss_before = RssKb(server.pid);
  struct Client {
    int fd = -1;
    std::string got;
    bool ended = false;
  };
  std::vector<Client> clients(static_cast<size_t>(o.streams));
  for (auto& c : clients) {
    c.fd = Connect(server.port);
    if (c.fd < 0) continue;
    SendAll(c.fd, "GET /api/v1/deployments/" + id +
                      "/log HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: Bearer " +
                      std::string(kToken) + "\r\nAccept: text/event-stream\r\n\r\n");
    ::fcntl(c.fd, F_SETFL, O_NONBLOCK);
  }
  // Reads what arrived on every client until `done` holds for all or time runs out.
  auto pump = [&](const std::function<bool(const Client&)>& done, std::chrono::seconds limit) {
    auto end = Steady::now() + limit;
    std::vector<pollfd> fds;
    char buf[65536];
    while (Steady::now() < end) {
      fds.clear();
      for (auto& c : clients)
        if (c.fd >= 0 && !done(c)) fds.push_back({c.fd, POLLIN, 0});
      if (fds.empty()) return true;
      if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
      for (auto& p : fds) {
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        auto it = std::find_if(clients.begin(), clients.end(),
                               [&](const Client& c) { return c.fd == p.fd; });
        ssize_t n;
        while ((n = ::recv(p.fd, buf, sizeof buf, 0)) > 0)
          it->got.append(buf, static_cast<size_t>(n));
        if (n == 0) it->ended = true;
      }
    }
    return false;
  };
  auto connected = [](const Client& c) {
    return c.got.find("wait here") != std::string::npos || c.ended;
  };
  pump(connected, std::chrono::seconds(60));
  int streaming = 0;
  for (auto& c : clients) streaming += c.got.find("wait here") != std::string::npos;
  long rss_open = RssKb(server.pid);
  auto t0 = Steady::now();
  Request(server.port, "POST", "/api/v1/deployments/" + id + "/continue", "{}");
  auto finished = [](const Client& c) {
    return c.got.find("event: end") != std::string::npos || c.ended;
  };
  pump(finished, std::chrono::seconds(120));
  double all_ms = Ms(Steady::now() - t0);
  int complete = 0;
  for (auto& c : clients) {
    bool every = c.got.find("event: end") != std::string::npos;
    for (int i = 1; every && i <= o.lines; ++i)
      every = c.got.find("\"text\":\"line-" + std::to_string(i) + "\"") != std::string::npos;
    complete += every;
    if (c.fd >= 0) ::close(c.fd);
  }
  std::printf(
      "streams: %d live log streams of one deployment (%d streaming); %d received all %d "
      "lines and the end, the last %.0f ms after the continue\n",
      o.streams, streaming, complete, o.lines, all_ms);
  std::printf("streams: server RSS %.1f MB before, %.1f MB with the streams open\n",
              rss_before / 1024.0, rss_open / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const bool parsed = reprise::bench::ParseFlags(argc, argv, 1,
                                                 {{"--server", o.server},
                                                  {"--work", o.work},
                                                  {"--trickle", o.trickle},
                                                  {"--streams", o.streams},
                                                  {"--lines", o.lines},
                                                  {"--probes", o.probes}});
  if (!parsed || o.server.empty() || o.work.empty()) {
    std::fprintf(stderr,
                 "usage: bench_http --server BIN --work DIR [--trickle N] [--streams N] "
                 "[--lines N] [--probes N]\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  RaiseFdLimit();
  Server server;
  if (!server.Start(o)) {
    std::fprintf(stderr, "bench_http: the server did not start (see %s)\n",
                 (o.work / "server.log").c_str());
    return 1;
  }
  TrickleBench(o, server.port);
  StreamBench(o, server);
  return 0;
}
