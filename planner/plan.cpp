#include "planner/plan.h"

#include "common/enum_names.h"
#include "planner/steps/registry.h"

namespace reprise {

std::string FormatPosition(std::string_view source, SourcePosition pos) {
  return std::string(source) + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

namespace {
// clang-format off
constexpr EnumName<DeployMode> kDeployModeNames[] = {
    {DeployMode::kAtomic, "atomic"}, {DeployMode::kSync, "sync"}, {DeployMode::kOverlay, "overlay"},
};
// clang-format on
}  // namespace

std::string_view DeployModeName(DeployMode mode) {
  return NameOf(kDeployModeNames, mode, "atomic");
}

std::optional<DeployMode> DeployModeFromName(std::string_view name) {
  return ValueOf(kDeployModeNames, name);
}

std::string_view StepKind(const Step& step) { return KindOf(step).name; }

bool IsTargetOperation(const Step& step) { return KindOf(step).resolve != nullptr; }

}  // namespace reprise
