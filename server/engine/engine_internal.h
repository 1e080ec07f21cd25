// Pieces of the deployment engine shared by its .cpp files. Not a public API.
// Thread-safety: plain functions, as thread-safe as the Store they are given.
#pragma once

#include <string>
#include <vector>

#include "planner/app_spec.h"
#include "planner/execution_context.h"
#include "server/engine/engine.h"
#include "server/store/store.h"

namespace reprise {
struct Plan;
struct ExecutionReport;
}  // namespace reprise

namespace reprise::engine_internal {

std::vector<std::string> SplitCsv(const std::string& csv);
std::string JoinCsv(const std::vector<std::string>& items);
std::string BuildLabel(const std::string& release, int64_t build);  // "1.0.0 build 2"

// The spec the release snapshotted.
Result<AppSpec> ReleaseSpec(Store& store, const std::string& app, const std::string& release);
// Index of `stage` in the pipeline, or -1.
int StageIndex(const AppSpec& spec, const std::string& stage);

// promote | redeploy | rollback for deploying (release, build) to `stage` now.
struct KindInfo {
  std::string kind;
  bool succeeded_before = false;
  std::vector<TargetCurrent> current;  // what the stage's targets hold
  std::string current_label;           // the newest build among them, "" if none
  std::string previous_build;          // its build number, for $PreviousBuildNumber
};
Result<KindInfo> ComputeKind(Store& store, const std::string& app, const std::string& release,
                             int64_t build, const std::string& stage);

// Resolves the execution context of a deployment. `choice` is "as-deployed"
// or "current"; as-deployed reuses the variables stored with the build's last
// successful deployment to the stage (the deployment's own variables and the
// built-ins are always fresh).
Result<ExecutionContext> ResolveContext(Store& store, const DeploymentRecord& deployment,
                                        const AppSpec& spec, const StageSpec& stage,
                                        const KindInfo& kind, const std::string& choice);

// Gate states; `rejected` is set when an approver rejected it.
std::vector<GateState> EvaluateGates(Store& store, const Clock& clock,
                                     const DeploymentRecord& deployment, const AppSpec& spec,
                                     const StageSpec& stage, std::string* rejected);

// Each target's own status at the end of a deployment. When it ended early
// (a failure, or an orchestration error such as a lost agent), a target is
// `failed` only for a step of its own, `succeeded` when every step the plan
// had for it ran and succeeded, else `skipped` saying what did not run there;
// never another target's error.
struct TargetResult {
  std::string target;
  std::string status;  // succeeded | failed | cancelled | skipped
  std::string message;
};
std::vector<TargetResult> TargetResults(const Plan& plan, const ExecutionContext& context,
                                        const ExecutionReport& report);

}  // namespace reprise::engine_internal
