#include "planner/executor.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>

#include "tests/planner/fakes.h"

namespace reprise {
namespace {

Plan MustParse(std::string_view yaml) {
  auto plan = ParsePlan(yaml, "plan.yaml");
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  return std::move(plan).value();
}

// An executor wired to fakes; nothing sleeps for real.
struct Harness {
  FakeClock clock{FromUnixMillis(1'000'000)};
  FakeOperations ops;
  FakeManual manual;
  FakeSleeper sleeper{&clock, {}};
  CancelToken cancel;
  std::vector<LogLine> sink;
  ExecutorOptions Options() {
    ExecutorOptions o;
    o.clock = &clock;
    o.operations = &ops;
    o.manual = &manual;
    o.cancel = &cancel;
    o.sleeper = sleeper.AsSleeper();
    o.log_sink = [this](const LogLine& line) { sink.push_back(line); };
    o.step_timeout = std::chrono::seconds(600);
    return o;
  }
  ExecutionReport Run(std::string_view yaml, const ExecutionContext& context) {
    Executor executor(Options());
    auto report = executor.Execute(MustParse(yaml), context);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    return std::move(report).value();
  }
  std::vector<std::string> LogTexts() const {
    std::vector<std::string> out;
    for (const auto& l : sink) out.push_back(l.text);
    return out;
  }
  bool Logged(std::string_view needle) const {
    for (const auto& l : sink) {
      if (l.text.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

const TargetOutcome& OutcomeFor(const ExecutionReport& r, const std::string& target) {
  for (const auto& t : r.targets) {
    if (t.target == target) return t;
  }
  FAIL("no outcome for " << target);
  return r.targets.front();
}

}  // namespace

TEST_CASE("target operations run on every selected target with variables expanded") {
  Harness h;
  auto report = h.Run(R"(
- log: "Deploying $ApplicationName $ReleaseNumber build $BuildNumber"
- deploy-artifact: { artifact: web, to: app }
- exec: { argv: [./migrate.sh, "$DatabaseUrl"], cwd: current }
- write-file: { path: "$ApplicationName.ini", template: "port=$Port\n" }
)",
                      SampleContext({"web-1", "web-2"}));
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(h.ops.Summary() ==
        std::vector<std::string>{"web-1:deploy-artifact", "web-2:deploy-artifact", "web-1:exec",
                                 "web-2:exec", "web-1:write-file", "web-2:write-file"});
  auto deploy = std::get<DeployArtifactOp>(h.ops.calls[0].op);
  CHECK(deploy.sha256 == std::string(64, 'a'));
  CHECK(deploy.to == "app");
  auto exec = std::get<ExecOp>(h.ops.calls[2].op);
  CHECK(exec.argv == std::vector<std::string>{"./migrate.sh", "postgres://db/shop"});
  auto file = std::get<WriteFileOp>(h.ops.calls[4].op);
  CHECK(file.path == "shop.ini");
  CHECK(file.content == "port=8080\n");
  CHECK(h.LogTexts().front() == "Deploying shop 1.0.2 build 3");
  CHECK(report.log.size() == h.sink.size());
  CHECK(OutcomeFor(report, "web-2").kind == TargetOutcome::Kind::kSucceeded);
  // One record per step and target, timestamped by the executor's clock.
  CHECK(report.steps.size() == 7);
  CHECK(report.steps[1].target == "web-1");
  CHECK(report.steps[1].step_id == "2");
  CHECK(report.steps[1].position == SourcePosition{3, 3});
  CHECK(ToUnixMillis(report.steps[1].started) == 1'000'000);
}

TEST_CASE("deploy-artifact carries the build's manifest hash from the context") {
  ExecutionContext c = SampleContext({"web-1"});
  c.artifact_manifest_hash["web"] = std::string(64, 'd');
  Harness h;
  auto report =
      h.Run("- deploy-artifact: { artifact: web }\n- deploy-artifact: { artifact: config }\n", c);
  REQUIRE(report.outcome == Outcome::kSucceeded);
  CHECK(std::get<DeployArtifactOp>(h.ops.calls[0].op).manifest_hash == std::string(64, 'd'));
  // A context without one (stored before it was recorded) sends none.
  CHECK(std::get<DeployArtifactOp>(h.ops.calls[1].op).manifest_hash.empty());
  // It survives the agent protocol's JSON.
  auto back = OperationFromJson(OperationToJson(h.ops.calls[0].op));
  REQUIRE(back.ok());
  CHECK(std::get<DeployArtifactOp>(*back).manifest_hash == std::string(64, 'd'));
}

TEST_CASE("write-file content is written verbatim, template is expanded") {
  Harness h;
  h.Run("- write-file: { path: a.sh, content: \"echo $HOME\" }\n", SampleContext());
  CHECK(std::get<WriteFileOp>(h.ops.calls.at(0).op).content == "echo $HOME");
}

TEST_CASE("if skips the migration on a rollback") {
  const char* plan = R"(
- deploy-artifact: web
- if:
    condition: "!$IsRollback"
    then: [ { exec: ./migrate.sh } ]
    else: [ { log: "skipping migrations, rolling back from $PreviousBuildNumber" } ]
)";
  Harness forward;
  forward.Run(plan, SampleContext());
  CHECK(forward.ops.Summary() == std::vector<std::string>{"web-1:deploy-artifact", "web-1:exec"});
  Harness rollback;
  ExecutionContext c = SampleContext();
  c.is_rollback = true;
  auto report = rollback.Run(plan, c);
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(rollback.ops.Summary() == std::vector<std::string>{"web-1:deploy-artifact"});
  CHECK(rollback.Logged("skipping migrations, rolling back from 2"));
}

TEST_CASE("a failed step fails the deployment and names where") {
  Harness h;
  h.ops.behaviour = [](const TargetInfo&, const ResolvedOperation& op, StepLog& log,
                       const CancelToken&) {
    if (std::holds_alternative<ExecOp>(op)) {
      log.Output("migration 12 failed\n");
      return OperationOutcome::Failed("exit code 3");
    }
    return OperationOutcome::Succeeded();
  };
  auto report = h.Run("- deploy-artifact: web\n- exec: ./migrate.sh\n- log: never\n",
                      SampleContext({"web-1", "web-2"}));
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:2:3: exec: exit code 3");
  CHECK(report.error.ok());
  // The first target failed; the second was never reached.
  CHECK(h.ops.Summary() ==
        std::vector<std::string>{"web-1:deploy-artifact", "web-2:deploy-artifact", "web-1:exec"});
  CHECK(OutcomeFor(report, "web-1").kind == TargetOutcome::Kind::kFailed);
  CHECK(OutcomeFor(report, "web-2").kind == TargetOutcome::Kind::kNotFinished);
  CHECK(h.Logged("migration 12 failed"));
  CHECK_FALSE(h.Logged("never"));
}

TEST_CASE("an orchestration error is distinct from a failure and is not caught") {
  Harness h;
  h.ops.behaviour = [](const TargetInfo&, const ResolvedOperation&, StepLog&, const CancelToken&) {
    return OperationOutcome::Error(Unavailable("agent web-1 disconnected"));
  };
  auto report = h.Run(R"(
- try:
    steps: [ { exec: ./a } ]
    catch: [ { log: caught } ]
    finally: [ { log: cleanup } ]
- log: after
)",
                      SampleContext());
  CHECK(report.outcome == Outcome::kError);
  CHECK(report.error.code() == Code::kUnavailable);
  CHECK(report.error.message() == "plan.yaml:3:16: exec on web-1: agent web-1 disconnected");
  CHECK_FALSE(h.Logged("caught"));
  CHECK_FALSE(h.Logged("cleanup"));
  CHECK_FALSE(h.Logged("after"));
  CHECK(OutcomeFor(report, "web-1").kind == TargetOutcome::Kind::kNotFinished);

  Harness leaky;
  leaky.ops.behaviour = [](const TargetInfo&, const ResolvedOperation&, StepLog&,
                           const CancelToken&) {
    return OperationOutcome::Error(Internal("agent sent back pa55-w0rd"));
  };
  report = leaky.Run("- exec: x\n", SampleContext());
  CHECK(report.error.message() == "plan.yaml:1:3: exec on web-1: agent sent back ******");
  CHECK(report.message == report.error.message());
}

TEST_CASE("retry runs the block again after a delay, then gives up") {
  Harness h;
  int attempts = 0;
  h.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation&, StepLog&, const CancelToken&) {
    ++attempts;
    return attempts < 3 ? OperationOutcome::Failed("503") : OperationOutcome::Succeeded();
  };
  auto report = h.Run("- retry: { count: 3, delay: 5, steps: [ { http-check: \"http://x\" } ] }\n",
                      SampleContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(attempts == 3);
  CHECK(h.sleeper.sleeps ==
        std::vector<std::chrono::milliseconds>{std::chrono::seconds(5), std::chrono::seconds(5)});
  CHECK(h.Logged("attempt 1 of 4 failed (plan.yaml:1:43: http-check: 503); retrying in 5 s"));

  Harness never;
  never.ops.behaviour = [](const TargetInfo&, const ResolvedOperation&, StepLog&,
                           const CancelToken&) { return OperationOutcome::Failed("503"); };
  report = never.Run("- retry: { count: 1, steps: [ { http-check: \"http://x\" } ] }\n",
                     SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(never.ops.calls.size() == 2);
  CHECK(report.message ==
        "plan.yaml:1:3: retry: all 2 attempts failed; last: plan.yaml:1:33: http-check: 503");
}

TEST_CASE("try/catch/finally: catch sees $Error, finally always runs") {
  Harness h;
  h.ops.behaviour = [](const TargetInfo&, const ResolvedOperation& op, StepLog&,
                       const CancelToken&) {
    auto* exec = std::get_if<ExecOp>(&op);
    if (exec && exec->command == "./reload") return OperationOutcome::Failed("exit code 1");
    return OperationOutcome::Succeeded();
  };
  auto report = h.Run(R"(
- try:
    steps:
      - exec: ./reload
      - log: not reached
    catch:
      - log: "recovering from: $Error"
      - exec: ./restart
    finally:
      - log: cleanup
- log: "after, $Error is gone"
)",
                      SampleContext());
  // $Error outside a catch is undefined: the last step fails.
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message.find("undefined variable $Error") != std::string::npos);
  CHECK(h.Logged("recovering from: plan.yaml:4:9: exec: exit code 1"));
  CHECK_FALSE(h.Logged("not reached"));
  CHECK(h.Logged("cleanup"));
  CHECK(h.ops.Summary() == std::vector<std::string>{"web-1:exec", "web-1:exec"});

  Harness uncaught;
  uncaught.ops.behaviour = h.ops.behaviour;
  report = uncaught.Run(R"(
- try:
    steps: [ { exec: ./reload } ]
    finally: [ { log: cleanup } ]
)",
                        SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:3:16: exec: exit code 1");
  CHECK(uncaught.Logged("cleanup"));
}

TEST_CASE("for-each-target runs its steps per target; $TargetName is defined there") {
  Harness h;
  auto report = h.Run(R"(
- for-each-target:
    steps:
      - log: "on $TargetName at $TargetPath"
      - exec: "echo $TargetName"
)",
                      SampleContext({"web-1", "web-2"}));
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(h.ops.Summary() == std::vector<std::string>{"web-1:exec", "web-2:exec"});
  CHECK(std::get<ExecOp>(h.ops.calls[1].op).command == "echo web-2");
  CHECK(h.Logged("on web-1 at /srv/web-1"));
  CHECK(h.sink[0].target == "web-1");
}

TEST_CASE("$TargetName with several targets selected is an error that says why") {
  Harness h;
  auto report = h.Run("- log: \"$TargetName\"\n", SampleContext({"web-1", "web-2"}));
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message ==
        "plan.yaml:1:3: log: undefined variable $TargetName (searched built-ins, runtime, "
        "deployment, build, release, application, target, environment, global); several "
        "targets are selected here, use for-each-target");
  CHECK(OutcomeFor(report, "web-1").kind == TargetOutcome::Kind::kFailed);
}

TEST_CASE(
    "parallel for-each-target runs targets at the same time; a failure fails only its "
    "target") {
  Harness h;
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool saw_both = false;
  h.ops.behaviour = [&](const TargetInfo& target, const ResolvedOperation&, StepLog&,
                        const CancelToken&) {
    std::unique_lock<std::mutex> lock(mu);
    ++started;
    cv.notify_all();
    // Each target waits until the other has started: only possible when they
    // run concurrently (the timeout only keeps a broken build from hanging).
    if (cv.wait_for(lock, std::chrono::seconds(10), [&] { return started == 2; })) saw_both = true;
    return target.name == "web-2" ? OperationOutcome::Failed("disk full")
                                  : OperationOutcome::Succeeded();
  };
  auto report = h.Run(R"(
- for-each-target:
    parallel: true
    steps: [ { deploy-artifact: web } ]
- log: not reached
)",
                      SampleContext({"web-1", "web-2"}));
  CHECK(saw_both);
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:4:16: deploy-artifact: disk full");
  CHECK(OutcomeFor(report, "web-1").kind == TargetOutcome::Kind::kNotFinished);
  CHECK(OutcomeFor(report, "web-2").kind == TargetOutcome::Kind::kFailed);
  CHECK_FALSE(h.Logged("not reached"));
}

TEST_CASE("on-targets narrows the selection; an unknown name fails") {
  Harness h;
  auto report = h.Run(R"(
- on-targets: { targets: [web-2], steps: [ { exec: a } ] }
- exec: b
)",
                      SampleContext({"web-1", "web-2", "web-3"}));
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(h.ops.Summary() ==
        std::vector<std::string>{"web-2:exec", "web-1:exec", "web-2:exec", "web-3:exec"});
  Harness bad;
  report = bad.Run("- on-targets: { targets: [db-1], steps: [ { exec: a } ] }\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message ==
        "plan.yaml:1:3: on-targets: target db-1 is not a target of stage Production");
}

TEST_CASE("set defines a runtime variable that wins over every other scope") {
  Harness h;
  auto report = h.Run(R"(
- log: "port $Port"
- set: { name: Port, value: "9$Port" }
- log: "port $Port"
- set: { name: Token, value: "t0k3n-xyz", sensitive: true }
- exec: "login --token $Token"
- log: "token $Token"
)",
                      SampleContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(h.Logged("port 8080"));
  CHECK(h.Logged("port 98080"));
  CHECK(report.runtime_variables.at("Port").value == "98080");
  // The operation gets the real value; no log line shows it.
  CHECK(std::get<ExecOp>(h.ops.calls[0].op).command == "login --token t0k3n-xyz");
  CHECK(h.Logged("token ******"));
  CHECK(h.Logged("exec sh -c 'login --token ******'"));
  for (const auto& line : h.sink) CHECK(line.text.find("t0k3n") == std::string::npos);
}

TEST_CASE("sensitive values are masked in output chunks, failures and step records") {
  Harness h;
  h.ops.behaviour = [](const TargetInfo&, const ResolvedOperation&, StepLog& log,
                       const CancelToken&) {
    log.Output("connecting with pa5");
    log.Output("5-w0rd\nrefused for pa55");
    log.Output("-w0rd");
    return OperationOutcome::Failed("login failed for pa55-w0rd");
  };
  auto report = h.Run("- exec: { argv: [psql, \"$DatabasePassword\"] }\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:1:3: exec: login failed for ******");
  CHECK(h.Logged("connecting with ******"));
  CHECK(h.Logged("refused for ******"));
  CHECK(h.Logged("exec psql ******"));
  for (const auto& line : h.sink) CHECK(line.text.find("w0rd") == std::string::npos);
  for (const auto& step : report.steps) {
    CHECK(step.message.find("w0rd") == std::string::npos);
    CHECK(step.description.find("w0rd") == std::string::npos);
  }
}

TEST_CASE("undefined variables fail the step, naming the variable, scopes and position") {
  Harness h;
  auto report = h.Run("- log: ok\n- exec: { command: \"run $Missing\" }\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message ==
        "plan.yaml:2:3: exec: undefined variable $Missing (searched built-ins, runtime, "
        "deployment, build, release, application, target, environment, global)");
  CHECK(h.ops.calls.empty());
}

TEST_CASE("deploying an artifact the build does not have fails") {
  Harness h;
  auto report = h.Run("- deploy-artifact: api\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message ==
        "plan.yaml:1:3: deploy-artifact: build 3 has no artifact \"api\" (it has: config, web)");
}

TEST_CASE("wait and retry delays use the injected sleeper") {
  Harness h;
  auto report = h.Run("- log: before\n- wait: 30\n- log: after\n", SampleContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(h.sleeper.sleeps == std::vector<std::chrono::milliseconds>{std::chrono::seconds(30)});
  REQUIRE(h.sink.size() == 3);
  CHECK(h.sink[2].time - h.sink[0].time == std::chrono::seconds(30));
}

TEST_CASE("fail ends the deployment with its message") {
  Harness h;
  auto report = h.Run("- fail: \"not on a $EnvironmentName Friday\"\n- exec: x\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:1:3: fail: not on a Production Friday");
  CHECK(h.ops.calls.empty());
}

TEST_CASE("manual steps wait for a continuation with the role") {
  Harness h;
  auto report = h.Run(
      "- manual: { message: \"check $ApplicationName\", role: release-manager }\n- exec: go\n",
      SampleContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  REQUIRE(h.manual.requests.size() == 1);
  CHECK(h.manual.requests[0].message == "check shop");
  CHECK(h.manual.requests[0].role == "release-manager");
  CHECK(h.manual.requests[0].step_id == "1");
  CHECK(h.ops.calls.size() == 1);

  Harness rejected;
  rejected.manual.outcome = OperationOutcome::Failed("rejected by bob: dashboards red");
  report = rejected.Run("- manual: wait\n- exec: go\n", SampleContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:1:3: manual: rejected by bob: dashboards red");
  CHECK(rejected.ops.calls.empty());

  Harness unsupported;
  ExecutorOptions options = unsupported.Options();
  options.manual = nullptr;
  auto result = Executor(options).Execute(MustParse("- manual: wait\n"), SampleContext());
  REQUIRE(result.ok());
  CHECK(result->outcome == Outcome::kError);
  CHECK(result->error.code() == Code::kFailedPrecondition);
}

TEST_CASE("cancellation stops the deployment") {
  Harness h;
  h.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation&, StepLog&,
                        const CancelToken& cancel) {
    h.cancel.Cancel();  // a user presses cancel while the step runs
    return cancel.IsCancelled() ? OperationOutcome::Failed("killed")
                                : OperationOutcome::Succeeded();
  };
  auto report = h.Run("- exec: long\n- exec: next\n", SampleContext({"web-1", "web-2"}));
  CHECK(report.outcome == Outcome::kCancelled);
  CHECK(h.ops.calls.size() == 1);
  CHECK(OutcomeFor(report, "web-2").kind == TargetOutcome::Kind::kCancelled);

  Harness waiting;
  waiting.cancel.Cancel();
  report = waiting.Run("- wait: 10\n", SampleContext());
  CHECK(report.outcome == Outcome::kCancelled);
}

TEST_CASE("per-step timeouts: the step default and exec's own") {
  Harness h;
  std::vector<std::optional<TimePoint>> deadlines;
  h.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation&, StepLog&,
                        const CancelToken& cancel) {
    deadlines.push_back(cancel.deadline());
    h.clock.Advance(std::chrono::minutes(20));  // the operation hangs past any deadline
    return cancel.IsCancelled() ? OperationOutcome::Failed("stopped")
                                : OperationOutcome::Succeeded();
  };
  auto report = h.Run(R"(
- try:
    steps: [ { exec: { command: slow, timeout: 30 } } ]
    catch: [ { log: "$Error" } ]
- delete: old
)",
                      SampleContext());
  REQUIRE(deadlines.size() == 2);
  CHECK(*deadlines[0] == FromUnixMillis(1'000'000 + 30'000));
  CHECK(h.Logged("plan.yaml:3:16: exec: timed out after 30 s"));
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(report.message == "plan.yaml:5:3: delete: timed out after 600 s");
}

TEST_CASE("a step stopped at its deadline is a failure even when it answers 'cancelled'") {
  // A catch that logs the error of an exec that runs out of time.
  constexpr const char* kCaughtTimeout = R"(
- try:
    steps: [ { exec: { command: "sleep 30", timeout: 1 } } ]
    catch: [ { log: "caught: $Error" } ]
)";
  // What a remote agent answers when the hub cancels a step at its deadline.
  Harness h;
  h.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation& op, StepLog&,
                        const CancelToken& cancel) {
    if (std::holds_alternative<ExecOp>(op)) {
      h.clock.Advance(std::chrono::minutes(20));
      if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("exec cancelled"));
    }
    return OperationOutcome::Succeeded();
  };
  auto caught = h.Run(kCaughtTimeout, SampleContext());
  CHECK(caught.outcome == Outcome::kSucceeded);
  CHECK(h.Logged("caught: plan.yaml:3:16: exec: timed out after 1 s"));

  Harness plain;
  plain.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation&, StepLog&,
                            const CancelToken& cancel) {
    plain.clock.Advance(std::chrono::minutes(20));
    return cancel.IsCancelled() ? OperationOutcome::Error(Timeout("no answer in time"))
                                : OperationOutcome::Succeeded();
  };
  auto failed = plain.Run("- exec: { command: \"sleep 30\", timeout: 1 }\n", SampleContext());
  CHECK(failed.outcome == Outcome::kFailed);
  CHECK(failed.message == "plan.yaml:1:3: exec: timed out after 1 s");
  CHECK(OutcomeFor(failed, "web-1").kind == TargetOutcome::Kind::kFailed);

  // An error that has nothing to do with the deadline stays an error.
  Harness lost;
  lost.ops.behaviour = [&](const TargetInfo&, const ResolvedOperation&, StepLog&,
                           const CancelToken&) {
    lost.clock.Advance(std::chrono::minutes(20));
    return OperationOutcome::Error(Unavailable("agent a disconnected during the operation"));
  };
  auto error = lost.Run(kCaughtTimeout, SampleContext());
  CHECK(error.outcome == Outcome::kError);
  CHECK_FALSE(lost.Logged("caught"));
}

TEST_CASE("execute refuses a context without targets") {
  Harness h;
  ExecutionContext c = SampleContext();
  c.targets.clear();
  auto result = Executor(h.Options()).Execute(MustParse("- log: x\n"), c);
  CHECK(result.status().code() == Code::kInvalidArgument);
}

// ---- dry run ----

TEST_CASE("dry run lists per target what would run, expanded and masked") {
  auto plan = MustParse(R"(
- log: "Deploying build $BuildNumber"
- for-each-target:
    steps:
      - deploy-artifact: web
      - exec: { argv: [migrate, "$DatabasePassword"] }
)");
  auto dry = DryRun(plan, SampleContext({"web-1", "web-2"}));
  REQUIRE(dry.ok());
  CHECK(dry->problems.empty());
  REQUIRE(dry->targets.size() == 2);
  const auto& steps = dry->targets[1].steps;
  REQUIRE(steps.size() == 4);
  CHECK(dry->targets[1].target == "web-2");
  CHECK(steps[0].description == "log: Deploying build 3");
  CHECK(steps[1].kind == "for-each-target");
  CHECK(steps[2].description == "deploy-artifact web to . (atomic, keep 3, sha256 aaaaaaaaaaaa)");
  CHECK(steps[2].depth == 1);
  REQUIRE(steps[2].operation.has_value());
  CHECK(std::get<DeployArtifactOp>(*steps[2].operation).sha256 == std::string(64, 'a'));
  CHECK(steps[3].description == "exec migrate ******");
  CHECK(std::get<ExecOp>(*steps[3].operation).argv[1] == "******");
  CHECK(steps[3].condition.empty());
}

TEST_CASE("dry run follows decidable conditions and says so when it cannot decide") {
  auto plan = MustParse(R"(
- if:
    condition: "!$IsRollback"
    then: [ { exec: ./migrate.sh } ]
    else: [ { log: skipped } ]
- try:
    steps: [ { exec: ./reload } ]
    catch: [ { set: { name: Reloaded, value: "no" } }, { log: "$Error" } ]
- if:
    condition: "$Reloaded == no"
    then: [ { exec: ./restart } ]
)");
  auto dry = DryRun(plan, SampleContext());
  REQUIRE(dry.ok());
  CHECK(dry->problems.empty());
  std::vector<std::string> lines;
  for (const auto& s : dry->targets[0].steps) {
    lines.push_back(s.description + (s.condition.empty() ? "" : " [" + s.condition + "]"));
  }
  CHECK(lines == std::vector<std::string>{
                     "if !$IsRollback: true, runs 'then'",
                     "exec sh -c ./migrate.sh",
                     "try",
                     "exec sh -c ./reload",
                     "set $Reloaded = no [only if a step in the try fails]",
                     "log: <$Error: known at run time> [only if a step in the try fails]",
                     "if $Reloaded == no: known at run time, both branches shown",
                     "exec sh -c ./restart [only if $Reloaded == no (known at run time)]",
                 });
}

TEST_CASE("dry run reports problems with their position instead of running") {
  auto plan = MustParse(R"(
- exec: "run $Missing"
- deploy-artifact: api
- on-targets: { targets: [nope], steps: [] }
)");
  auto dry = DryRun(plan, SampleContext());
  REQUIRE(dry.ok());
  CHECK(dry->problems ==
        std::vector<std::string>{
            "plan.yaml:2:3: exec: on web-1: undefined variable $Missing (searched built-ins, "
            "runtime, deployment, build, release, application, target, environment, global)",
            "plan.yaml:3:3: deploy-artifact: on web-1: build 3 has no artifact \"api\" (it has: "
            "config, web)",
            "plan.yaml:4:3: on-targets: target nope is not a target of stage Production"});
}

}  // namespace reprise

namespace reprise {

TEST_CASE("dry run stops at a fail that is certain to run, and knows a catch will handle it") {
  auto plan = MustParse(R"(
- if:
    condition: "$EnvironmentName == Production"
    then: [ { fail: "no deploys to $EnvironmentName" } ]
- exec: never
)");
  auto dry = DryRun(plan, SampleContext());
  REQUIRE(dry.ok());
  CHECK(dry->problems ==
        std::vector<std::string>{"the deployment would fail: plan.yaml:4:15: fail: no deploys to "
                                 "Production"});
  CHECK(dry->targets[0].steps.back().kind == "fail");

  auto caught = MustParse(R"(
- try:
    steps: [ { fail: stop } ]
    catch: [ { log: "handled: $Error" } ]
- exec: runs
)");
  dry = DryRun(caught, SampleContext());
  REQUIRE(dry.ok());
  CHECK(dry->problems.empty());
  const auto& steps = dry->targets[0].steps;
  CHECK(steps[2].description == "log: handled: plan.yaml:3:16: fail: stop");
  CHECK(steps[2].condition.empty());
  CHECK(steps[3].description == "exec sh -c runs");
}

}  // namespace reprise
