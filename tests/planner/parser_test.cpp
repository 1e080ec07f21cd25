#include <doctest/doctest.h>

#include <string>

#include "planner/plan.h"
#include "tests/planner/parse_errors.h"

namespace reprise {
namespace {

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("every operation parses with its arguments") {
  auto plan = ParsePlan(R"(
- log: "Deploying $ApplicationName"
- set: { name: Answer, value: "42", sensitive: true }
- deploy-artifact: { artifact: web, to: app, mode: sync, keep: 5 }
- write-file: { path: conf/app.ini, template: "port=$Port\n", mode: "0600" }
- write-file: { path: run.sh, content: "echo $HOME" }
- exec: { argv: [./migrate.sh, --up], timeout: 30, cwd: current, env: { A: b }, success_codes: [0, 3] }
- exec: "make install"
- ensure-dir: logs
- delete: { path: tmp }
- http-check: { url: "http://localhost:$Port/health", expect_status: 204, retries: 3, delay: 2 }
- wait: 5
- fail: { message: stop }
- manual: { message: "Check the dashboards", role: release-manager }
)",
                        "p.yaml");
  REQUIRE(plan.ok());
  const auto& s = plan->steps;
  REQUIRE(s.size() == 13);
  CHECK(std::get<LogStep>(s[0].body).message == "Deploying $ApplicationName");
  CHECK(s[0].position == SourcePosition{2, 3});
  CHECK(s[0].id == "1");
  auto set = std::get<SetStep>(s[1].body);
  CHECK(set.name == "Answer");
  CHECK(set.value == "42");
  CHECK(set.sensitive);
  auto deploy = std::get<DeployArtifactStep>(s[2].body);
  CHECK(deploy.artifact == "web");
  CHECK(deploy.to == "app");
  CHECK(deploy.mode == DeployMode::kSync);
  CHECK(deploy.keep == 5);
  auto tmpl = std::get<WriteFileStep>(s[3].body);
  CHECK(tmpl.is_template);
  CHECK(tmpl.text == "port=$Port\n");
  CHECK(tmpl.mode == 0600);
  auto content = std::get<WriteFileStep>(s[4].body);
  CHECK_FALSE(content.is_template);
  CHECK(content.mode == 0644);
  auto exec = std::get<ExecStep>(s[5].body);
  CHECK(exec.argv == std::vector<std::string>{"./migrate.sh", "--up"});
  CHECK(exec.command.empty());
  CHECK(exec.timeout_seconds == 30);
  CHECK(exec.cwd == "current");
  CHECK(exec.env.at("A") == "b");
  CHECK(exec.success_codes == std::vector<int>{0, 3});
  CHECK(std::get<ExecStep>(s[6].body).command == "make install");
  CHECK(std::get<EnsureDirStep>(s[7].body).path == "logs");
  CHECK(std::get<DeleteStep>(s[8].body).path == "tmp");
  auto check = std::get<HttpCheckStep>(s[9].body);
  CHECK(check.expect_status == 204);
  CHECK(check.retries == 3);
  CHECK(check.delay_seconds == 2);
  CHECK(std::get<WaitStep>(s[10].body).seconds == 5);
  CHECK(std::get<FailStep>(s[11].body).message == "stop");
  auto manual = std::get<ManualStep>(s[12].body);
  CHECK(manual.role == "release-manager");
  CHECK(StepKind(s[12]) == "manual");
  CHECK(IsTargetOperation(s[2]));
  CHECK_FALSE(IsTargetOperation(s[0]));
}

TEST_CASE("blocks nest and number their children") {
  auto plan = ParsePlan(R"(
- if:
    condition: "!$IsRollback && $EnvironmentName in [Testing, Production]"
    then:
      - exec: ./migrate.sh
    else:
      - log: skipped
- retry: { count: 2, delay: 5, steps: [ { http-check: "http://x" } ] }
- try:
    steps: [ { exec: a } ]
    catch: [ { log: "failed: $Error" } ]
    finally: [ { log: done } ]
- for-each-target: { parallel: true, steps: [ { exec: b } ] }
- on-targets: { targets: [web-1], steps: [ { exec: c } ] }
)",
                        "p.yaml");
  REQUIRE(plan.ok());
  const auto& s = plan->steps;
  REQUIRE(s.size() == 5);
  const auto& if_block = std::get<IfBlock>(s[0].body);
  CHECK(if_block.condition.text() == "!$IsRollback && $EnvironmentName in [Testing, Production]");
  REQUIRE(if_block.then_steps.size() == 1);
  CHECK(if_block.then_steps[0].id == "1.1");
  CHECK(if_block.else_steps[0].id == "1.2");
  CHECK(if_block.then_steps[0].position == SourcePosition{5, 9});
  const auto& retry = std::get<RetryBlock>(s[1].body);
  CHECK(retry.count == 2);
  CHECK(retry.delay_seconds == 5);
  const auto& try_block = std::get<TryBlock>(s[2].body);
  CHECK(try_block.has_catch);
  CHECK(try_block.finally_steps[0].id == "3.3");
  CHECK(std::get<ForEachTargetBlock>(s[3].body).parallel);
  CHECK(std::get<OnTargetsBlock>(s[4].body).targets == std::vector<std::string>{"web-1"});
}

TEST_CASE("errors name file, line, column and the offending key") {
  CheckPlanErrors({
      {"- log: hi\n- deploy-artifact: { artifact: web, mdoe: sync }\n",
       "p.yaml:2:37: unknown key 'mdoe' in deploy-artifact (allowed: artifact, to, mode, keep)"},
      {"- exec:\n    command: ls\n    timeout: soon\n",
       "p.yaml:3:14: 'timeout' in exec must be an integer, not \"soon\""},
      {"- deploy-artifact: { to: x }\n", "p.yaml:1:20: missing key 'artifact' in deploy-artifact"},
      {"- deploy-artifact: { artifact: a, mode: fast }\n",
       "p.yaml:1:41: 'mode' in deploy-artifact must be atomic, sync or overlay, not \"fast\""},
      {"- log: a\n  exec: b\n",
       "p.yaml:2:3: a step has one operation; 'log' and 'exec' are two (make them two steps)"},
      {"- log: { message: a, message: b }\n", "p.yaml:1:22: duplicate key 'message' in log"},
      {"log: x\n", "p.yaml:1:1: a plan must be a list of steps"},
      {"", "p.yaml:0:0: a plan is a list of steps; this one is empty"},
      {"- log: \"cost: 5$\"\n",
       "p.yaml:1:8: log: '$' at offset 7 is not followed by a variable name; write $$ for a "
       "literal dollar"},
      {"- if: { condition: \"$A ==\", then: [] }\n",
       "p.yaml:1:20: 'condition' in if: unexpected end of expression at offset 5 in expression "
       "\"$A ==\""},
      {"- if: { condition: x, then: [ { exec: { argv: [] } } ] }\n",
       "p.yaml:1:47: 'argv' in exec must be a non-empty list of strings"},
      {"- write-file: { path: a }\n",
       "p.yaml:1:15: write-file needs exactly one of 'content' (written as is) and 'template' "
       "(variables expanded)"},
      {"- write-file: { path: a, content: b, mode: rw }\n",
       "p.yaml:1:44: 'mode' in write-file must be an octal file mode such as \"0644\""},
      {"- set: { name: IsRollback, value: x }\n",
       "p.yaml:1:16: 'name' in set: $IsRollback is built in"},
      {"- set: { name: 9lives, value: x }\n",
       "p.yaml:1:16: 'name' in set: \"9lives\" is not a variable name (letters, digits, _)"},
      {"- retry: { count: 0, steps: [] }\n",
       "p.yaml:1:19: 'count' in retry must be between 1 and 100"},
      {"- try: { steps: [] }\n", "p.yaml:1:8: try needs 'catch' or 'finally'"},
      {"- for-each-target: { parallel: maybe, steps: [] }\n",
       "p.yaml:1:32: 'parallel' in for-each-target must be true or false"},
      {"- on-targets: { targets: [], steps: [] }\n",
       "p.yaml:1:26: 'targets' in on-targets is empty"},
      {"- exec: { command: a, argv: [b] }\n",
       "p.yaml:1:9: exec needs exactly one of 'argv' (a list) and 'command' (a shell string)"},
      {"- exec: { command: a, success_codes: [0, 256] }\n",
       "p.yaml:1:42: an exit code in 'success_codes' must be between 0 and 255"},
      {"- wait: -1\n", "p.yaml:1:9: wait (seconds) must be between 0 and 86400"},
      {"- log:\n", "p.yaml:1:3: log needs arguments"},
  });
}

TEST_CASE("short and map forms of arguments: missing keys and bad values") {
  CheckPlanErrors({
      {"- deploy-artifact:\n", "p.yaml:1:3: deploy-artifact needs arguments"},
      {"- manual: [a]\n", "p.yaml:1:11: manual must be a map of arguments"},
      {"- delete: { }\n", "p.yaml:1:11: missing key 'path' in delete"},
      {"- fail: { }\n", "p.yaml:1:9: missing key 'message' in fail"},
      {"- http-check: \"x$\"\n",
       "p.yaml:1:15: http-check: '$' at offset 1 is not followed by a variable name; write $$ "
       "for a literal dollar"},
      {"- http-check: { url: \"x$\" }\n",
       "p.yaml:1:22: 'url' in http-check: '$' at offset 1 is not followed by a variable name; "
       "write $$ for a literal dollar"},
      {"- ensure-dir: { path: a, mode: x }\n",
       "p.yaml:1:32: 'mode' in ensure-dir must be an octal file mode such as \"0644\""},
      {"- wait: { }\n", "p.yaml:1:9: missing key 'seconds' in wait"},
      {"- retry: { steps: [] }\n", "p.yaml:1:10: missing key 'count' in retry"},
      {"- retry: { count: 1 }\n", "p.yaml:1:10: missing key 'steps' in retry"},
      {"- for-each-target: { parallel: true }\n",
       "p.yaml:1:20: missing key 'steps' in for-each-target"},
      {"- on-targets: { targets: [a] }\n", "p.yaml:1:15: missing key 'steps' in on-targets"},
  });
  CHECK(StartsWith(PlanErrorOf("- log: hi\n- frobnicate: x\n"),
                   "p.yaml:2:3: unknown operation 'frobnicate'"));
  // Only the engine sends compose-release (selective rollback records).
  CHECK(StartsWith(PlanErrorOf("- compose-release: { name: x, base_release: y }\n"),
                   "p.yaml:1:3: unknown operation 'compose-release'"));
}

TEST_CASE("YAML syntax errors carry a 1-based position") {
  std::string err = PlanErrorOf("- log: [unclosed\n- exec: x\n");
  CHECK(StartsWith(err, "p.yaml:"));
  CHECK(err.find("flow") != std::string::npos);
  CHECK(StartsWith(PlanErrorOf("- log: \"a\n  b: c\n- x: 'q"), "p.yaml:3:"));
}

TEST_CASE("deep nesting is refused, not a stack overflow") {
  std::string yaml;
  std::string indent;
  for (int i = 0; i < 40; ++i) {
    yaml += indent + "- try:\n" + indent + "    finally:\n" + indent + "      - log: x\n" + indent +
            "    steps:\n";
    indent += "      ";
  }
  yaml += indent + "- log: end\n";
  CHECK(PlanErrorOf(yaml).find("blocks nested too deeply") != std::string::npos);
}

TEST_CASE("an alias cycle does not hang the parser") {
  auto plan = ParsePlan("- &a { try: { steps: [*a], finally: [] } }\n", "p.yaml");
  CHECK_FALSE(plan.ok());
}

}  // namespace reprise
