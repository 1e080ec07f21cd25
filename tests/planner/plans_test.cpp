// Every file in plans/ parses, previews and runs against fake operations.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "planner/app_spec.h"
#include "planner/executor.h"
#include "tests/planner/fakes.h"

namespace reprise {
namespace {

std::filesystem::path PlansDir() {
  const char* env = std::getenv("REPRISE_SOURCE_DIR");
  return std::filesystem::path(env ? env : REPRISE_SOURCE_DIR_DEFAULT) / "plans";
}

std::string Read(const std::string& name) {
  auto text = ReadFileToString(PlansDir() / name);
  REQUIRE_MESSAGE(text.ok(), text.status().message());
  return *text;
}

Plan MustParsePlan(const std::string& name) {
  auto plan = ParsePlan(Read(name), name);
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  return std::move(plan).value();
}

ExecutionContext ProductionContext() {
  ExecutionContext c = SampleContext({"prod-web-1", "prod-web-2"});
  return c;
}

struct Run {
  FakeClock clock{FromUnixMillis(0)};
  FakeOperations ops;
  FakeManual manual;
  FakeSleeper sleeper{&clock, {}};
  std::vector<LogLine> log;

  ExecutionReport Execute(const Plan& plan, const ExecutionContext& c) {
    ExecutorOptions o;
    o.clock = &clock;
    o.operations = &ops;
    o.manual = &manual;
    o.sleeper = sleeper.AsSleeper();
    o.log_sink = [this](const LogLine& l) { log.push_back(l); };
    auto report = Executor(o).Execute(plan, c);
    REQUIRE_MESSAGE(report.ok(), report.status().message());
    return std::move(report).value();
  }
};

}  // namespace

TEST_CASE("every file in plans/ parses") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PlansDir())) {
    if (entry.path().extension() != ".yaml") continue;
    std::string name = entry.path().filename().string();
    CAPTURE(name);
    std::string text = Read(name);
    if (text.find("\npipeline:") != std::string::npos) {
      auto spec = ParseAppSpec(text, name);
      CHECK_MESSAGE(spec.ok(), spec.status().message());
    } else {
      auto plan = ParsePlan(text, name);
      CHECK_MESSAGE(plan.ok(), plan.status().message());
    }
    ++count;
  }
  CHECK(count >= 4);
}

TEST_CASE("web-atomic: migrates forward, skips the migration on a rollback, checks health") {
  Plan plan = MustParsePlan("web-atomic.yaml");
  Run forward;
  auto report = forward.Execute(plan, ProductionContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  auto calls = forward.ops.Summary();
  CHECK(std::count(calls.begin(), calls.end(), "prod-web-1:exec") == 2);  // migrate + restart
  CHECK(std::count(calls.begin(), calls.end(), "prod-web-2:http-check") == 1);
  // The migration is irreversible, with a down-migration as its undo.
  int irreversible = 0;
  for (const auto& step : report.steps)
    if (step.irreversible) {
      ++irreversible;
      CHECK(step.has_undo);
      CHECK(step.description.find("./migrate.sh") != std::string::npos);
      CHECK_FALSE(step.note.empty());
    }
  CHECK(irreversible == 2);  // once per target

  ExecutionContext rollback_context = ProductionContext();
  rollback_context.is_rollback = true;
  rollback_context.is_redeploy = true;
  Run rollback;
  report = rollback.Execute(plan, rollback_context);
  CHECK(report.outcome == Outcome::kSucceeded);
  calls = rollback.ops.Summary();
  CHECK(std::count(calls.begin(), calls.end(), "prod-web-1:exec") == 1);  // restart only
  for (const auto& call : rollback.ops.calls) {
    if (auto* exec = std::get_if<ExecOp>(&call.op)) CHECK(exec->command == "./restart.sh");
  }

  auto preview = DryRun(plan, rollback_context);
  REQUIRE(preview.ok());
  CHECK(preview->problems.empty());
  bool skipped_shown = false;
  for (const auto& s : preview->targets[0].steps) {
    if (s.description.find("migrations skipped on prod-web-1") != std::string::npos) {
      skipped_shown = true;
    }
    CHECK(s.description.find("./migrate.sh") == std::string::npos);
  }
  CHECK(skipped_shown);
}

TEST_CASE("config-sync: sync mode and a templated file; the password never shows") {
  Plan plan = MustParsePlan("config-sync.yaml");
  Run run;
  auto report = run.Execute(plan, ProductionContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  auto deploy = std::get<DeployArtifactOp>(run.ops.calls.at(0).op);
  CHECK(deploy.mode == DeployMode::kSync);
  CHECK(deploy.to == "conf");
  const WriteFileOp* file = nullptr;
  for (const auto& c : run.ops.calls) {
    if (auto* w = std::get_if<WriteFileOp>(&c.op)) file = w;
  }
  REQUIRE(file != nullptr);
  CHECK(file->mode == 0640);
  CHECK(file->content.find("port = 8080") != std::string::npos);
  CHECK(file->content.find("password = pa55-w0rd") != std::string::npos);
  auto preview = DryRun(plan, ProductionContext());
  REQUIRE(preview.ok());
  CHECK(preview->problems.empty());
  for (const auto& s : preview->targets[0].steps) {
    if (s.operation) {
      if (auto* w = std::get_if<WriteFileOp>(&*s.operation)) {
        CHECK(w->content.find("password = ******") != std::string::npos);
      }
    }
  }
  for (const auto& line : run.log) CHECK(line.text.find("pa55-w0rd") == std::string::npos);
}

TEST_CASE("production-manual: canary, manual continue by a release manager, then the rest") {
  Plan plan = MustParsePlan("production-manual.yaml");
  Run run;
  auto report = run.Execute(plan, ProductionContext());
  CHECK(report.outcome == Outcome::kSucceeded);
  REQUIRE(run.manual.requests.size() == 1);
  CHECK(run.manual.requests[0].role == "release-manager");
  CHECK(run.ops.Summary() ==
        std::vector<std::string>{"prod-web-1:deploy-artifact", "prod-web-1:http-check",
                                 "prod-web-2:deploy-artifact", "prod-web-2:http-check"});
  auto check = std::get<HttpCheckOp>(run.ops.calls[1].op);
  CHECK(check.url == "http://prod-web-1:8080/health");
  CHECK(check.retries == 10);

  // The preview shows the same order per target: prod-web-2 waits for the
  // manual step and deploys only after it; the canary skips the rest.
  auto preview = DryRun(plan, ProductionContext());
  REQUIRE(preview.ok());
  CHECK(preview->problems.empty());
  REQUIRE(preview->targets.size() == 2);
  auto kinds = [](const TargetPlan& t) {
    std::vector<std::string> out;
    for (const auto& s : t.steps)
      if (s.operation && s.condition.empty())
        out.push_back(std::string(OperationKind(*s.operation)));
    return out;
  };
  CHECK(preview->targets[0].target == "prod-web-1");
  CHECK(kinds(preview->targets[0]) == std::vector<std::string>{"deploy-artifact", "http-check"});
  CHECK(preview->targets[1].target == "prod-web-2");
  CHECK(kinds(preview->targets[1]) == std::vector<std::string>{"deploy-artifact", "http-check"});
  bool manual_shown = false;
  for (const auto& s : preview->targets[1].steps)
    if (s.description.find("Canary prod-web-1 runs build") != std::string::npos)
      manual_shown = true;
  CHECK(manual_shown);

  Run rejected;
  rejected.manual.outcome = OperationOutcome::Failed("rejected by carol");
  report = rejected.Execute(plan, ProductionContext());
  CHECK(report.outcome == Outcome::kFailed);
  CHECK(rejected.ops.calls.size() == 2);  // only the canary
}

TEST_CASE("demo-shop: the spec the demo starts with") {
  auto spec = ParseAppSpec(Read("demo-shop.yaml"), "demo-shop.yaml");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  REQUIRE(spec->pipeline.size() == 3);
  CHECK(spec->pipeline[0].stage == "Integration");
  CHECK(spec->pipeline[0].targets == std::vector<std::string>{"int-web"});
  CHECK(spec->pipeline[1].stage == "Testing");
  CHECK(spec->pipeline[1].targets == std::vector<std::string>{"test-web"});
  const StageSpec* production = spec->FindStage("Production");
  REQUIRE(production != nullptr);
  CHECK(production->targets == std::vector<std::string>{"prod-web"});
  CHECK(production->is_protected);
  CHECK(production->gates.approvals.count == 1);
  CHECK(production->gates.approvals.role == "release-manager");
  for (const auto& stage : spec->pipeline) CHECK(stage.plan == "deploy-web");

  auto plan = ParsePlan(spec->plans.at("deploy-web"), "deploy-web");
  REQUIRE(plan.ok());
  ExecutionContext c = SampleContext({"int-web"});
  c.artifact_sha256 = {{"web", std::string(64, 'e')}};
  Run run;
  auto report = run.Execute(*plan, c);
  CHECK(report.outcome == Outcome::kSucceeded);
  CHECK(run.ops.Summary() == std::vector<std::string>{"int-web:deploy-artifact", "int-web:exec"});
  CHECK(std::get<DeployArtifactOp>(run.ops.calls[0].op).artifact == "web");
  // The migration is irreversible: a rollback shows it and runs its undo.
  REQUIRE_FALSE(report.steps.empty());
  CHECK(report.steps.back().irreversible);
  CHECK(report.steps.back().has_undo);

  // The preview of a rollback names the artifact's hash and the rollback log line.
  c.is_rollback = true;
  c.is_redeploy = true;
  auto preview = DryRun(*plan, c);
  REQUIRE(preview.ok());
  CHECK(preview->problems.empty());
  REQUIRE(preview->targets.size() == 1);
  bool deploy_shown = false, rollback_line = false;
  for (const auto& s : preview->targets[0].steps) {
    if (s.operation && std::holds_alternative<DeployArtifactOp>(*s.operation)) {
      deploy_shown = std::get<DeployArtifactOp>(*s.operation).sha256 == std::string(64, 'e');
    }
    if (s.description.find("Rolled back from build") != std::string::npos) rollback_line = true;
  }
  CHECK(deploy_shown);
  CHECK(rollback_line);
}

}  // namespace reprise
