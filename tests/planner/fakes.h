// Test doubles for the executor: operations that record what they were asked
// to do, a manual-step handler and a sleeper that advances a FakeClock.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "planner/executor.h"
#include "planner/operations.h"

namespace reprise {

class FakeOperations : public Operations {
 public:
  struct Call {
    std::string target;
    ResolvedOperation op;
  };
  using Behaviour = std::function<OperationOutcome(const TargetInfo&, const ResolvedOperation&,
                                                   StepLog&, const CancelToken&)>;

  OperationOutcome Run(const TargetInfo& target, const ResolvedOperation& op, StepLog& log,
                       const CancelToken& cancel) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      calls.push_back({target.name, op});
    }
    if (behaviour) return behaviour(target, op, log, cancel);
    return OperationOutcome::Succeeded();
  }

  // "target:kind" for every call, in order.
  std::vector<std::string> Summary() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(c.target + ":" + std::string(OperationKind(c.op)));
    return out;
  }

  std::mutex mu;
  std::vector<Call> calls;
  Behaviour behaviour;
};

class FakeManual : public ManualContinuation {
 public:
  OperationOutcome WaitForContinue(const ManualRequest& request, const CancelToken&) override {
    requests.push_back(request);
    return outcome;
  }
  std::vector<ManualRequest> requests;
  OperationOutcome outcome = OperationOutcome::Succeeded();
};

// Records sleeps and advances the clock instead of sleeping.
struct FakeSleeper {
  FakeClock* clock;
  std::vector<std::chrono::milliseconds> sleeps;
  Sleeper AsSleeper() {
    return [this](std::chrono::milliseconds d, const CancelToken& cancel) {
      sleeps.push_back(d);
      clock->Advance(d);
      return !cancel.IsCancelled();
    };
  }
};

inline ExecutionContext SampleContext(std::vector<std::string> targets = {"web-1"}) {
  ExecutionContext c;
  c.deployment_id = "d-17";
  c.application = "shop";
  c.release = "1.0.2";
  c.build = "3";
  c.stage = "Production";
  c.environment = "Production";
  c.execution_user = "alice";
  c.previous_build = "2";
  for (const auto& t : targets) c.targets.push_back({t, "agent-" + t, "/srv/" + t, {}});
  c.artifact_sha256["web"] = std::string(64, 'a');
  c.artifact_sha256["config"] = std::string(64, 'c');
  c.variables[Scope::kApplication]["Port"] = {"8080", false};
  c.variables[Scope::kEnvironment]["DatabaseUrl"] = {"postgres://db/shop", false};
  c.variables[Scope::kEnvironment]["DatabasePassword"] = {"pa55-w0rd", true};
  return c;
}

}  // namespace reprise
