// Plan: a parsed deployment plan. A plan is a YAML list of steps; each step is
// a map with one key, the operation or block, whose value holds its
// arguments (see docs/plans.md). Argument strings are kept unexpanded
// (`$Name` is resolved by the executor for each deployment and target).
//
// Plans are immutable values once parsed and may be shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "planner/expression.h"

namespace reprise {

// 1-based line and column in the plan's source; 0 when unknown.
struct SourcePosition {
  int line = 0;
  int column = 0;
  friend bool operator==(const SourcePosition&, const SourcePosition&) = default;
};

// "source:line:column"
std::string FormatPosition(std::string_view source, SourcePosition pos);

enum class DeployMode {
  kAtomic,   // extract into a new release directory, switch `current` atomically
  kSync,     // make `to` mirror the artifact: add, overwrite and delete files
  kOverlay,  // add and overwrite files in `to`, never delete
};
std::string_view DeployModeName(DeployMode mode);
std::optional<DeployMode> DeployModeFromName(std::string_view name);

struct Step;
using Steps = std::vector<Step>;

// Operations. Every std::string field is a template expanded at run time.
struct LogStep {
  std::string message;
};
struct SetStep {
  std::string name;  // a literal name, never expanded
  std::string value;
  bool sensitive = false;
};
struct DeployArtifactStep {
  std::string artifact;
  std::string to;  // relative to the target path; "" is the target path itself
  DeployMode mode = DeployMode::kAtomic;
  int keep = 3;  // atomic mode: release directories kept for fast re-deploys
};
struct WriteFileStep {
  std::string path;
  std::string text;  // `content` (written verbatim) or `template` (expanded)
  bool is_template = false;
  uint32_t mode = 0644;
};
struct ExecStep {
  std::vector<std::string> argv;  // exactly one of argv and command is set
  std::string command;            // run by /bin/sh -c
  std::optional<int> timeout_seconds;
  std::string cwd;
  std::map<std::string, std::string> env;
  std::vector<int> success_codes = {0};
};
struct EnsureDirStep {
  std::string path;
  uint32_t mode = 0755;
};
struct DeleteStep {
  std::string path;
};
struct HttpCheckStep {
  std::string url;
  int expect_status = 200;
  int retries = 0;
  int delay_seconds = 1;
  int timeout_seconds = 10;
};
struct WaitStep {
  int seconds = 0;
};
struct FailStep {
  std::string message;
};
struct ManualStep {
  std::string message;
  std::string role;  // empty: anyone allowed to deploy to the stage
};

// Blocks.
struct IfBlock {
  Expression condition;
  Steps then_steps;
  Steps else_steps;
};
struct RetryBlock {
  int count = 1;  // retries after the first failure: count + 1 attempts at most
  int delay_seconds = 0;
  Steps steps;
};
struct TryBlock {
  Steps steps;
  Steps catch_steps;  // sees $Error
  bool has_catch = false;
  Steps finally_steps;
};
struct ForEachTargetBlock {
  bool parallel = false;
  Steps steps;
};
struct OnTargetsBlock {
  std::vector<std::string> targets;
  Steps steps;
};

using StepBody =
    std::variant<LogStep, SetStep, DeployArtifactStep, WriteFileStep, ExecStep, EnsureDirStep,
                 DeleteStep, HttpCheckStep, WaitStep, FailStep, ManualStep, IfBlock, RetryBlock,
                 TryBlock, ForEachTargetBlock, OnTargetsBlock>;

struct Step {
  SourcePosition position;  // of the step's key
  // Dotted position in the tree, "3" or "3.2" (children of a block are
  // numbered in order across then/else or try/catch/finally).
  std::string id;
  StepBody body;
  // Attributes common to every step (target operations only, see
  // docs/plans.md): a step whose effect a rollback cannot undo, what it does,
  // and the steps that compensate for it (run by a rollback across it).
  bool irreversible = false;
  std::string note;  // literal; required when irreversible
  Steps undo;        // ids "<id>.undo.1", ...
};

// The YAML key of the step: "log", "deploy-artifact", "if", ...
std::string_view StepKind(const Step& step);
// True for operations that run on targets (deploy-artifact, write-file, exec,
// ensure-dir, delete, http-check).
bool IsTargetOperation(const Step& step);

struct Plan {
  std::string source_name;
  Steps steps;
};

// Parses plan YAML. Errors are kInvalidArgument "source:line:column: message"
// naming the offending key; unknown operations and keys are errors.
Result<Plan> ParsePlan(std::string_view yaml, std::string_view source_name);

}  // namespace reprise
