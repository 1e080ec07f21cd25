// Irreversible steps across a rollback: which irreversible plan steps ran on
// a stage since a build was last current there (for previews, requests and
// rollback records), and running their undo steps from the newer build's own
// plan before a rollback switches anything.
// Thread-safety: free functions; safe from any thread (the store is).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "planner/executor.h"
#include "server/store/store.h"

namespace reprise {

class AgentPort;

// The irreversible steps that ran on `stage` since `release build` last
// succeeded there (in any deployment of another build after that success,
// whatever its outcome), oldest first. Empty when the build never succeeded
// on the stage (it is then no re-deploy).
Result<std::vector<IrreversibleStepRecord>> IrreversibleStepsSince(Store& store,
                                                                   const std::string& app,
                                                                   const std::string& release,
                                                                   int64_t build,
                                                                   const std::string& stage);

// "1.0.0 build 2, step 2 (exec ./migrate.sh up) on web-1 at 2026-12-07T00:10:00Z: schema v42"
std::string DescribeIrreversibleStep(const IrreversibleStepRecord& step);

// kInvalidArgument naming the steps unless `acknowledged` (or none ran).
Status CheckIrreversibleAcknowledged(const std::vector<IrreversibleStepRecord>& steps,
                                     bool acknowledged);

// The record kept for an executor step record of deployment `d`.
IrreversibleStepRecord IrreversibleStepOf(const DeploymentRecord& d, const std::string& plan_name,
                                          const StepRecord& step);

using UndoLog = std::function<void(const std::string& target, const std::string& level,
                                   const std::string& text)>;

// Runs the undo steps of `steps` (those with has_undo), newest first, each
// on the target where its step ran, with the plan and execution context of
// the deployment that ran it (the newer build's snapshot). `base` gives the
// clock, cancellation and manual handler; lines go to `log` prefixed
// "undo of step <id> from build <n>: ". Stops at the first failure and
// returns it (kFailedPrecondition, or kCancelled).
Status RunUndoSteps(Store& store, AgentPort& agents, const std::vector<IrreversibleStepRecord>& steps,
                    const ExecutorOptions& base, const UndoLog& log);

}  // namespace reprise
