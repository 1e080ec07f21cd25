#include "planner/plan.h"

#include <type_traits>

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

std::string_view StepKind(const Step& step) {
  return std::visit(
      [](const auto& body) -> std::string_view {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, LogStep>) return "log";
        if constexpr (std::is_same_v<T, SetStep>) return "set";
        if constexpr (std::is_same_v<T, DeployArtifactStep>) return "deploy-artifact";
        if constexpr (std::is_same_v<T, WriteFileStep>) return "write-file";
        if constexpr (std::is_same_v<T, ExecStep>) return "exec";
        if constexpr (std::is_same_v<T, EnsureDirStep>) return "ensure-dir";
        if constexpr (std::is_same_v<T, DeleteStep>) return "delete";
        if constexpr (std::is_same_v<T, HttpCheckStep>) return "http-check";
        if constexpr (std::is_same_v<T, WaitStep>) return "wait";
        if constexpr (std::is_same_v<T, FailStep>) return "fail";
        if constexpr (std::is_same_v<T, ManualStep>) return "manual";
        if constexpr (std::is_same_v<T, IfBlock>) return "if";
        if constexpr (std::is_same_v<T, RetryBlock>) return "retry";
        if constexpr (std::is_same_v<T, TryBlock>) return "try";
        if constexpr (std::is_same_v<T, ForEachTargetBlock>) return "for-each-target";
        if constexpr (std::is_same_v<T, OnTargetsBlock>) return "on-targets";
      },
      step.body);
}

bool IsTargetOperation(const Step& step) {
  return std::holds_alternative<DeployArtifactStep>(step.body) ||
         std::holds_alternative<WriteFileStep>(step.body) ||
         std::holds_alternative<ExecStep>(step.body) ||
         std::holds_alternative<EnsureDirStep>(step.body) ||
         std::holds_alternative<DeleteStep>(step.body) ||
         std::holds_alternative<HttpCheckStep>(step.body);
}

}  // namespace reprise
