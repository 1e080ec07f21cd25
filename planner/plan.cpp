#include "planner/plan.h"

#include "planner/steps/registry.h"

namespace reprise {

std::string FormatPosition(std::string_view source, SourcePosition pos) {
  return std::string(source) + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

std::string_view DeployModeName(DeployMode mode) {
  switch (mode) {
    case DeployMode::kAtomic:
      return "atomic";
    case DeployMode::kSync:
      return "sync";
    case DeployMode::kOverlay:
      return "overlay";
  }
  return "atomic";
}

std::optional<DeployMode> DeployModeFromName(std::string_view name) {
  for (DeployMode m : {DeployMode::kAtomic, DeployMode::kSync, DeployMode::kOverlay}) {
    if (DeployModeName(m) == name) return m;
  }
  return std::nullopt;
}

std::string_view StepKind(const Step& step) { return KindOf(step).name; }

bool IsTargetOperation(const Step& step) { return KindOf(step).resolve != nullptr; }

}  // namespace reprise
