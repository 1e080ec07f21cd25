// The hub with real reprise-agent processes on loopback: enrollment and
// approval, deploy / re-deploy from cache / validate over the channel, file
// operations and exec, identity checks, heartbeats and reconnects, crashes
// during a transfer and an extraction, TLS pinning, and the API routes
// (hostile agents and frames: hub_protocol_test.cpp).
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "agents/protocol/protocol.h"
#include "planner/executor.h"
#include "planner/plan.h"
#include "tests/server/hub/hub_test_support.h"
#include "tests/server/hub/raw_agent.h"

namespace reprise::testing {
namespace {

DeployArtifactOp Deploy(const std::string& sha) { return {"web", sha, "", DeployMode::kAtomic, 3}; }

TEST_CASE("enroll, approve, deploy, re-deploy from the cache, validate") {
  HubFixture f;
  fs::path root = f.tmp.path() / "a1";
  f.AddTarget("web1", "a1", root);
  TargetInfo t{"web1", "a1", root.string(), {}};
  auto agent = f.StartAgent("a1", root, f.Token(false));

  REQUIRE_MESSAGE(f.WaitStatus("a1", "pending"), agent->Log());
  // The agent's secret is its private key, readable by its owner only.
  struct stat st;
  REQUIRE(::stat((root / ".reprise/agent/agent.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto rec = f.store->GetAgent("a1");
  REQUIRE(rec.ok());
  CHECK(rec->public_key.size() == 64);
  CHECK(rec->key_fingerprint.size() == 64);
  CHECK(rec->secret_hash.empty());

  // A pending agent gets no work.
  Manifest m1, m2;
  std::string b1 = f.AddArtifact({{"index.html", "build 1"}, {"app/run.sh", "#!/bin/sh\n"}}, &m1);
  std::string b2 = f.AddArtifact({{"index.html", "build 2"}}, &m2);
  auto refused = RunOn(*f.hub, t, Deploy(b1));
  CHECK(refused.kind == OperationOutcome::Kind::kError);
  CHECK(refused.error.code() == Code::kUnavailable);

  REQUIRE(f.hub->Approve("a1", "admin").ok());
  REQUIRE(f.WaitStatus("a1", "online"));
  auto audit = f.store->ListAudit({"agent.", ""}, {});
  REQUIRE(audit.ok());
  bool enrolled = false, approved = false;
  for (const auto& a : *audit) {
    enrolled |= a.action == "agent.enroll";
    approved |= a.action == "agent.approve" && a.actor == "admin";
  }
  CHECK(enrolled);
  CHECK(approved);

  LogCollector l1;
  auto out = RunOn(*f.hub, t, Deploy(b1), "1", &l1);
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString(), agent->Log());
  CHECK(ReadFile(root / "current/index.html") == "build 1");
  auto state = f.hub->GetTargetState("web1");
  REQUIRE(state.ok());
  CHECK(state->online);
  CHECK(state->build == "1");
  CHECK(state->release == "1.0");
  CHECK(state->artifact_sha256 == b1);
  CHECK(state->manifest_hash == m1.manifest_hash);
  CHECK(state->current_release == "1.0-1-" + b1.substr(0, 12));

  REQUIRE(RunOn(*f.hub, t, Deploy(b2), "2").succeeded());
  CHECK(ReadFile(root / "current/index.html") == "build 2");
  CHECK(f.hub->GetTargetState("web1")->build == "2");

  // Rollback: build 1 is still on the target, so only the link moves.
  LogCollector l3;
  REQUIRE(RunOn(*f.hub, t, Deploy(b1), "1", &l3).succeeded());
  CHECK(l3.Contains("switching only"));
  CHECK_FALSE(l3.Contains("extracted"));
  CHECK(ReadFile(root / "current/index.html") == "build 1");
  state = f.hub->GetTargetState("web1");
  CHECK(state->build == "1");
  CHECK(state->previous_release == "1.0-2-" + b2.substr(0, 12));

  auto report = f.hub->Validate("web1", m1);
  REQUIRE(report.ok());
  CHECK(report->ok());
  CHECK(report->files_checked == 2);
  std::ofstream(fs::canonical(root / "current") / "index.html") << "defaced";
  report = f.hub->Validate("web1", m1);
  REQUIRE(report.ok());
  REQUIRE(report->changed.size() == 1);
  CHECK(report->changed[0].path == "index.html");

  auto agents = f.hub->Agents();
  bool found = false;
  for (const auto& a : agents) {
    if (a.name != "a1") continue;
    found = true;
    CHECK(a.online);
    CHECK_FALSE(a.version.empty());
    CHECK(a.targets == std::vector<std::string>{"web1"});
  }
  CHECK(found);
}

TEST_CASE(
    "over the channel: the server's archive limits and the build's manifest hash are checked by "
    "the agent") {
  ArchiveLimits tight;
  tight.max_entries = 2;
  HubFixture f(false, false, [&](AgentHubOptions& o) { o.archive_limits = tight; });
  fs::path root = f.tmp.path() / "lim";
  TargetInfo t{"lim1", "lim", root.string(), {}};
  auto agent = f.StartOnlineAgent("lim", "lim1", root);

  std::string three = f.AddArtifact({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  auto refused = RunOn(*f.hub, t, Deploy(three));
  CHECK(refused.kind == OperationOutcome::Kind::kFailed);
  CHECK_MESSAGE(refused.message.find("max_entries") != std::string::npos, refused.message);
  CHECK_FALSE(fs::exists(root / "current"));

  Manifest m;
  std::string two = f.AddArtifact({{"index.html", "two"}}, &m);
  DeployArtifactOp wrong = Deploy(two);
  wrong.manifest_hash = std::string(64, 'f');
  auto mismatch = RunOn(*f.hub, t, wrong, "2");
  CHECK(mismatch.kind == OperationOutcome::Kind::kFailed);
  CHECK_MESSAGE(mismatch.message.find("does not match the build's manifest") != std::string::npos,
                mismatch.message);
  CHECK_FALSE(fs::exists(root / "current"));

  DeployArtifactOp right = Deploy(two);
  right.manifest_hash = m.manifest_hash;
  LogCollector logs;
  auto ok = RunOn(*f.hub, t, right, "2", &logs);
  REQUIRE_MESSAGE(ok.succeeded(), ok.message);
  CHECK(ReadFile(root / "current/index.html") == "two");
  CHECK(logs.Contains("verified against the build's manifest"));
}

TEST_CASE("file operations and exec run on the agent, confined to the target root") {
  HubFixture f;
  fs::path root = f.tmp.path() / "a2";
  TargetInfo t{"t2", "", "", {}};  // agent and path come from the store
  auto agent = f.StartOnlineAgent("a2", "t2", root);

  // Binary content with a NUL and bytes that are not UTF-8.
  const char kBinary[] = "bin\0\xff\xfe data\n";
  std::string bytes(kBinary, sizeof(kBinary) - 1);
  REQUIRE(RunOn(*f.hub, t, WriteFileOp{"conf/app.bin", bytes, 0640}).succeeded());
  CHECK(ReadFile(root / "conf/app.bin") == bytes);
  REQUIRE(RunOn(*f.hub, t, EnsureDirOp{"logs", 0755}).succeeded());
  CHECK(fs::is_directory(root / "logs"));
  CHECK(RunOn(*f.hub, t, WriteFileOp{"../escaped", "x", 0644}).kind ==
        OperationOutcome::Kind::kFailed);
  CHECK_FALSE(fs::exists(f.tmp.path() / "escaped"));
  CHECK(RunOn(*f.hub, t, DeleteOp{"../a2"}).kind == OperationOutcome::Kind::kFailed);
  REQUIRE(RunOn(*f.hub, t, DeleteOp{"logs"}).succeeded());
  CHECK_FALSE(fs::exists(root / "logs"));

  LogCollector logs;
  ExecOp e;
  e.command = "echo out-line; echo err-line >&2; exit 4";
  auto out = RunOn(*f.hub, t, e, "1", &logs);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("exit code 4") != std::string::npos);
  CHECK(logs.Contains("out-line"));
  CHECK(logs.Contains("err-line"));

  // A target outside the agent's --root is refused by the agent itself.
  TargetInfo outside{"x", "a2", f.tmp.path().string(), {}};
  CHECK(RunOn(*f.hub, outside, EnsureDirOp{"pwned", 0755}).kind == OperationOutcome::Kind::kFailed);
  CHECK_FALSE(fs::exists(f.tmp.path() / "pwned"));

  // Cancelling an exec on the agent.
  ExecOp sleepy;
  sleepy.command = "sleep 60";
  auto ops = f.hub->OperationsFor(Context("1"));
  LogCollector l2;
  CancelToken cancel;
  std::thread canceller([&] {
    WaitUntil([&] { return l2.Contains("started"); });
    cancel.Cancel();
  });
  auto c = ops->Run(t, sleepy, *l2.log, cancel);
  canceller.join();
  CHECK(c.kind == OperationOutcome::Kind::kError);
  CHECK(c.error.code() == Code::kCancelled);
}

TEST_CASE("exec steps never see the agent's or the server's tokens") {
  // The local agent runs inside the server, whose environment holds the
  // admin token; a remote agent may take its enrollment token from its own.
  HubFixture f(false, /*local_agent=*/true);
  std::string token = f.Token(true);
  ::setenv("REPRISE_ADMIN_TOKEN", "admin-secret-in-the-server-env", 1);
  ::setenv("REPRISE_ENROLL_TOKEN", token.c_str(), 1);
  fs::path root = f.tmp.path() / "env-agent";
  f.AddTarget("remote", "env-agent", root);
  f.AddTarget("here", "local", f.tmp.path() / "env-local");
  auto agent = f.StartAgent("env-agent", root, "");  // the token comes from the environment
  ::unsetenv("REPRISE_ENROLL_TOKEN");
  REQUIRE_MESSAGE(f.WaitStatus("env-agent", "online"), agent->Log());

  ExecOp env;
  env.argv = {"env"};
  for (const std::string target : {"remote", "here"}) {
    CAPTURE(target);
    LogCollector logs;
    TargetInfo t{target, "", "", {}};
    REQUIRE(RunOn(*f.hub, t, env, "1", &logs).succeeded());
    CHECK(logs.Contains("PATH="));
    CHECK(logs.Contains("REPRISE_TARGET_ROOT="));
    CHECK_FALSE(logs.Contains(token));
    CHECK_FALSE(logs.Contains("admin-secret-in-the-server-env"));
    CHECK_FALSE(logs.Contains("REPRISE_ENROLL_TOKEN"));
    CHECK_FALSE(logs.Contains("REPRISE_ADMIN_TOKEN"));
  }
  ::unsetenv("REPRISE_ADMIN_TOKEN");
}

bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  // A zombie (not reaped by a container's init) counts as dead.
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return !(close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

TEST_CASE("a step that times out on a real agent is a failure that try/catch catches") {
  HubFixture f;
  fs::path root = f.tmp.path() / "slow";
  auto agent = f.StartOnlineAgent("slow", "slow-web", root);
  ExecutionContext context = Context("1");
  context.targets.push_back({"slow-web", "slow", root.string(), {}});
  auto ops = f.hub->OperationsFor(context);
  auto run = [&](const std::string& yaml, std::chrono::seconds step_timeout) {
    auto plan = ParsePlan(yaml, "plan.yaml");
    REQUIRE_MESSAGE(plan.ok(), plan.status().ToString());
    ExecutorOptions o;
    o.operations = ops.get();
    o.step_timeout = step_timeout;
    auto report = Executor(o).Execute(*plan, context);
    REQUIRE_MESSAGE(report.ok(), report.status().ToString());
    return std::move(report).value();
  };
  auto logged = [](const ExecutionReport& r, const std::string& text) {
    for (const auto& l : r.log) {
      if (l.text.find(text) != std::string::npos) return true;
    }
    return false;
  };

  // The deadline is exec's own `timeout` or the executor's default for a
  // step; with the latter the agent only learns of it through `cancel`.
  for (bool own_timeout : {true, false}) {
    CAPTURE(own_timeout);
    const std::string timeout = own_timeout ? ", timeout: 1" : "";
    const auto step_timeout = std::chrono::seconds(own_timeout ? 3600 : 1);
    auto caught = run(R"(
- try:
    steps: [ { exec: { command: "sleep 30")" +
                          timeout + R"( } } ]
    catch: [ { log: "caught: $Error" } ]
)",
                      step_timeout);
    CHECK_MESSAGE(caught.outcome == Outcome::kSucceeded, caught.message, caught.error.ToString());
    CHECK(logged(caught, "caught: plan.yaml:3:16: exec: timed out after 1 s"));

    // Without try the deployment fails (it is not an error) and the whole
    // process group is gone. ($$ is a literal $ in a plan.)
    fs::path pidfile = f.tmp.path() / ("grandchild-" + std::to_string(own_timeout) + ".pid");
    std::string command = "sleep 30 & echo $$! > " + pidfile.string() + "; sleep 30";
    auto failed = run("- exec: { command: \"" + command + "\"" + timeout + " }\n", step_timeout);
    CHECK_MESSAGE(failed.outcome == Outcome::kFailed, failed.message, failed.error.ToString());
    CHECK(failed.message == "plan.yaml:1:3: exec: timed out after 1 s");
    REQUIRE(failed.targets.size() == 1);
    CHECK(failed.targets[0].kind == TargetOutcome::Kind::kFailed);
    std::string pid_text = ReadFile(pidfile);
    REQUIRE_FALSE(pid_text.empty());
    pid_t grandchild = static_cast<pid_t>(std::stol(pid_text));
    CHECK(WaitUntil([&] { return !ProcessAlive(grandchild); }));
  }
  // The agent stayed connected through all of it and still works.
  CHECK(f.StatusOf("slow") == "online");
  ExecOp echo;
  echo.command = "echo still here";
  CHECK(RunOn(*f.hub, TargetInfo{"slow-web", "", "", {}}, echo).succeeded());
}

TEST_CASE("a second agent claiming a known name with another key is refused and audited") {
  HubFixture f;
  std::string token = f.Token(true);
  fs::path r1 = f.tmp.path() / "r1", r2 = f.tmp.path() / "r2";
  auto first = f.StartAgent("web", r1, token);
  REQUIRE_MESSAGE(f.WaitStatus("web", "online"), first->Log());
  std::string key = f.store->GetAgent("web")->public_key;

  auto impostor = f.StartAgent("web", r2, token);
  REQUIRE(WaitUntil([&] { return impostor->Exited(); }));
  CHECK(impostor->Wait() == 3);
  CHECK(impostor->Log().find("another key") != std::string::npos);
  CHECK(f.store->GetAgent("web")->public_key == key);
  auto audit = f.store->ListAudit({"agent.key_mismatch", "web"}, {});
  REQUIRE(audit.ok());
  CHECK(audit->size() == 1);
  // The real agent was not displaced.
  CHECK(f.StatusOf("web") == "online");
}

TEST_CASE("unknown agents need a valid enrollment token") {
  HubFixture f;
  SUBCASE("no token") {
    auto a = f.StartAgent("nobody", f.tmp.path() / "n", "");
    REQUIRE(WaitUntil([&] { return a->Exited(); }));
    CHECK(a->Wait() == 3);
  }
  SUBCASE("a made-up token") {
    auto a = f.StartAgent("nobody", f.tmp.path() / "n", "rpe_0123456789abcdef");
    REQUIRE(WaitUntil([&] { return a->Exited(); }));
    CHECK(a->Wait() == 3);
    auto audit = f.store->ListAudit({"agent.enroll_refused", ""}, {});
    CHECK(audit->size() == 1);
  }
  SUBCASE("an expired token") {
    EnrollTokenRecord r{Sha256Hex("rpe_expired"), true, "admin", 0, 1, ""};
    REQUIRE(f.store->CreateEnrollToken(r).ok());
    auto a = f.StartAgent("nobody", f.tmp.path() / "n", "rpe_expired");
    REQUIRE(WaitUntil([&] { return a->Exited(); }));
    CHECK(a->Wait() == 3);
  }
  CHECK(f.store->GetAgent("nobody").status().code() == Code::kNotFound);
}

TEST_CASE("missed heartbeats mark an agent offline; it reconnects") {
  HubFixture f;
  fs::path root = f.tmp.path() / "hb";
  auto a = f.StartAgent("hb", root, f.Token(true));
  REQUIRE(f.WaitStatus("hb", "online"));
  a->Signal(SIGSTOP);
  CHECK(f.WaitStatus("hb", "offline"));
  TargetInfo t{"t", "hb", root.string(), {}};
  auto out = RunOn(*f.hub, t, EnsureDirOp{"x", 0755});
  CHECK(out.kind == OperationOutcome::Kind::kError);
  CHECK(out.error.code() == Code::kUnavailable);
  a->Signal(SIGCONT);
  CHECK(f.WaitStatus("hb", "online"));
  CHECK(RunOn(*f.hub, t, EnsureDirOp{"x", 0755}).succeeded());
}

// A large, incompressible artifact: the transfer and the extraction take
// long enough to kill the agent in the middle (triggered by progress
// reports, not by timing).
std::map<std::string, std::string> BigFiles(unsigned seed) {
  std::mt19937_64 rng(seed);
  std::map<std::string, std::string> files;
  for (int i = 0; i < 6; ++i) {
    std::string s(4 << 20, '\0');
    for (size_t j = 0; j + 8 <= s.size(); j += 8) {
      uint64_t v = rng();
      std::memcpy(&s[j], &v, 8);
    }
    files["blob" + std::to_string(i) + ".bin"] = std::move(s);
  }
  files["index.html"] = "big build " + std::to_string(seed);
  return files;
}

TEST_CASE("killing the agent during a transfer or an extraction keeps the previous release") {
  HubFixture f;
  fs::path root = f.tmp.path() / "crash";
  f.AddTarget("c", "crash", root);
  TargetInfo t{"c", "crash", root.string(), {}};
  std::string token = f.Token(true);
  auto agent = f.StartAgent("crash", root, token);
  REQUIRE(f.WaitStatus("crash", "online"));
  Manifest m1;
  std::string b1 = f.AddArtifact({{"index.html", "small build 1"}}, &m1);
  REQUIRE(RunOn(*f.hub, t, Deploy(b1), "1").succeeded());
  std::string b2 = f.AddArtifact(BigFiles(2));

  std::string phase;
  SUBCASE("during the transfer") { phase = "transfer"; }
  SUBCASE("during the extraction") { phase = "extract"; }
  CAPTURE(phase);
  pid_t pid = agent->pid();
  {
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = [pid, phase](const std::string&, const TransferProgress& p) {
      if (p.phase == phase && (phase != "transfer" || p.bytes_done < p.bytes_total)) {
        ::kill(pid, SIGKILL);
      }
    };
  }
  auto out = RunOn(*f.hub, t, Deploy(b2), "2");
  {
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = nullptr;
  }
  CHECK_FALSE(out.succeeded());
  CHECK(out.error.code() == Code::kUnavailable);
  agent->Wait();

  // Nothing half-written is visible: current is still build 1, whole.
  CHECK(ReadFile(root / "current/index.html") == "small build 1");
  auto agent2 = f.StartAgent("crash", root, "");
  REQUIRE_MESSAGE(f.WaitStatus("crash", "online"), agent2->Log());
  auto state = f.hub->GetTargetState("c");
  REQUIRE(state.ok());
  CHECK(state->build == "1");
  auto v = f.hub->Validate("c", m1);
  REQUIRE(v.ok());
  CHECK(v->ok());
  // The next deploy cleans up and succeeds.
  auto again = RunOn(*f.hub, t, Deploy(b2), "2");
  REQUIRE_MESSAGE(again.succeeded(), again.message, again.error.ToString());
  CHECK(ReadFile(root / "current/index.html") == "big build 2");
  CHECK(fs::is_empty(root / ".reprise/tmp"));
}

TEST_CASE("TLS: the agent pins the server certificate; a wrong fingerprint is refused") {
  HubFixture f(/*tls=*/true);
  std::string fp = f.hub->cert_fingerprint();
  REQUIRE(fp.size() == 64);
  CHECK(fs::exists(f.tmp.path() / "data/agent-tls.crt"));
  std::string token = f.Token(true);

  fs::path root = f.tmp.path() / "tls";
  f.AddTarget("tls-web", "tls", root);
  auto good = f.StartAgent("tls", root, token, {"--fingerprint", fp});
  REQUIRE_MESSAGE(f.WaitStatus("tls", "online"), good->Log());
  std::string b1 = f.AddArtifact({{"index.html", "over tls"}});
  TargetInfo t{"tls-web", "tls", root.string(), {}};
  REQUIRE(RunOn(*f.hub, t, Deploy(b1)).succeeded());
  CHECK(ReadFile(root / "current/index.html") == "over tls");

  std::string wrong = fp;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  auto bad = f.StartAgent("mitm-victim", f.tmp.path() / "v", token, {"--fingerprint", wrong});
  REQUIRE(WaitUntil([&] { return bad->Log().find("not the pinned one") != std::string::npos; }));
  CHECK(f.StatusOf("mitm-victim") == "");
  CHECK(f.store->GetAgent("mitm-victim").status().code() == Code::kNotFound);

  // Plain TCP to a TLS port gets nowhere either.
  auto plain = f.StartAgent("plain", f.tmp.path() / "p", token, {"--plain"});
  CHECK_FALSE(
      WaitUntil([&] { return f.StatusOf("plain") != ""; }, std::chrono::milliseconds(1500)));
}

TEST_CASE("the local agent runs the same deployment code in-process") {
  HubFixture f(false, /*local_agent=*/true);
  fs::path root = f.tmp.path() / "local-target";
  f.AddTarget("demo", "local", root);
  TargetInfo t{"demo", "local", root.string(), {}};
  Manifest m1;
  std::string b1 = f.AddArtifact({{"index.html", "local 1"}}, &m1);
  std::string b2 = f.AddArtifact({{"index.html", "local 2"}});
  std::vector<std::string> phases;
  {
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = [&phases](const std::string& target, const TransferProgress& p) {
      if (target == "demo") phases.push_back(p.phase);
    };
  }
  REQUIRE(RunOn(*f.hub, t, Deploy(b1), "1").succeeded());
  REQUIRE(RunOn(*f.hub, t, Deploy(b2), "2").succeeded());
  LogCollector l;
  REQUIRE(RunOn(*f.hub, t, Deploy(b1), "1", &l).succeeded());
  {
    std::lock_guard<std::mutex> g(f.progress_mu);
    f.progress_hook = nullptr;
  }
  CHECK(l.Contains("switching only"));
  CHECK(std::find(phases.begin(), phases.end(), "done") != phases.end());
  CHECK(ReadFile(root / "current/index.html") == "local 1");
  auto st = f.hub->GetTargetState("demo");
  REQUIRE(st.ok());
  CHECK(st->online);
  CHECK(st->build == "1");
  CHECK(f.hub->Validate("demo", m1)->ok());
  bool listed = false;
  for (const auto& a : f.hub->Agents()) listed |= a.name == "local" && a.status == "online";
  CHECK(listed);
  // Targets outside the local agent's root are refused.
  TargetInfo outside{"o", "local", "/etc", {}};
  CHECK(RunOn(*f.hub, outside, EnsureDirOp{"x", 0755}).kind == OperationOutcome::Kind::kFailed);
}

TEST_CASE("agent routes: list, approve, enrollment tokens") {
  HubFixture f;
  auto routes = f.hub->Routes();
  auto find = [&](const std::string& method, const std::string& pattern) -> Route& {
    for (auto& r : routes) {
      if (r.method == method && r.pattern == pattern) return r;
    }
    FAIL("no route " << method << " " << pattern);
    throw 0;
  };
  Route& create = find("POST", "/api/v1/agents/enrollment-tokens");
  CHECK(create.min_role == Role::kAdmin);
  HttpRequest req;
  req.principal = {"root", Role::kAdmin, false};
  req.body = R"({"pre_approved": false, "expires_in_seconds": 600})";
  HttpResponse res = create.handler(req);
  REQUIRE(res.status == 201);
  std::string token = nlohmann::json::parse(res.body)["token"];
  CHECK(token.rfind("rpe_", 0) == 0);
  req.body = R"({"pre_approved": "yes"})";
  CHECK(create.handler(req).status == 400);
  req.body = R"({"bogus": 1})";
  CHECK(create.handler(req).status == 400);
  req.body = R"({"expires_in_seconds": 0})";
  CHECK(create.handler(req).status == 400);

  fs::path root = f.tmp.path() / "r";
  auto agent = f.StartAgent("api-agent", root, token);
  REQUIRE(f.WaitStatus("api-agent", "pending"));

  Route& list = find("GET", "/api/v1/agents");
  CHECK(list.min_role == Role::kViewer);
  HttpRequest lreq;
  auto body = nlohmann::json::parse(list.handler(lreq).body);
  REQUIRE(body["items"].size() == 1);
  CHECK(body["items"][0]["name"] == "api-agent");
  CHECK(body["items"][0]["status"] == "pending");

  Route& approve = find("POST", "/api/v1/agents/{name}/approve");
  CHECK(approve.min_role == Role::kAdmin);
  HttpRequest areq;
  areq.principal = {"root", Role::kAdmin, false};
  areq.path_params["name"] = "ghost";
  CHECK(approve.handler(areq).status == 404);
  areq.path_params["name"] = "api-agent";
  CHECK(approve.handler(areq).status == 200);
  CHECK(f.WaitStatus("api-agent", "online"));
  auto audit = f.store->ListAudit({"agent.approve", "api-agent"}, {});
  REQUIRE(audit->size() == 1);
  CHECK((*audit)[0].actor == "root");
}

}  // namespace
}  // namespace reprise::testing
