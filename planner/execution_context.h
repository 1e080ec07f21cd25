// ExecutionContext: everything a deployment resolves before it runs (build,
// stage, targets, plan text, artifact hashes, variables by scope). It is
// stored with the deployment as JSON, so a re-deploy can run "as deployed".
//
// A plain value; safe to share between threads when not modified.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "planner/variables.h"

namespace reprise {

// One target of the stage: an agent and a root directory on its machine.
struct TargetInfo {
  std::string name;
  std::string agent;
  std::string path;       // the target's root directory ($TargetPath)
  VariableMap variables;  // the target scope
  friend bool operator==(const TargetInfo&, const TargetInfo&) = default;
};

struct ExecutionContext {
  std::string deployment_id;
  std::string application;
  std::string release;
  std::string build;
  std::string stage;
  std::string environment;
  std::string execution_user;
  bool is_redeploy = false;
  bool is_rollback = false;
  std::string previous_build;  // what was on the stage before; "" when nothing
  std::vector<TargetInfo> targets;
  std::string plan_name;
  std::string plan_text;
  std::map<std::string, std::string> artifact_sha256;  // artifact name -> hex digest
  // artifact name -> the manifest hash its deployed tree must have (see
  // DeployArtifactOp::manifest_hash); absent in contexts stored before it.
  std::map<std::string, std::string> artifact_manifest_hash;
  // Every scope except kRuntime (set by the plan) and kTarget (per target, in
  // `targets`). Entries for those two are ignored.
  std::map<Scope, VariableMap> variables;

  const TargetInfo* FindTarget(std::string_view name) const;

  // The scopes as seen from `target` (nullptr: no particular target), with
  // the built-ins filled in.
  VariableScopes ScopesFor(const TargetInfo* target) const;
  // A masker for every sensitive value in the context, targets included.
  std::vector<std::string> SensitiveValues() const;

  // Checks names (variables, no built-in redefined), unique targets.
  Status Validate() const;

  friend bool operator==(const ExecutionContext&, const ExecutionContext&) = default;
};

// Lossless JSON, sensitive values included: this is for storage, not for API
// responses (use ContextToDisplayJson there).
std::string ContextToJson(const ExecutionContext& context);
// Sensitive values replaced by "******".
std::string ContextToDisplayJson(const ExecutionContext& context);
Result<ExecutionContext> ContextFromJson(std::string_view json);

struct VariableChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind;
  std::string name;
  Scope scope;
  std::string target;     // for Scope::kTarget: which target
  std::string old_value;  // "******" when sensitive on either side; "" when added
  std::string new_value;  // "******" when sensitive on either side; "" when removed
  bool sensitive = false;
};
std::string_view ChangeKindName(VariableChange::Kind kind);

struct ContextDiff {
  std::vector<VariableChange> variables;
  bool plan_changed = false;
  // Artifact names whose hash differs, or which exist on one side only.
  std::vector<std::string> artifacts_changed;

  bool empty() const { return variables.empty() && !plan_changed && artifacts_changed.empty(); }
  // One line per difference, e.g. "changed environment variable Port: 8080 -> 8081".
  std::vector<std::string> Describe() const;
};

// What changes going from `before` (e.g. as deployed) to `after` (e.g.
// current settings), per scope and name; sensitive values are masked.
ContextDiff Diff(const ExecutionContext& before, const ExecutionContext& after);

}  // namespace reprise
