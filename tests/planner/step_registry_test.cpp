// The step-kind registry: every kind of StepBody has exactly one entry, found
// by its YAML key, and the parser and StepKind agree with it.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>

#include "planner/plan.h"
#include "planner/steps/registry.h"

namespace reprise {
namespace {

template <size_t... I>
std::vector<Step> OneStepOfEachKind(std::index_sequence<I...>) {
  std::vector<Step> steps;
  (steps.push_back(Step{{}, "1", StepBody(std::in_place_index<I>), false, "", {}}), ...);
  return steps;
}

}  // namespace

TEST_CASE("every step kind has one registry entry, found by its name") {
  std::set<std::string> names;
  for (const Step& step :
       OneStepOfEachKind(std::make_index_sequence<std::variant_size_v<StepBody>>())) {
    const StepKindInfo& kind = KindOf(step);
    CAPTURE(kind.name);
    CHECK(kind.body_index == step.body.index());
    CHECK(names.insert(std::string(kind.name)).second);
    CHECK(FindStepKind(kind.name) == &kind);
    CHECK(StepKind(step) == kind.name);
    CHECK(bool(kind.parse));
    // A plan-level step or block runs itself; a target operation resolves.
    CHECK(bool(kind.run) != bool(kind.resolve));
    CHECK(IsTargetOperation(step) == bool(kind.resolve));
  }
  CHECK(FindStepKind("frobnicate") == nullptr);
  CHECK(KnownStepKinds() ==
        "operations: log, set, deploy-artifact, write-file, exec, ensure-dir, delete, http-check, "
        "wait, fail, manual; blocks: if, retry, try, for-each-target, on-targets");
}

TEST_CASE("an unknown step kind lists the known ones") {
  auto plan = ParsePlan("- frobnicate: x\n", "p.yaml");
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().message() ==
        "p.yaml:1:3: unknown operation 'frobnicate' (" + KnownStepKinds() + ")");
}

}  // namespace reprise
