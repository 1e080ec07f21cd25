// Crash recovery (a real server process killed with SIGKILL), deployment
// windows across a DST change on a fake clock, and manual steps.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <map>
#include <sstream>

#include "tests/server/engine/engine_test_support.h"
#include "tests/support/seed.h"
#include "tests/support/server_process.h"

namespace reprise::testing {

namespace {

// How the recovery tests start reprise-server: agents on a free port, and
// the local agent.
const std::vector<std::string> kLocalAgent = {"--agent-port", "0", "--local-agent"};

void SeedLocal(HttpClient& admin, const fs::path& target_dir, const std::string& plan_steps) {
  SeedLocalStage(admin, target_dir, plan_steps,
                 {.application = "shop",
                  .environment = "Production",
                  .target = "prod-web",
                  .stage = "Production"});
}

// A server on a fake clock set to `start`, with the shop's Production stage
// on the local agent running `plan_steps`.
struct ClockedServer {
  ClockedServer(std::string_view start, const std::string& plan_steps)
      : clock(*ParseRfc3339(start)), server(WithClock(&clock)), admin(server.Admin()) {
    SeedLocal(admin, tmp.path(), plan_steps);
  }
  static ServerOptions WithClock(Clock* clock) {
    ServerOptions o;
    o.clock = clock;
    return o;
  }
  FakeClock clock;
  TestServer server;
  HttpClient admin;
  TempDir tmp;
};

// A server with the shop's Production stage on the local agent running
// `plan_steps`.
struct LocalServer {
  explicit LocalServer(const std::string& plan_steps) { SeedLocal(admin, tmp.path(), plan_steps); }
  TestServer server;
  HttpClient admin = server.Admin();
  TempDir tmp;
};

// Deploys the shop's build 1.0/1 as `request` asks; the deployment's id.
std::string DeployShop(HttpClient& admin, const std::string& request) {
  auto r = admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy", request);
  REQUIRE_MESSAGE(r.status == 202, r.body);
  return std::to_string(Body(r)["id"].get<int64_t>());
}

}  // namespace

TEST_CASE("kill -9 of the server during a deployment: after restart it is interrupted") {
  TempDir tmp;
  fs::path data = tmp.path() / "data";
  fs::path target = data / "targets" / "prod-web";  // under the local agent's root
  fs::create_directories(target);
  int64_t id = 0;
  {
    ServerProcess server(ServerArgs(data, kLocalAgent), tmp.path() / "server1.log");
    auto admin = server.Admin();
    // Only the first run takes a while (the one the server dies in).
    SeedLocal(
        admin, target,
        "    - log: \"starting\"\n"
        "    - exec: { command: \"[ -f again ] || { touch again; sleep 3; }\", timeout: 60 }\n");
    auto r = admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                        R"({"stage":"Production"})");
    REQUIRE(r.status == 202);
    id = Body(r)["id"].get<int64_t>();
    REQUIRE(WaitUntil([&] {
      auto log = Body(admin.Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
      for (const auto& l : log["lines"])
        if (l["text"].get<std::string>().find("sleep 3") != std::string::npos) return true;
      return false;
    }));
    server.KillHard();
  }
  ServerProcess server(ServerArgs(data, kLocalAgent), tmp.path() / "server2.log");
  auto admin = server.Admin();
  auto d = Body(admin.Get("/api/v1/deployments/" + std::to_string(id)));
  CHECK(d["status"] == "interrupted");
  CHECK(d["targets"][0]["status"] == "interrupted");
  auto log = Body(admin.Get("/api/v1/deployments/" + std::to_string(id) + "/log"));
  bool said = false;
  for (const auto& l : log["lines"])
    said = said || l["text"].get<std::string>().find("interrupted") != std::string::npos;
  CHECK(said);
  // Nothing else is lost, and the target is free for the next deployment.
  CHECK(admin.Get("/api/v1/applications/shop/releases/1.0/builds/1").status == 200);
  auto again = admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                          R"({"stage":"Production"})");
  REQUIRE(again.status == 202);
  int64_t next = Body(again)["id"].get<int64_t>();
  CHECK(WaitUntil([&] {
    return Body(admin.Get("/api/v1/deployments/" + std::to_string(next)))["status"] == "succeeded";
  }));
}

TEST_CASE("a deployment window in Europe/Berlin holds across the spring DST change") {
  ClockedServer s("2026-03-28T23:30:00Z", "    - log: \"in the window\"\n");  // 00:30 CET, closed
  auto spec = Body(s.admin.Get("/api/v1/applications/shop"))["spec"];
  spec["pipeline"][0]["gates"]["window"] = {"daily 01:00-03:00"};
  spec["pipeline"][0]["gates"]["timezone"] = "Europe/Berlin";
  REQUIRE(s.admin.Put("/api/v1/applications/shop", spec.dump()).status == 200);
  REQUIRE(s.admin.Post("/api/v1/applications/shop/releases", R"({"number":"2.0"})").status == 201);
  REQUIRE(s.admin.Post("/api/v1/applications/shop/releases/2.0/builds", "{}").status == 201);
  auto status = [&](int64_t id) {
    return Body(s.admin.Get("/api/v1/deployments/" + std::to_string(id)))["status"];
  };
  auto deploy = [&] {
    auto r = s.admin.Post("/api/v1/applications/shop/releases/2.0/builds/1/deploy",
                          R"({"stage":"Production"})");
    REQUIRE(r.status == 202);
    return Body(r)["id"].get<int64_t>();
  };

  int64_t first = deploy();
  CHECK(status(first) == "waiting");
  s.clock.Set(*ParseRfc3339("2026-03-29T00:10:00Z"));  // 01:10 CET: open
  CHECK(WaitUntil([&] { return status(first) == "succeeded"; }, std::chrono::seconds(20)));

  // 01:10 UTC is 03:10 CEST after the clocks jumped: closed (a fixed +01:00
  // would wrongly say 02:10, inside the window).
  s.clock.Set(*ParseRfc3339("2026-03-29T01:10:00Z"));
  int64_t second = deploy();
  CHECK(status(second) == "waiting");
  // Moving the clock re-checks waiting deployments on the scheduler's thread
  // (03:11 CEST: still closed). A forced deployment is dispatched on that
  // thread after the re-check, so once it has run the re-check has too.
  s.clock.Advance(std::chrono::minutes(1));
  auto forced =
      s.admin.Post("/api/v1/applications/shop/releases/2.0/builds/1/deploy",
                   R"({"stage":"Production","force":true,"comment":"after the re-check"})");
  REQUIRE_MESSAGE(forced.status == 202, forced.body);
  CHECK(WaitUntil([&] { return status(Body(forced)["id"].get<int64_t>()) == "succeeded"; }));
  CHECK(status(second) == "waiting");
  auto gates = Body(s.admin.Get("/api/v1/deployments/" + std::to_string(second)))["gates"];
  bool window_closed = false;
  for (const auto& g : gates)
    window_closed = window_closed || (g["gate"] == "window" && g["holds"] == false);
  CHECK(window_closed);
  s.clock.Set(*ParseRfc3339("2026-03-29T23:30:00Z"));  // 01:30 CEST on the 30th: open again
  CHECK(WaitUntil([&] { return status(second) == "succeeded"; }, std::chrono::seconds(20)));
}

TEST_CASE("a manual step waits for someone with its role to continue") {
  LocalServer s(
      "    - manual: { message: \"check the canary\", role: release-manager }\n"
      "    - log: \"after the check\"\n");
  std::string dan = s.server.CreateUser("dan", "deployer");
  std::string rita = s.server.CreateUser("rita", "release-manager");
  std::string id = DeployShop(s.admin, R"({"stage":"Production","force":true,"comment":"test"})");
  json d;
  REQUIRE(WaitUntil([&] {
    d = Body(s.admin.Get("/api/v1/deployments/" + id));
    return d.contains("manual");
  }));
  CHECK(d["status"] == "running");
  CHECK(d["manual"]["message"] == "check the canary");
  CHECK(s.server.As(dan).Post("/api/v1/deployments/" + id + "/continue", "{}").status == 403);
  auto ok =
      s.server.As(rita).Post("/api/v1/deployments/" + id + "/continue", R"({"comment":"fine"})");
  CHECK(ok.status == 200);
  CHECK(WaitUntil(
      [&] { return Body(s.admin.Get("/api/v1/deployments/" + id))["status"] == "succeeded"; }));
  // One line says it waits, naming the role and the message.
  int waiting = 0;
  json log = Body(s.admin.Get("/api/v1/deployments/" + id + "/log"));
  for (const auto& l : log["lines"]) {
    const std::string text = l["text"].get<std::string>();
    if (text.find("waiting for") == std::string::npos) continue;
    ++waiting;
    CHECK(text.find("release-manager") != std::string::npos);
    CHECK(text.find("check the canary") != std::string::npos);
  }
  CHECK(waiting == 1);
}

TEST_CASE("the live log streams as server-sent events and resumes after Last-Event-ID") {
  LocalServer s("    - log: \"one\"\n    - log: \"two\"\n");
  std::string id = DeployShop(s.admin, R"({"stage":"Production"})");
  auto stream =
      s.admin.Get("/api/v1/deployments/" + id + "/log", {{"Accept", "text/event-stream"}});
  REQUIRE(stream.status == 200);
  CHECK(stream.headers["content-type"].find("text/event-stream") != std::string::npos);
  CHECK(stream.body.find("\"text\":\"one\"") != std::string::npos);
  CHECK(stream.body.find("\"text\":\"two\"") != std::string::npos);
  CHECK(stream.body.find("event: end") != std::string::npos);
  CHECK(stream.body.find("succeeded") != std::string::npos);
  // Resuming after the first two events skips them.
  auto resumed = s.admin.Get("/api/v1/deployments/" + id + "/log",
                             {{"Accept", "text/event-stream"}, {"Last-Event-ID", "2"}});
  CHECK(resumed.body.find("id: 1\n") == std::string::npos);
  CHECK(resumed.body.find("id: 3\n") != std::string::npos);
}

}  // namespace reprise::testing

namespace reprise::testing {

namespace {

// A live-log stream read over a plain socket, so the test sees its first
// event arrive (the stream is open and waiting) before it does anything else.
class RawStream {
 public:
  RawStream(int port, const std::string& path) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    timeval limit{30, 0};  // a read that hangs fails the test instead
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::string request = "GET " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          "Authorization: Bearer " +
                          std::string(kAdminToken) + "\r\n\r\n";
    REQUIRE(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
  }
  ~RawStream() { ::close(fd_); }
  RawStream(const RawStream&) = delete;
  RawStream& operator=(const RawStream&) = delete;

  enum class Read { kFound, kClosed, kSilent };
  // Reads until `needle` was received, the server closed the connection, or
  // nothing came for 30 s.
  Read ReadUntil(const std::string& needle) {
    char buf[4096];
    while (received_.find(needle) == std::string::npos) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return Read::kClosed;
      if (n < 0) return Read::kSilent;
      received_.append(buf, static_cast<size_t>(n));
    }
    return Read::kFound;
  }
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

}  // namespace

TEST_CASE("stopping the server ends open live-log streams instead of waiting for them") {
  LocalServer s("    - manual: { message: \"wait here\" }\n");
  std::string id = DeployShop(s.admin, R"({"stage":"Production","force":true,"comment":"test"})");
  REQUIRE(
      WaitUntil([&] { return Body(s.admin.Get("/api/v1/deployments/" + id)).contains("manual"); }));
  RawStream stream(s.server.port(), "/api/v1/deployments/" + id + "/log");
  // The stream is open: it sent the line of the paused step and waits for more.
  REQUIRE_MESSAGE(stream.ReadUntil("wait here") == RawStream::Read::kFound, stream.received());
  REQUIRE(stream.received().find("event: end") == std::string::npos);
  s.server.Stop();  // must not hang on the open stream
  // Released: either told the stream ended, or the connection closed.
  CHECK_MESSAGE(stream.ReadUntil("event: end") != RawStream::Read::kSilent, stream.received());
}

}  // namespace reprise::testing

namespace reprise::testing {

namespace {

// Records every status change of a deployment in the server's database (a
// trigger the server's own connection runs), oldest first.
class StatusHistory {
 public:
  explicit StatusHistory(const fs::path& db_path) : db_(db_path.string(), SQLite::OPEN_READWRITE) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS test_status_history(n INTEGER PRIMARY KEY AUTOINCREMENT, "
        "id INTEGER, old TEXT, new TEXT);"
        "CREATE TRIGGER IF NOT EXISTS test_status_history AFTER UPDATE OF status ON deployments "
        "WHEN OLD.status != NEW.status BEGIN INSERT INTO test_status_history(id, old, new) "
        "VALUES(NEW.id, OLD.status, NEW.status); END;");
  }
  std::vector<std::string> Of(int64_t id) {
    SQLite::Statement q(db_, "SELECT old, new FROM test_status_history WHERE id=? ORDER BY n");
    q.bind(1, id);
    std::vector<std::string> out;
    while (q.executeStep())
      out.push_back(q.getColumn(0).getString() + "->" + q.getColumn(1).getString());
    return out;
  }

 private:
  SQLite::Database db_;
};

}  // namespace

TEST_CASE("a scheduled deployment fires when the fake clock reaches it, straight to queued") {
  ClockedServer s("2026-06-01T10:00:00Z", "    - log: \"fired\"\n");
  StatusHistory history(s.server.data_dir() / "reprise.db");
  auto deploy = [&](const std::string& at) {
    auto r = s.admin.Post("/api/v1/applications/shop/releases/1.0/builds/1/deploy",
                          json{{"stage", "Production"}, {"at", at}}.dump());
    REQUIRE_MESSAGE(r.status == 202, r.body);
    CHECK(Body(r)["status"] == "scheduled");
    return std::to_string(Body(r)["id"].get<int64_t>());
  };
  auto status = [&](const std::string& id) {
    return Body(s.admin.Get("/api/v1/deployments/" + id))["status"].get<std::string>();
  };
  std::string later = deploy("2026-06-01T12:00:00Z");
  std::string sooner = deploy("2026-06-01T13:00:00Z");
  // Moved ahead of the other one: the timer is re-armed for it.
  REQUIRE(s.admin.Send("PATCH", "/api/v1/deployments/" + sooner, R"({"at":"2026-06-01T11:00:00Z"})")
              .status == 200);
  s.clock.Set(*ParseRfc3339("2026-06-01T10:59:59Z"));
  CHECK(status(sooner) == "scheduled");
  s.clock.Set(*ParseRfc3339("2026-06-01T11:00:00Z"));
  REQUIRE(WaitUntil([&] { return status(sooner) == "succeeded"; }));
  CHECK(status(later) == "scheduled");
  s.clock.Set(*ParseRfc3339("2026-06-01T12:00:00Z"));
  REQUIRE(WaitUntil([&] { return status(later) == "succeeded"; }));
  // No gates: scheduled -> queued in one step (one transaction), never waiting.
  for (const auto& id : {sooner, later}) {
    CAPTURE(id);
    CHECK(history.Of(std::stoll(id)) ==
          std::vector<std::string>{"scheduled->queued", "queued->running", "running->succeeded"});
    auto log = Body(s.admin.Get("/api/v1/deployments/" + id + "/log"));
    int reached = 0;
    for (const auto& l : log["lines"])
      reached += l["text"].get<std::string>().find("reached") != std::string::npos;
    CHECK(reached == 1);
  }
}

TEST_CASE("an 'at' more than a minute in the past is refused, naming the field") {
  ClockedServer s("2026-06-01T10:00:00Z", "    - log: \"ran\"\n");
  const std::string deploy = "/api/v1/applications/shop/releases/1.0/builds/1/deploy";
  auto past = s.admin.Post(deploy, R"({"stage":"Production","at":"2026-06-01T09:55:00Z"})");
  CHECK(past.status == 400);
  CHECK(Body(past)["error"]["code"] == "invalid_argument");
  std::string message = Body(past)["error"]["message"];
  CHECK(message.find("field 'at'") != std::string::npos);
  CHECK(message.find("300 s in the past") != std::string::npos);
  auto none = Body(s.admin.Get("/api/v1/deployments?application=shop"));
  CHECK(none["items"].empty());
  // A few seconds behind (another machine's clock) still means now.
  auto now = s.admin.Post(deploy, R"({"stage":"Production","at":"2026-06-01T09:59:30Z"})");
  REQUIRE(now.status == 202);
  CHECK(Body(now)["scheduled_at"].is_null());
  CHECK(Body(now)["status"] != "scheduled");
  // Moving a scheduled deployment into the past is refused the same way.
  auto later = s.admin.Post(deploy, R"({"stage":"Production","at":"2026-06-01T12:00:00Z"})");
  REQUIRE(later.status == 202);
  std::string id = std::to_string(Body(later)["id"].get<int64_t>());
  auto moved =
      s.admin.Send("PATCH", "/api/v1/deployments/" + id, R"({"at":"2026-06-01T08:00:00Z"})");
  CHECK(moved.status == 400);
  CHECK(Body(moved)["error"]["message"].get<std::string>().find("field 'at'") != std::string::npos);
  CHECK(Body(s.admin.Get("/api/v1/deployments/" + id))["scheduled_at"] ==
        "2026-06-01T12:00:00.000Z");
}

}  // namespace reprise::testing

namespace reprise::testing {

namespace {

bool AgentOnline(HttpClient& admin, const std::string& name) {
  auto agents = Body(admin.Get("/api/v1/agents"));
  for (const auto& a : agents["items"])
    if (a["name"] == name) return a["online"] == true;
  return false;
}

// Every process below `pid` (children, their children...), read from /proc.
std::vector<pid_t> DescendantsOf(pid_t pid) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(entry.path() / "stat");  // "pid (comm) state ppid ..."
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid) children[ppid].push_back(std::stoi(name));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {pid};
  while (!todo.empty() && out.size() < 10000) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

// The agent's machine goes away: the agent and every command it started die
// at once (SIGKILL), so nothing is left holding its connection open.
void KillMachine(AgentProcess& agent) {
  std::vector<pid_t> commands = DescendantsOf(agent.pid());
  agent.Kill();
  for (pid_t p : commands) ::kill(p, SIGKILL);
}

}  // namespace

TEST_CASE("what is deployed where follows what a reconnecting agent reports after a crash") {
  TempDir tmp;
  fs::path data = tmp.path() / "data";
  fs::path root = tmp.path() / "box";
  fs::create_directories(root);
  // The first start picks a free agent port; the restart takes the same one,
  // where the agent keeps reconnecting.
  std::vector<std::string> agent_args = {"--agent-port", "0", "--agent-plain"};
  auto server =
      std::make_unique<ServerProcess>(ServerArgs(data, agent_args), tmp.path() / "server1.log");
  REQUIRE(server->agent_port() > 0);
  agent_args[1] = std::to_string(server->agent_port());
  auto admin = server->Admin();
  REQUIRE(admin.Put("/api/v1/environments/Production", "{}").status == 200);
  json t = {
      {"environment", "Production"}, {"agent", "box"}, {"path", (root / "prod-web").string()}};
  REQUIRE(admin.Put("/api/v1/targets/prod-web", t.dump()).status == 200);
  auto spec = [](const std::string& extra) {
    return "pipeline:\n  - {stage: Production, environment: Production, targets: [prod-web], "
           "plan: p}\nplans:\n  p: |\n    - deploy-artifact: { artifact: web }\n" +
           extra;
  };
  // Release 1.0 deploys; release 2.0 deploys, then takes a while.
  REQUIRE(admin.Put("/api/v1/applications/shop", spec(""), "application/yaml").status == 200);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin
              .Put("/api/v1/applications/shop", spec("    - exec: { command: \"sleep 30\" }\n"),
                   "application/yaml")
              .status == 200);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"2.0"})").status == 201);
  for (const char* rel : {"1.0", "2.0"}) {
    std::string builds = std::string("/api/v1/applications/shop/releases/") + rel + "/builds";
    REQUIRE(admin.Post(builds, "{}").status == 201);
    REQUIRE(
        admin.Put(builds + "/1/artifacts/web", TarGzOf(tmp.path(), TreeOf(1)), "application/gzip")
            .status == 201);
  }
  auto token = admin.Post("/api/v1/agents/enrollment-tokens", R"({"pre_approved": true})");
  REQUIRE(token.status == 201);
  std::vector<std::string> agent_argv = {"--server",       "127.0.0.1:" + agent_args[1],
                                         "--name",         "box",
                                         "--root",         root.string(),
                                         "--enroll-token", Body(token)["token"].get<std::string>(),
                                         "--plain",        "--no-fsync",
                                         "--heartbeat-ms", "200",
                                         "--state",        (tmp.path() / "agent-state").string()};
  auto agent = std::make_unique<AgentProcess>(agent_argv, tmp.path() / "agent.log");
  REQUIRE_MESSAGE(WaitUntil([&] { return AgentOnline(admin, "box"); }),
                  ReadFile(tmp.path() / "agent.log"), ReadFile(tmp.path() / "server1.log"));
  auto deploy = [&](const char* rel) {
    auto r =
        admin.Post(std::string("/api/v1/applications/shop/releases/") + rel + "/builds/1/deploy",
                   R"({"stage":"Production"})");
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return std::to_string(Body(r)["id"].get<int64_t>());
  };
  std::string first = deploy("1.0");
  REQUIRE(WaitUntil(
      [&] { return Body(admin.Get("/api/v1/deployments/" + first))["status"] == "succeeded"; }));
  REQUIRE(TargetCurrent(admin, "prod-web")["release"] == "1.0");

  // 2.0 is switched to on the agent; agent and server die during the sleep.
  std::string second = deploy("2.0");
  REQUIRE(WaitUntil([&] {
    auto log = Body(admin.Get("/api/v1/deployments/" + second + "/log"));
    for (const auto& l : log["lines"])
      if (l["text"].get<std::string>().find("sleep 30") != std::string::npos) return true;
    return false;
  }));
  // The server first: were the agent first, the server could see the
  // connection drop and fail the deployment before it dies.
  server->KillHard();
  KillMachine(*agent);
  REQUIRE(fs::read_symlink(root / "prod-web" / "current").string().find("2.0") !=
          std::string::npos);

  // Restarted without the agent: interrupted; the server cannot know yet.
  server =
      std::make_unique<ServerProcess>(ServerArgs(data, agent_args), tmp.path() / "server2.log");
  admin = server->Admin();
  CHECK(Body(admin.Get("/api/v1/deployments/" + second))["status"] == "interrupted");
  CHECK(TargetCurrent(admin, "prod-web")["release"] == "1.0");
  // The agent is away when the server starts and comes back later: the
  // read-back of the interrupted target is retried until the agent answers
  // (it has no deadline; the 10 s one it once had is gone).
  REQUIRE_FALSE(AgentOnline(admin, "box"));
  agent = std::make_unique<AgentProcess>(agent_argv, tmp.path() / "agent.log");
  REQUIRE(WaitUntil([&] { return TargetCurrent(admin, "prod-web")["release"] == "2.0"; }));
  auto current = TargetCurrent(admin, "prod-web");
  CHECK(current["build"] == 1);
  CHECK(current["deployment_id"].get<int64_t>() == std::stoll(second));
  // The deployment's log says so too (log lines are written in batches).
  CHECK(WaitUntil([&] {
    auto lines = Body(admin.Get("/api/v1/deployments/" + second + "/log"))["lines"];
    for (const auto& l : lines)
      if (l["text"].get<std::string>().find("the agent reports 2.0 build 1 as current") !=
          std::string::npos)
        return true;
    return false;
  }));

  // The machine is rebuilt empty while its agent is away: when it is back,
  // nothing is deployed there (and the change is audited).
  KillMachine(*agent);
  REQUIRE(WaitUntil([&] { return !AgentOnline(admin, "box"); }));
  fs::remove_all(root / "prod-web");
  fs::create_directories(root / "prod-web");
  agent = std::make_unique<AgentProcess>(agent_argv, tmp.path() / "agent.log");
  REQUIRE(WaitUntil([&] { return TargetCurrent(admin, "prod-web").is_null(); }));
  auto audit = Body(admin.Get("/api/v1/audit?action=target.read-back"));
  REQUIRE(audit["items"].size() >= 1);
  CHECK(audit["items"][0]["subject"] == "prod-web");
  CHECK(audit["items"][0]["summary"].get<std::string>().find("nothing deployed") !=
        std::string::npos);

  // The agent alone is lost after the switch, while the server runs: the
  // deployment fails, and when the agent is back it is read back for that
  // deployment, which put 2.0 there.
  std::string third = deploy("2.0");
  REQUIRE(WaitUntil([&] {
    auto log = Body(admin.Get("/api/v1/deployments/" + third + "/log"));
    int seen = 0;
    for (const auto& l : log["lines"])
      seen += l["text"].get<std::string>().find("sleep 30") != std::string::npos;
    return seen > 0;
  }));
  KillMachine(*agent);
  REQUIRE(WaitUntil(
      [&] { return Body(admin.Get("/api/v1/deployments/" + third))["status"] == "failed"; }));
  CHECK(TargetCurrent(admin, "prod-web").is_null());
  agent = std::make_unique<AgentProcess>(agent_argv, tmp.path() / "agent.log");
  REQUIRE(WaitUntil([&] { return TargetCurrent(admin, "prod-web")["release"] == "2.0"; }));
  CHECK(TargetCurrent(admin, "prod-web")["deployment_id"].get<int64_t>() == std::stoll(third));
  REQUIRE(WaitUntil([&] {
    auto lines = Body(admin.Get("/api/v1/deployments/" + third + "/log"))["lines"];
    for (const auto& l : lines)
      if (l["text"].get<std::string>().find("the agent reports 2.0 build 1 as current: the "
                                            "switch completed before the deployment ended") !=
          std::string::npos)
        return true;
    return false;
  }));
}

}  // namespace reprise::testing

namespace reprise::testing {

TEST_CASE("paused manual steps do not take workers; an unknown manual role is refused") {
  TestServer server;  // 4 workers
  auto admin = server.Admin();
  TempDir tmp;
  REQUIRE(admin.Put("/api/v1/environments/Production", "{}").status == 200);
  std::string pipeline;
  for (int i = 1; i <= 5; ++i) {
    std::string target = "t" + std::to_string(i);
    json t = {{"environment", "Production"},
              {"agent", "local"},
              {"path", (tmp.path() / target).string()}};
    REQUIRE(admin.Put("/api/v1/targets/" + target, t.dump()).status == 200);
    pipeline += "  - {stage: S" + std::to_string(i) + ", environment: Production, targets: [" +
                target + "], plan: " + (i < 5 ? "pause" : "note") + "}\n";
  }
  std::string plans =
      "plans:\n  pause: |\n    - manual: { message: \"look\", role: deployer }\n"
      "  note: |\n    - log: \"on t5\"\n";
  // A role the server does not know is an error naming it, not release-manager.
  auto bad = admin.Put("/api/v1/applications/shop",
                       "pipeline:\n" + pipeline +
                           "plans:\n  pause: |\n    - manual: { message: \"look\", role: "
                           "relase-manager }\n  note: |\n    - log: \"on t5\"\n",
                       "application/yaml");
  CHECK(bad.status == 400);
  CHECK(Body(bad)["error"]["message"].get<std::string>().find("unknown role 'relase-manager'") !=
        std::string::npos);
  REQUIRE(
      admin.Put("/api/v1/applications/shop", "pipeline:\n" + pipeline + plans, "application/yaml")
          .status == 200);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases", R"({"number":"1.0"})").status == 201);
  REQUIRE(admin.Post("/api/v1/applications/shop/releases/1.0/builds", "{}").status == 201);
  auto deploy = [&](int stage) {
    auto r = admin.Post(
        "/api/v1/applications/shop/releases/1.0/builds/1/deploy",
        json{{"stage", "S" + std::to_string(stage)}, {"force", true}, {"comment", "test"}}.dump());
    REQUIRE_MESSAGE(r.status == 202, r.body);
    return std::to_string(Body(r)["id"].get<int64_t>());
  };
  auto get = [&](const std::string& id) { return Body(admin.Get("/api/v1/deployments/" + id)); };
  // As many paused deployments as there are workers...
  std::vector<std::string> paused;
  for (int i = 1; i <= 4; ++i) paused.push_back(deploy(i));
  for (const auto& id : paused) REQUIRE(WaitUntil([&] { return get(id).contains("manual"); }));
  // ...and a deployment on another target still runs.
  std::string other = deploy(5);
  REQUIRE(WaitUntil([&] { return get(other)["status"] == "succeeded"; }));
  // Each paused one goes on once continued.
  for (const auto& id : paused)
    REQUIRE(admin.Post("/api/v1/deployments/" + id + "/continue", "{}").status == 200);
  for (const auto& id : paused) CHECK(WaitUntil([&] { return get(id)["status"] == "succeeded"; }));
}

}  // namespace reprise::testing
