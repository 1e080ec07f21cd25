#include "planner/steps/registry.h"

#include <cstdlib>

namespace reprise {
namespace {

// Indexed by StepBody alternative; checked once when built.
const std::vector<StepKindInfo>& Table() {
  static const std::vector<StepKindInfo> table = [] {
    std::vector<StepKindInfo> kinds = {
#define REPRISE_STEP_KIND_ENTRY(Name) Name##Kind(),
        REPRISE_STEP_KINDS(REPRISE_STEP_KIND_ENTRY)
#undef REPRISE_STEP_KIND_ENTRY
    };
    std::vector<StepKindInfo> by_index(std::variant_size_v<StepBody>);
    for (auto& kind : kinds) by_index.at(kind.body_index) = std::move(kind);
    for (const auto& kind : by_index) {
      // A StepBody alternative without an entry is a programming error.
      if (kind.name.empty() || (!kind.run == !kind.resolve)) std::abort();
    }
    return by_index;
  }();
  return table;
}

}  // namespace

const StepKindInfo* FindStepKind(std::string_view name) {
  for (const auto& kind : Table()) {
    if (kind.name == name) return &kind;
  }
  return nullptr;
}

const StepKindInfo& KindOf(const Step& step) { return Table()[step.body.index()]; }

std::string KnownStepKinds() {
  std::string operations;
  std::string blocks;
  for (const auto& kind : Table()) {
    std::string& list = kind.is_block ? blocks : operations;
    list += (list.empty() ? "" : ", ") + std::string(kind.name);
  }
  return "operations: " + operations + "; blocks: " + blocks;
}

}  // namespace reprise
