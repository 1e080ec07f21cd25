// Irreversible steps: the attributes irreversible, note and undo, parsed on
// any target operation, and the executor's step records that say one ran.
#include <doctest/doctest.h>

#include <string>

#include "planner/executor.h"
#include "planner/plan.h"
#include "tests/planner/fakes.h"
#include "tests/planner/parse_errors.h"

namespace reprise {
namespace {

constexpr const char* kMigration = R"(
- log: start
- exec: { argv: [./migrate.sh, up], cwd: current }
  irreversible: true
  note: "schema v42: drops column legacy_id"
  undo:
    - exec: { argv: [./migrate.sh, down], cwd: current }
    - log: "schema back to v41"
- exec: { command: ./restart.sh }
)";

}  // namespace

TEST_CASE("irreversible, note and undo are read on the step") {
  auto plan = ParsePlan(kMigration, "p.yaml");
  REQUIRE_MESSAGE(plan.ok(), plan.status().message());
  const auto& steps = plan->steps;
  REQUIRE(steps.size() == 3);
  CHECK_FALSE(steps[0].irreversible);
  const Step& migrate = steps[1];
  CHECK(migrate.id == "2");
  CHECK(migrate.irreversible);
  CHECK(migrate.note == "schema v42: drops column legacy_id");
  CHECK(std::get<ExecStep>(migrate.body).argv == std::vector<std::string>{"./migrate.sh", "up"});
  REQUIRE(migrate.undo.size() == 2);
  CHECK(migrate.undo[0].id == "2.undo.1");
  CHECK(migrate.undo[1].id == "2.undo.2");
  CHECK(std::get<ExecStep>(migrate.undo[0].body).argv ==
        std::vector<std::string>{"./migrate.sh", "down"});
  CHECK(migrate.position == SourcePosition{3, 3});
  CHECK(steps[2].id == "3");  // undo steps do not take numbers of the plan
  CHECK_FALSE(steps[2].irreversible);

  auto no_undo = ParsePlan("- delete: old\n  irreversible: true\n  note: gone for good\n", "p");
  REQUIRE(no_undo.ok());
  CHECK(no_undo->steps[0].irreversible);
  CHECK(no_undo->steps[0].undo.empty());
  auto explicit_false = ParsePlan("- delete: old\n  irreversible: false\n", "p");
  REQUIRE(explicit_false.ok());
  CHECK_FALSE(explicit_false->steps[0].irreversible);
}

TEST_CASE("wrong irreversible attributes are errors at file:line:column") {
  CheckPlanErrors({
      {"- exec: ls\n  undo: [ { exec: x } ]\n",
       "p.yaml:2:9: 'undo' belongs to an irreversible step: add 'irreversible: true' to step "
       "'exec', or remove 'undo'"},
      {"- exec: ls\n  note: hi\n",
       "p.yaml:2:9: 'note' says what an irreversible step cannot undo: add 'irreversible: "
       "true' to step 'exec', or remove the note"},
      {"- exec: ls\n  irreversible: true\n  note: [a, b]\n",
       "p.yaml:3:9: 'note' in step 'exec' must be a string"},
      {"- exec: ls\n  irreversible: true\n",
       "p.yaml:2:17: an irreversible step needs a 'note' saying what a rollback cannot undo "
       "(e.g. note: \"schema v42\")"},
      {"- exec: ls\n  irreversible: yes please\n  note: x\n",
       "p.yaml:2:17: 'irreversible' in step 'exec' must be true or false"},
      {"- log: hi\n  irreversible: true\n  note: x\n",
       "p.yaml:2:17: 'irreversible' marks an operation that runs on targets (deploy-artifact, "
       "write-file, exec, ensure-dir, delete, http-check), not step 'log': mark the operation "
       "inside it"},
      {"- exec: ls\n  irreversible: true\n  note: x\n  undo: x\n",
       "p.yaml:4:9: 'undo' in step 'exec' must be a list of steps"},
      {"- exec: ls\n  irreversible: true\n  note: x\n  undo: []\n",
       "p.yaml:4:9: 'undo' in step 'exec' has no steps"},
      {"- exec: ls\n  irreversible: true\n  note: x\n  undo:\n    - exec: a\n"
       "      irreversible: true\n      note: y\n",
       "p.yaml:5:5: an undo step cannot itself be irreversible (in step 'exec')"},
      {"- exec: ls\n  irreversible: true\n  note: x\n  undo: [ { exec: { argv: 1 } } ]\n",
       "p.yaml:4:27: 'argv' in exec must be a non-empty list of strings"},
      {"- exec: ls\n  log: b\n",
       "p.yaml:2:3: a step has one operation; 'exec' and 'log' are two (make them two steps)"},
  });
  CHECK(PlanErrorOf("- irreversible: true\n  note: x\n")
            .rfind("p.yaml:1:3: this step has no operation (", 0) == 0);
}

TEST_CASE("the step records say which irreversible steps reached which target") {
  auto plan = ParsePlan(kMigration, "p.yaml");
  REQUIRE(plan.ok());
  FakeClock clock(FromUnixMillis(1000));
  FakeOperations ops;
  std::mutex mu;
  std::vector<StepRecord> seen;
  ExecutorOptions o;
  o.clock = &clock;
  o.operations = &ops;
  o.on_step = [&](const StepRecord& r) {
    std::lock_guard lock(mu);
    seen.push_back(r);
  };
  auto report = Executor(o).Execute(*plan, SampleContext({"web-1", "web-2"}));
  REQUIRE(report.ok());
  CHECK(report->outcome == Outcome::kSucceeded);
  std::vector<std::string> irreversible;
  for (const auto& r : report->steps)
    if (r.irreversible) {
      irreversible.push_back(r.step_id + "@" + r.target);
      CHECK(r.note == "schema v42: drops column legacy_id");
      CHECK(r.has_undo);
    }
  CHECK(irreversible == std::vector<std::string>{"2@web-1", "2@web-2"});
  CHECK(seen.size() == report->steps.size());  // every record went through on_step

  // A failure before the operation reached the target leaves no such record.
  auto bad = ParsePlan("- exec: { command: \"$Nope\" }\n  irreversible: true\n  note: x\n", "p");
  REQUIRE(bad.ok());
  o.on_step = nullptr;
  auto failed = Executor(o).Execute(*bad, SampleContext());
  REQUIRE(failed.ok());
  CHECK(failed->outcome == Outcome::kFailed);
  for (const auto& r : failed->steps) CHECK_FALSE(r.irreversible);
}

}  // namespace reprise
