// The `delete` operation: removes a file or directory tree on each selected target.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<DeleteStep> Parse(StepArgs& args) {
  const char* kind = "delete";
  DeleteStep s;
  REPRISE_ASSIGN_OR_RETURN(s.path, args.LoadShortOrMap(kind, "path", {"path"}));
  return s;
}

Result<ResolvedOperation> Resolve(const DeleteStep& s, const Resolver& r) {
  DeleteOp op;
  REPRISE_ASSIGN_OR_RETURN(op.path, r.Expand(s.path));
  return ResolvedOperation(op);
}

}  // namespace

StepKindInfo DeleteKind() { return MakeTargetStepKind("delete", Parse, Resolve); }

}  // namespace reprise
