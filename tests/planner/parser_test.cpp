#include "planner/plan.h"

#include <doctest/doctest.h>

namespace reprise {
TEST_CASE("smoke") {
  auto p = ParsePlan("- log: hi\n", "p.yaml");
  CHECK(p.ok());
}
}  // namespace reprise
