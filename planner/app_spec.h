// AppSpec: an application's pipeline, plans and variables as given to
// `PUT /api/v1/applications/{app}` (YAML or JSON; see DESIGN.md).
//
// Plain values, safe to share between threads once built.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/timezone.h"
#include "planner/plan.h"
#include "planner/variables.h"

namespace reprise {

// A weekly deployment window in a named time zone, written
// "Mon-Fri 22:00-06:00", "Sat 08:00-12:00 Europe/Berlin" or
// "daily 01:00-05:00". Without a zone in the text, the stage's
// `gates: { timezone: ... }` applies, else UTC. An end before the start wraps
// past midnight (the window belongs to the day it opens).
//
// Times are the zone's wall-clock times, DST-correct: a window opens at the
// first instant the local clock reads its start and closes at the first
// instant after that when it reads its end. So on a spring-forward night a
// time the clock skips counts as reached at the jump (01:00-03:00 Berlin on
// 2026-03-29 is open one hour; a window entirely inside the skipped hour does
// not open that night), and on a fall-back night a repeated time counts at its
// first occurrence (01:00-03:00 Berlin on 2026-10-25 is open three hours;
// 02:00-02:30 is open during the first pass only).
struct DeploymentWindow {
  std::string text;                      // as written
  uint8_t weekdays = 0;                  // bit 0 = Sunday ... bit 6 = Saturday
  int start_minute = 0;                  // minutes after local midnight
  int end_minute = 0;                    // 1440 for "24:00"
  std::shared_ptr<const TimeZone> zone;  // null means UTC

  bool Contains(TimePoint t) const;
  // The earliest instant at or after `from` inside the window (`from` itself
  // when the window is open), or nullopt when it never opens. Cheap: computes
  // each day's opening and closing instants instead of scanning minutes.
  std::optional<TimePoint> NextOpening(TimePoint from) const;
  // The zone's IANA name ("UTC" when none).
  std::string_view zone_name() const;
};
// `zone` is the zone used when the text names none (null: UTC). An unknown
// zone named in the text is kInvalidArgument naming the zone.
Result<DeploymentWindow> ParseDeploymentWindow(std::string_view text,
                                               std::shared_ptr<const TimeZone> zone = nullptr);

struct ApprovalGate {
  int count = 0;  // 0: no approvals needed
  std::string role;
};

struct GateSpec {
  ApprovalGate approvals;
  std::vector<DeploymentWindow> windows;  // empty: any time
  std::string timezone = "UTC";           // for windows that name no zone
  bool allow_self_approval = false;

  // Whether a deployment may start at `t` as far as windows go (any window
  // open, or no windows).
  bool InWindow(TimePoint t) const;
  // When the earliest window opens at or after `from` (`from` when InWindow),
  // or nullopt when none ever opens.
  std::optional<TimePoint> NextWindowOpening(TimePoint from) const;
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
