// AppSpec: an application's pipeline, plans and variables as given to
// `PUT /api/v1/applications/{app}` (YAML or JSON; see DESIGN.md).
//
// Plain values, safe to share between threads once built.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "planner/plan.h"
#include "planner/variables.h"

namespace reprise {

// A weekly deployment window in UTC, written "Mon-Fri 22:00-06:00",
// "Sat 08:00-12:00" or "daily 01:00-05:00". An end before the start wraps past
// midnight (the window belongs to the day it opens).
struct DeploymentWindow {
  std::string text;
  uint8_t weekdays = 0;  // bit 0 = Sunday ... bit 6 = Saturday
  int start_minute = 0;  // minutes after midnight
  int end_minute = 0;

  bool Contains(TimePoint t) const;
};
Result<DeploymentWindow> ParseDeploymentWindow(std::string_view text);

struct ApprovalGate {
  int count = 0;  // 0: no approvals needed
  std::string role;
};

struct GateSpec {
  ApprovalGate approvals;
  std::vector<DeploymentWindow> windows;  // empty: any time
  bool allow_self_approval = false;
};

struct StageSpec {
  std::string stage;
  std::string environment;
  std::vector<std::string> targets;
  std::string plan;
  bool auto_promote = false;
  bool is_protected = false;  // `protected` in the spec
  GateSpec gates;
  SourcePosition position;
};

struct AppSpec {
  std::string description;
  VariableMap variables;
  std::vector<StageSpec> pipeline;
  std::map<std::string, std::string> plans;  // name -> plan YAML text

  const StageSpec* FindStage(std::string_view name) const;
};

// Parses and validates a spec: unknown keys, duplicate stage names, a stage
// whose plan is missing, and every plan is parsed. Errors are
// kInvalidArgument "source:line:column: message"; a plan error names the plan
// and the line:column inside the plan text.
Result<AppSpec> ParseAppSpec(std::string_view text, std::string_view source_name);

enum class SensitiveValues { kInclude, kMask };
// Canonical JSON (keys sorted, all fields present) that ParseAppSpec accepts
// back. kMask replaces sensitive values with "******" (for API responses).
std::string AppSpecToJson(const AppSpec& spec,
                          SensitiveValues sensitive = SensitiveValues::kInclude);

}  // namespace reprise
