// libFuzzer target: the plan and application-spec parsers must turn any input
// into a plan or an error (never crash, hang or throw), and a parsed plan
// must survive a dry run.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "planner/app_spec.h"
#include "planner/executor.h"
#include "planner/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto plan = reprise::ParsePlan(text, "fuzz.yaml");
  if (plan.ok()) {
    reprise::ExecutionContext context;
    context.application = "shop";
    context.build = "1";
    context.targets.push_back({"t1", "a1", "/srv/t1", {}});
    context.targets.push_back({"t2", "a2", "/srv/t2", {}});
    context.artifact_sha256["web"] = std::string(64, 'a');
    context.variables[reprise::Scope::kGlobal]["Secret"] = {"s3cr3t", true};
    (void)reprise::DryRun(*plan, context);
  }
  (void)reprise::ParseAppSpec(text, "fuzz.yaml");
  return 0;
}
