// The step kinds of the plan language, one entry each: the YAML key, how its
// arguments are parsed and checked, and how the executor runs it (or, for a
// target operation, how it resolves into the operation sent to each target).
// The parser (yaml_parser.cpp) and the executor (walker.cpp) both dispatch
// through this table; nothing else knows the list of kinds.
//
// Adding a step kind:
//   1. its arguments as a struct in planner/plan.h, added to StepBody;
//   2. planner/steps/<kind>.cpp with its Parse and Run (or Resolve for a target
//      operation, plus the ResolvedOperation in operations.h) functions and a
//      `StepKindInfo <Name>Kind()` returning MakeStepKind<T>(...);
//   3. one line in REPRISE_STEP_KINDS below, and the file in CMakeLists.txt.
// Attributes common to every kind (e.g. `irreversible`, `note`, `undo`) do
// not belong to a kind: they are read in ParseStep (yaml_parser.cpp), next to
// the step's id and position, and stored on Step.
//
// Thread-safety: the table is built once, on first use, and read-only after.
#pragma once

#include <functional>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "planner/operations.h"
#include "planner/plan.h"
#include "planner/steps/step_args.h"

namespace reprise {

class Walker;
struct Frame;
struct Flow;
class Resolver;

struct StepKindInfo {
  std::string_view name;  // the YAML key
  size_t body_index = 0;  // of its struct in StepBody
  bool is_block = false;  // listed among the blocks in errors
  std::function<Result<StepBody>(StepArgs& args)> parse;
  // Plan-level steps and blocks: runs the step (or walks it, in a dry run).
  std::function<Flow(Walker& walker, const Step& step, Frame& frame)> run;
  // Target operations: what to send to one target (run is then empty and the
  // walker runs the operation on each selected target).
  std::function<Result<ResolvedOperation>(const Step& step, const Resolver& resolver)> resolve;
};

// Every kind, one line each: X(Name) declares `StepKindInfo NameKind()`,
// defined in planner/steps/<name>.cpp.
#define REPRISE_STEP_KINDS(X)                                                               \
  X(Log)                                                                                    \
  X(Set) X(DeployArtifact) X(WriteFile) X(Exec) X(EnsureDir) X(Delete) X(HttpCheck) X(Wait) \
      X(Fail) X(Manual) X(If) X(Retry) X(Try) X(ForEachTarget) X(OnTargets)

#define REPRISE_DECLARE_STEP_KIND(Name) StepKindInfo Name##Kind();
REPRISE_STEP_KINDS(REPRISE_DECLARE_STEP_KIND)
#undef REPRISE_DECLARE_STEP_KIND

// The kind named `name`, or nullptr.
const StepKindInfo* FindStepKind(std::string_view name);
// The kind of a parsed step.
const StepKindInfo& KindOf(const Step& step);
// "operations: log, set, ...; blocks: if, ..." for the unknown-kind error.
std::string KnownStepKinds();

template <typename T, size_t I = 0>
constexpr size_t StepBodyIndex() {
  static_assert(I < std::variant_size_v<StepBody>, "not a StepBody alternative");
  if constexpr (std::is_same_v<std::variant_alternative_t<I, StepBody>, T>) {
    return I;
  } else {
    return StepBodyIndex<T, I + 1>();
  }
}

// An entry for a plan-level step or block of type T (deduced from `parse`).
template <typename T>
StepKindInfo MakeStepKind(std::string_view name, bool is_block, Result<T> (*parse)(StepArgs&),
                          Flow (*run)(Walker&, const Step&, const T&, Frame&)) {
  StepKindInfo info;
  info.name = name;
  info.body_index = StepBodyIndex<T>();
  info.is_block = is_block;
  info.parse = [parse](StepArgs& args) -> Result<StepBody> {
    REPRISE_ASSIGN_OR_RETURN(T body, parse(args));
    return StepBody(std::move(body));
  };
  info.run = [run](Walker& walker, const Step& step, Frame& frame) {
    return run(walker, step, std::get<T>(step.body), frame);
  };
  return info;
}

// An entry for a target operation of type T (deduced from `parse`).
template <typename T>
StepKindInfo MakeTargetStepKind(std::string_view name, Result<T> (*parse)(StepArgs&),
                                Result<ResolvedOperation> (*resolve)(const T&, const Resolver&)) {
  StepKindInfo info;
  info.name = name;
  info.body_index = StepBodyIndex<T>();
  info.parse = [parse](StepArgs& args) -> Result<StepBody> {
    REPRISE_ASSIGN_OR_RETURN(T body, parse(args));
    return StepBody(std::move(body));
  };
  info.resolve = [resolve](const Step& step, const Resolver& resolver) {
    return resolve(std::get<T>(step.body), resolver);
  };
  return info;
}

}  // namespace reprise
