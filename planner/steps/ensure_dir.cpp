// The `ensure-dir` operation: creates a directory (and its parents) on each selected target.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<EnsureDirStep> Parse(StepArgs& args) {
  const char* kind = "ensure-dir";
  EnsureDirStep s;
  REPRISE_ASSIGN_OR_RETURN(s.path, args.LoadShortOrMap(kind, "path", {"path", "mode"}));
  REPRISE_RETURN_IF_ERROR(args.OptionalFileMode("mode", kind, &s.mode));
  return s;
}

Result<ResolvedOperation> Resolve(const EnsureDirStep& s, const Resolver& r) {
  REPRISE_ASSIGN_OR_RETURN(std::string path, r.Expand(s.path));
  return ResolvedOperation(EnsureDirOp{.path = std::move(path), .mode = s.mode});
}

}  // namespace

StepKindInfo EnsureDirKind() { return MakeTargetStepKind("ensure-dir", Parse, Resolve); }

}  // namespace reprise
