// bench_agents: agent deployments against the tools a user would otherwise
// use. Runs a real AgentHub (SQLite store, BlobStore) in this process and
// real reprise-agent processes on loopback, and prints, side by side:
//   - a fresh deploy (request -> done) vs `bsdtar -xzf` of the same archive
//   - the small artifact's deploy vs Ansible `unarchive` (time passed in)
//   - rollback by re-deploy of a cached build, both sizes, plus a file-by-file
//     comparison of the result with build 1
//   - fan-out to N agents vs N sequential `bsdtar -xzf` (and Ansible, passed in)
//   - the hub's RSS with 1,000 idle connected agents
// Prints numbers and ratios; asserts nothing. bench/run_agents.sh drives it.
//
//   bench_agents --bin BIN_DIR --work DIR --big1 A --big2 B --small1 C --small2 D
//                [--fanout 10] [--idle 1000] [--ansible-small S] [--ansible-fanout S]
//   bench_agents --idle-servers PORT/PID/FINGERPRINT,... --token T --idle N
// The second form (bench/run_scale_out.sh) connects N idle agents to every
// listed reprise-server (FINGERPRINT "-": plain TCP) and prints each one's RSS.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "agents/deployer/archive.h"
#include "agents/protocol/protocol.h"
#include "bench/bench_flags.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "planner/operations.h"
#include "server/artifacts/blob_store.h"
#include "server/hub/agent_hub.h"
#include "server/store/store.h"
#include "tests/support/wait.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace reprise;
using Steady = std::chrono::steady_clock;

struct Options {
  fs::path bin, work, big1, big2, small1, small2;
  int fanout = 10;
  int idle = 1000;
  double ansible_small = -1, ansible_fanout = -1;
};

double Seconds(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

pid_t Spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!log.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

double TimeCommand(const std::vector<std::string>& args) {
  auto t0 = Steady::now();
  pid_t pid = Spawn(args, "");
  int st = 0;
  if (pid > 0) ::waitpid(pid, &st, 0);
  return Seconds(t0, Steady::now());
}

using reprise::testing::WaitUntil;

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

class NullLog {
 public:
  NullLog() : log_(clock_, masker_, "bench", SourcePosition{}, "t", [](const LogLine&) {}) {}
  StepLog& get() { return log_; }

 private:
  FakeClock clock_{TimePoint{}};
  Masker masker_;
  StepLog log_;
};

struct Bench {
  Options o;
  std::unique_ptr<Store> store;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<AgentHub> hub;
  std::vector<pid_t> agents;
  std::map<std::string, std::string> sha;  // file -> sha256

  ~Bench() {
    for (pid_t p : agents) ::kill(p, SIGKILL);
    for (pid_t p : agents) ::waitpid(p, nullptr, 0);
  }

  bool Setup() {
    fs::remove_all(o.work);
    fs::create_directories(o.work);
    auto s = OpenSqliteStore({(o.work / "reprise.db").string()});
    if (!s.ok()) return Fail(s.status());
    store = std::move(s).value();
    auto b = BlobStore::Open(o.work / "blobs", BlobStoreOptions{0, false});
    if (!b.ok()) return Fail(b.status());
    blobs = std::move(b).value();
    (void)store->PutEnvironment({"Bench", "{}", 0});
    for (const auto& f : {o.big1, o.big2, o.small1, o.small2}) {
      auto bytes = ReadFileToString(f);
      if (!bytes.ok()) return Fail(bytes.status());
      auto h = blobs->Put(*bytes);
      if (!h.ok()) return Fail(h.status());
      sha[f.string()] = *h;
    }
    AgentHubOptions ho;
    ho.store = store.get();
    ho.blobs = blobs.get();
    ho.tls = false;
    ho.data_dir = o.work / "data";
    auto h = AgentHub::Start(ho);
    if (!h.ok()) return Fail(h.status());
    hub = std::move(h).value();
    return true;
  }

  static bool Fail(const Status& st) {
    std::fprintf(stderr, "bench_agents: %s\n", st.ToString().c_str());
    return false;
  }

  bool StartAgents(int n, const std::string& token, const std::string& prefix = "bench-",
                   bool fsync = true) {
    size_t before = agents.size();
    for (int i = 0; i < n; ++i) {
      std::string name = prefix + std::to_string(i);
      fs::path root = o.work / "agents" / name;
      fs::create_directories(root);
      std::vector<std::string> args = {(o.bin / "reprise-agent").string(),
                                       "--server",
                                       "127.0.0.1:" + std::to_string(hub->port()),
                                       "--name",
                                       name,
                                       "--root",
                                       root.string(),
                                       "--enroll-token",
                                       token,
                                       "--plain",
                                       "--quiet"};
      if (!fsync) args.push_back("--no-fsync");
      pid_t pid = Spawn(args, o.work / (name + ".log"));
      if (pid < 0) return false;
      agents.push_back(pid);
    }
    return WaitUntil(
        [&] {
          int online = 0;
          for (const auto& a : hub->Agents()) online += a.online;
          return online >= static_cast<int>(before) + n;
        },
        std::chrono::seconds(60));
  }

  TargetInfo Target(int agent, const std::string& sub, const std::string& prefix = "bench-") {
    std::string name = prefix + std::to_string(agent);
    return TargetInfo{name + "-" + sub, name, (o.work / "agents" / name / sub).string(), {}};
  }

  // Seconds for one deploy (request -> result), or -1 on failure.
  bool flush_before = true;
  double Deploy(const TargetInfo& t, const fs::path& archive, const std::string& build) {
    ExecutionContext ctx;
    ctx.release = "1.0";
    ctx.build = build;
    auto ops = hub->OperationsFor(ctx);
    NullLog log;
    CancelToken cancel;
    DeployArtifactOp op{"app", sha[archive.string()], "", DeployMode::kAtomic, 3};
    if (flush_before) ::sync();  // start from a clean page cache, as bsdtar does
    auto t0 = Steady::now();
    auto out = ops->Run(t, op, log.get(), cancel);
    double s = Seconds(t0, Steady::now());
    if (!out.succeeded()) {
      std::fprintf(stderr, "deploy failed: %s %s\n", out.message.c_str(),
                   out.error.ToString().c_str());
      return -1;
    }
    return s;
  }

  double Bsdtar(const fs::path& archive, const fs::path& dest, bool flush = true) {
    fs::create_directories(dest);
    if (flush) ::sync();
    return TimeCommand({"bsdtar", "-xzf", archive.string(), "-C", dest.string()});
  }

  // Compares the target's current tree with the archive, file by file.
  std::string Compare(const TargetInfo& t, const fs::path& archive) {
    auto m = ScanArchive(archive);
    if (!m.ok()) return "scan failed";
    auto r = ValidateTree(fs::path(t.path) / "current", *m);
    if (!r.ok()) return r.status().ToString();
    if (r->ok()) return "identical (" + std::to_string(r->files_checked) + " files)";
    return "DIFFERENT: " + std::to_string(r->missing.size()) + " missing, " +
           std::to_string(r->changed.size()) + " changed, " + std::to_string(r->extra.size()) +
           " extra";
  }
};

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

void RaiseFileLimit() {
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// One idle agent's connection, plain or TLS: what the measurement keeps open.
struct IdleConn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool Send(const std::string& bytes) {
    if (ssl) return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) > 0;
    return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0;
  }
  ssize_t Recv(char* buf, size_t n) {
    if (ssl) return SSL_read(ssl, buf, static_cast<int>(n));
    return ::recv(fd, buf, n, 0);
  }
  void Close() {
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

// The hub of the idle-agents measurement: `bench_agents --idle-hub DIR TLS
// FD`, a fresh process (exec'd, not only forked: a forked child's RSS would
// include the parent's pages, and its heap would reuse the parent's freed
// memory). Writes "port token fingerprint" to FD, then counts online agents.
[[noreturn]] void RunIdleHub(const fs::path& dir, bool tls, int ready_fd) {
  auto store = OpenSqliteStore({(dir / "reprise.db").string()});
  if (!store.ok()) _exit(1);
  AgentHubOptions ho;
  ho.store = store->get();
  ho.tls = tls;
  ho.data_dir = dir / "data";
  ho.heartbeat_timeout = std::chrono::minutes(10);
  ho.handshake_timeout = std::chrono::minutes(10);
  ho.max_unauthenticated = 1 << 20;  // the agents connect one after the other anyway
  auto hub = AgentHub::Start(ho);
  if (!hub.ok()) _exit(1);
  auto token = (*hub)->CreateEnrollToken(true, std::chrono::seconds(3600), "bench");
  std::string fp = tls ? (*hub)->cert_fingerprint() : "-";
  std::string msg = std::to_string((*hub)->port()) + " " + *token + " " + fp + "\n";
  if (::write(ready_fd, msg.data(), msg.size()) < 0) _exit(1);
  ::close(ready_fd);
  // Report "online" counts on request: the parent reads /proc for RSS.
  while (true) {
    int online = 0;
    for (const auto& a : (*hub)->Agents()) online += a.online;
    std::ofstream(dir / "online.tmp") << online << "\n";
    fs::rename(dir / "online.tmp", dir / "online");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Connects agent `name` with key `id` to the hub on `port` (TLS when `ctx`):
// hello with the enrollment token, then the signed auth; false when any step
// fails.
bool ConnectIdleAgentAs(const std::string& name, const protocol::Identity& id, int port,
                        SSL_CTX* ctx, const std::string& token, const std::string& fingerprint,
                        IdleConn& c) {
  c.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
  if (ctx) {
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    if (SSL_connect(c.ssl) != 1) {
      c.Close();
      return false;
    }
    // The pin as reprise-agent checks it: SHA-256 of the certificate's DER.
    X509* peer = SSL_get1_peer_certificate(c.ssl);
    std::string der;
    if (int len = peer ? i2d_X509(peer, nullptr) : 0; len > 0) {
      der.resize(static_cast<size_t>(len));
      auto* out = reinterpret_cast<unsigned char*>(der.data());
      i2d_X509(peer, &out);
    }
    X509_free(peer);
    bool pinned = !der.empty() && Sha256Hex(der) == fingerprint;
    if (!pinned) {
      std::printf("idle agents: the server certificate is not the pinned one\n");
      c.Close();
      return false;
    }
  }
  std::string hello = "{\"type\":\"hello\",\"protocol\":1,\"name\":\"" + name +
                      "\",\"version\":\"bench\",\"public_key\":\"" + id.public_key_hex() +
                      "\",\"enroll_token\":\"" + token + "\"}";
  auto f = protocol::EncodeFrame(hello, "");
  if (!c.Send(*f)) return false;
  protocol::FrameDecoder dec;
  std::string nonce;
  while (nonce.empty()) {
    char b[4096];
    ssize_t r = c.Recv(b, sizeof b);
    if (r <= 0) return false;
    (void)dec.Feed(std::string_view(b, static_cast<size_t>(r)));
    if (auto fr = dec.Next()) {
      auto p = fr->header.find("\"nonce\":\"");
      if (p != std::string::npos) nonce = fr->header.substr(p + 9, 64);
    }
  }
  auto sig = id.Sign(protocol::AuthMessage(nonce, name, fingerprint));
  auto a2 = protocol::EncodeFrame("{\"type\":\"auth\",\"signature\":\"" + *sig + "\"}", "");
  if (!c.Send(*a2)) return false;
  return true;
}

// Idle agent `i` ("idle-I") with a key of its own.
bool ConnectIdleAgent(int i, int port, SSL_CTX* ctx, const std::string& token,
                      const std::string& fingerprint, IdleConn& c) {
  auto id = protocol::Identity::Generate();
  return id.ok() &&
         ConnectIdleAgentAs("idle-" + std::to_string(i), *id, port, ctx, token, fingerprint, c);
}

// With `tls` the hub listens as reprise-server does by default and every
// agent completes a TLS handshake, pinning the certificate as reprise-agent
// does.
void IdleAgents(const Options& o, bool tls) {
  fs::path dir = o.work / (tls ? "idle-tls" : "idle");
  fs::create_directories(dir);
  int ready[2];
  if (::pipe(ready) != 0) return;
  pid_t hub_pid = ::fork();
  if (hub_pid == 0) {
    ::close(ready[0]);
    std::string fd = std::to_string(ready[1]);
    ::execl("/proc/self/exe", "bench_agents", "--idle-hub", dir.c_str(), tls ? "1" : "0",
            fd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(ready[1]);
  char buf[512] = {0};
  ssize_t n = ::read(ready[0], buf, sizeof buf - 1);
  if (n <= 0) {
    std::printf("idle agents: the hub did not start\n");
    return;
  }
  std::istringstream words{std::string(buf)};
  int port = 0;
  std::string token, fingerprint;
  words >> port >> token >> fingerprint;
  if (fingerprint == "-") fingerprint.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  long base_kb = RssKb(hub_pid);

  SSL_CTX* ctx = tls ? SSL_CTX_new(TLS_client_method()) : nullptr;
  // Minimal agents: a socket each, hello + auth, then silence.
  std::vector<IdleConn> conns;
  auto t0 = Steady::now();
  for (int i = 0; i < o.idle; ++i) {
    IdleConn c;
    if (!ConnectIdleAgent(i, port, ctx, token, fingerprint, c)) break;
    conns.push_back(c);
  }
  double connect_s = Seconds(t0, Steady::now());
  bool all = WaitUntil(
      [&] {
        auto s = ReadFileToString(dir / "online");
        return s.ok() && std::atoi(s->c_str()) >= static_cast<int>(conns.size());
      },
      std::chrono::seconds(120));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long rss_kb = RssKb(hub_pid);
  std::printf(
      "%-44s %8.1f MB  (empty hub %.1f MB, %.1f KB per agent; %zu agents connected in %.1f "
      "s%s)  target < 200 MB\n",
      tls ? "hub RSS with idle agents, TLS" : "hub RSS with idle agents, plain TCP",
      rss_kb / 1024.0, base_kb / 1024.0,
      conns.empty() ? 0.0
                    : static_cast<double>(rss_kb - base_kb) / static_cast<double>(conns.size()),
      conns.size(), connect_s, all ? "" : ", NOT all online");
  for (IdleConn& c : conns) c.Close();
  if (ctx) SSL_CTX_free(ctx);
  ::kill(hub_pid, SIGKILL);
  ::waitpid(hub_pid, nullptr, 0);
}

// Reads frames on `c` until `welcome` (true) or `refused`, an error or 30 s.
bool AwaitWelcome(IdleConn& c) {
  timeval limit{30, 0};
  ::setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  protocol::FrameDecoder dec;
  for (int reads = 0; reads < 64; ++reads) {
    char b[4096];
    ssize_t r = c.Recv(b, sizeof b);
    if (r <= 0) return false;
    (void)dec.Feed(std::string_view(b, static_cast<size_t>(r)));
    while (auto fr = dec.Next()) {
      if (fr->header.find("\"welcome\"") != std::string::npos) return true;
      if (fr->header.find("\"refused\"") != std::string::npos) return false;
    }
  }
  return false;
}

// One server of `bench_agents --idle-servers`: PORT/PID/FINGERPRINT.
struct IdleServer {
  int port = 0;
  pid_t pid = 0;
  std::string fingerprint;  // empty: plain TCP
  long base_kb = 0;
};

std::vector<IdleServer> ParseIdleServers(const std::string& list) {
  std::vector<IdleServer> servers;
  std::istringstream entries(list);
  for (std::string entry; std::getline(entries, entry, ',');) {
    IdleServer s;
    std::istringstream parts(entry);
    std::string port, pid;
    std::getline(parts, port, '/');
    std::getline(parts, pid, '/');
    std::getline(parts, s.fingerprint);
    s.port = std::atoi(port.c_str());
    s.pid = std::atoi(pid.c_str());
    if (s.fingerprint == "-") s.fingerprint.clear();
    if (s.port <= 0 || s.pid <= 0) return {};
    s.base_kb = RssKb(s.pid);
    servers.push_back(s);
  }
  return servers;
}

// `bench_agents --idle-servers PORT/PID/FP,... --token T --idle N`: N idle
// agents, each connected to every listed reprise-server (as reprise-agent
// --server a,b does) and welcomed by each, heartbeating every 10 s (a server
// drops an agent silent for 30 s); then the RSS of each server.
int IdleOnServers(const std::string& list, const std::string& token, int count) {
  std::vector<IdleServer> servers = ParseIdleServers(list);
  if (servers.empty()) return std::fprintf(stderr, "bad --idle-servers %s\n", list.c_str()), 2;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  const std::string heartbeat = *protocol::EncodeFrame("{\"type\":\"heartbeat\"}", "");
  std::vector<IdleConn> conns;
  auto last_beat = Steady::now();
  auto beat = [&] {
    if (Seconds(last_beat, Steady::now()) < 10) return;
    for (IdleConn& c : conns) (void)c.Send(heartbeat);
    last_beat = Steady::now();
  };
  auto t0 = Steady::now();
  int agents = 0;
  for (bool all = true; all && agents < count; ++agents) {
    auto id = protocol::Identity::Generate();
    if (!id.ok()) break;
    for (const IdleServer& s : servers) {
      IdleConn c;
      SSL_CTX* tls = s.fingerprint.empty() ? nullptr : ctx;
      all = ConnectIdleAgentAs("idle-" + std::to_string(agents), *id, s.port, tls, token,
                               s.fingerprint, c) &&
            AwaitWelcome(c);
      if (!all) {
        c.Close();
        --agents;  // not counted: it is not connected to every server
        break;
      }
      conns.push_back(c);
    }
    beat();
  }
  double connect_s = Seconds(t0, Steady::now());
  // A few seconds of idling (and heartbeats) before the RSS is read.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    beat();
  }
  for (const IdleServer& s : servers) {
    long rss_kb = RssKb(s.pid);
    std::printf(
        "server on port %d: RSS %.1f MB with %d idle agents (%.1f MB before, %.1f KB "
        "per agent)\n",
        s.port, rss_kb / 1024.0, agents, s.base_kb / 1024.0,
        agents ? static_cast<double>(rss_kb - s.base_kb) / agents : 0.0);
  }
  std::printf("%d agents x %zu servers connected and welcomed in %.1f s%s\n", agents,
              servers.size(), connect_s, agents < count ? " (NOT all: a connection failed)" : "");
  for (IdleConn& c : conns) c.Close();
  SSL_CTX_free(ctx);
  return agents == count ? 0 : 1;
}

// Fan-out: the big artifact to every agent at once, with and without fsync,
// against as many sequential bsdtar runs (and Ansible when given).
void FanOut(Bench& b, const Options& o, const std::string& token) {
  // Fan-out: the big artifact to every agent at once.
  std::vector<double> each(o.fanout);
  ::sync();
  b.flush_before = false;
  auto t0 = Steady::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.fanout; ++i) {
    threads.emplace_back([&, i] { each[i] = b.Deploy(b.Target(i, "fan"), o.big1, "1"); });
  }
  for (auto& t : threads) t.join();
  double fan = Seconds(t0, Steady::now());
  double seq = 0;
  for (int i = 0; i < o.fanout; ++i)
    seq += b.Bsdtar(o.big1, o.work / ("bsdtar-fan-" + std::to_string(i)));
  bool fan_ok = true;
  for (double e : each) fan_ok &= e > 0;
  std::printf(
      "%-44s %9.3fs %11.3fs %7.2fx  (%d sequential bsdtar; target <= 0.65x, 0.5x is the 2-core "
      "limit)%s\n",
      ("fan-out big to " + std::to_string(o.fanout) + " agents").c_str(), fan, seq, Ratio(fan, seq),
      o.fanout, fan_ok ? "" : " SOME FAILED");
  // The same without durability: bsdtar never fsyncs, so this row compares
  // like with like (the row above pays for making 10 releases durable).
  if (b.StartAgents(o.fanout, token, "nofsync-", /*fsync=*/false)) {
    std::vector<double> each2(o.fanout);
    std::vector<std::thread> th;
    ::sync();
    auto t1 = Steady::now();
    for (int i = 0; i < o.fanout; ++i) {
      th.emplace_back([&, i] { each2[i] = b.Deploy(b.Target(i, "fan", "nofsync-"), o.big1, "1"); });
    }
    for (auto& t : th) t.join();
    double fan2 = Seconds(t1, Steady::now());
    std::printf("%-44s %9.3fs %11.3fs %7.2fx  (agents with --no-fsync, like bsdtar)\n",
                "fan-out, without fsync", fan2, seq, Ratio(fan2, seq));
  }
  if (o.ansible_fanout > 0) {
    std::printf("%-44s %9.3fs %11.3fs %7.2fx  (Ansible unarchive, %d local hosts, forks %d)\n",
                "fan-out vs Ansible", fan, o.ansible_fanout, Ratio(fan, o.ansible_fanout), o.fanout,
                o.fanout);
  } else {
    std::printf("%-44s %10s\n", "fan-out vs Ansible",
                "skipped (no ansible-playbook, or SKIP_ANSIBLE)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc == 5 && std::string(argv[1]) == "--idle-hub")
    RunIdleHub(argv[2], std::string(argv[3]) == "1", std::atoi(argv[4]));
  if (argc == 7 && std::string(argv[1]) == "--idle-servers") {
    std::string list = argv[2], token;
    int count = 0;
    if (!reprise::bench::ParseFlags(argc, argv, 3, {{"--token", token}, {"--idle", count}}))
      return 2;
    ::signal(SIGPIPE, SIG_IGN);
    RaiseFileLimit();
    return IdleOnServers(list, token, count);
  }
  if (!reprise::bench::ParseFlags(argc, argv, 1,
                                  {{"--bin", o.bin},
                                   {"--work", o.work},
                                   {"--big1", o.big1},
                                   {"--big2", o.big2},
                                   {"--small1", o.small1},
                                   {"--small2", o.small2},
                                   {"--fanout", o.fanout},
                                   {"--idle", o.idle},
                                   {"--ansible-small", o.ansible_small},
                                   {"--ansible-fanout", o.ansible_fanout}}))
    return 2;
  ::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  RaiseFileLimit();
  o.work = fs::absolute(o.work);
  {
    Bench b;
    b.o = o;
    if (!b.Setup()) return 1;
    std::string token = *b.hub->CreateEnrollToken(true, std::chrono::seconds(3600), "bench");
    if (!b.StartAgents(o.fanout, token)) {
      std::fprintf(stderr, "agents did not come online\n");
      return 1;
    }
    auto big = b.Target(0, "big"), small = b.Target(0, "small");
    std::printf("artifacts: big %s (%ld MB), small %s (%ld KB)\n", o.big1.filename().c_str(),
                static_cast<long>(fs::file_size(o.big1) >> 20), o.small1.filename().c_str(),
                static_cast<long>(fs::file_size(o.small1) >> 10));
    std::printf("%-44s %10s %12s %8s\n", "", "reprise", "reference", "ratio");

    double fresh_big = b.Deploy(big, o.big1, "1");
    double tar_big = b.Bsdtar(o.big1, o.work / "bsdtar-big");
    std::printf("%-44s %9.3fs %11.3fs %7.2fx  (bsdtar -xzf; target <= 1.3x)\n",
                "fresh deploy, big (request -> done)", fresh_big, tar_big,
                Ratio(fresh_big, tar_big));
    double fresh_small = b.Deploy(small, o.small1, "1");
    double tar_small = b.Bsdtar(o.small1, o.work / "bsdtar-small");
    std::printf("%-44s %9.3fs %11.3fs %7.2fx  (bsdtar -xzf)\n", "fresh deploy, small", fresh_small,
                tar_small, Ratio(fresh_small, tar_small));
    if (o.ansible_small > 0) {
      std::printf(
          "%-44s %9.3fs %11.3fs %7.1fx faster  (Ansible unarchive, connection local; target >= "
          "10x)\n",
          "small deploy vs Ansible", fresh_small, o.ansible_small,
          Ratio(o.ansible_small, fresh_small));
    } else {
      std::printf("%-44s %10s\n", "small deploy vs Ansible",
                  "skipped (no ansible-playbook, or SKIP_ANSIBLE)");
    }

    // Build 2 of each, then re-deploy build 1 (still cached): only the switch.
    b.Deploy(big, o.big2, "2");
    b.Deploy(small, o.small2, "2");
    double rb_big = b.Deploy(big, o.big1, "1");
    double rb_small = b.Deploy(small, o.small1, "1");
    std::printf("%-44s %8.1fms %12s           (target < 50 ms) -> %s\n",
                "rollback (re-deploy cached build 1), big", rb_big * 1000, "",
                b.Compare(big, o.big1).c_str());
    std::printf("%-44s %8.1fms %12s           (target < 50 ms) -> %s\n", "rollback, small",
                rb_small * 1000, "", b.Compare(small, o.small1).c_str());
    std::printf("%-44s %18s %7.2fx  (target <= 1.5x)\n", "rollback big / small", "",
                Ratio(rb_big, rb_small));

    FanOut(b, o, token);
  }
  if (o.idle > 0) {
    IdleAgents(o, true);
    IdleAgents(o, false);
  }
  fs::remove_all(o.work);
  return 0;
}
