// Checks for plans and application specs that must not parse: the
// InvalidArgument each gives, and tables of inputs with the exact message
// each must give.
//
// Thread-safety: test code, used from the test thread only.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "common/status.h"
#include "planner/app_spec.h"
#include "planner/plan.h"

namespace reprise {

// The message of a plan (source "p.yaml") that must be refused as invalid.
inline std::string PlanErrorOf(std::string_view yaml) {
  auto plan = ParsePlan(yaml, "p.yaml");
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.status().code() == Code::kInvalidArgument);
  return plan.status().message();
}

// The message of an application spec that must be refused as invalid.
inline std::string SpecErrorOf(const std::string& text, std::string_view source) {
  auto spec = ParseAppSpec(text, source);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().code() == Code::kInvalidArgument);
  return spec.status().message();
}

// `text` with its first `from` replaced by `to`; `from` must be in it.
inline std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.replace(pos, from.size(), to);
}

struct PlanErrorCase {
  const char* yaml;
  const char* error;
};

// Each plan gives exactly its error.
inline void CheckPlanErrors(std::initializer_list<PlanErrorCase> cases) {
  for (const PlanErrorCase& c : cases) {
    const std::string yaml = c.yaml;
    CAPTURE(yaml);
    CHECK(PlanErrorOf(yaml) == std::string(c.error));
  }
}

// An edit of a valid spec: its first `from` replaced by `to`.
struct SpecEditCase {
  const char* from;
  const char* to;
  const char* error;
};

// Each edit of `spec` (named `source` in messages) gives exactly its error.
inline void CheckSpecEdits(const std::string& spec, std::string_view source,
                           std::initializer_list<SpecEditCase> cases) {
  for (const SpecEditCase& c : cases) {
    const std::string from = c.from, to = c.to;
    CAPTURE(from);
    CAPTURE(to);
    CHECK(SpecErrorOf(Replace(spec, from, to), source) == std::string(c.error));
  }
}

}  // namespace reprise
