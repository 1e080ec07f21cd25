// The `deploy-artifact` operation: puts one of the build's artifacts on each selected target.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<DeployArtifactStep> Parse(StepArgs& args) {
  const char* kind = "deploy-artifact";
  DeployArtifactStep s;
  REPRISE_ASSIGN_OR_RETURN(
      s.artifact, args.LoadShortOrMap(kind, "artifact", {"artifact", "to", "mode", "keep"}));
  REPRISE_ASSIGN_OR_RETURN(s.to, args.Optional("to", kind, ""));
  if (args.Has("mode")) {
    StepArgs mode_arg = args.Get("mode");
    REPRISE_ASSIGN_OR_RETURN(std::string mode, mode_arg.String("'mode'"));
    auto m = DeployModeFromName(mode);
    if (!m) {
      return mode_arg.Error("'mode' in deploy-artifact must be atomic, sync or overlay, not \"" +
                            mode + "\"");
    }
    s.mode = *m;
  }
  if (args.Has("keep")) {
    REPRISE_ASSIGN_OR_RETURN(int64_t keep, args.Get("keep").Int(Quoted("keep", kind), 1, 100));
    s.keep = static_cast<int>(keep);
  }
  return s;
}

// The artifact must be one of the build's: its hashes come from the context.
Result<ResolvedOperation> Resolve(const DeployArtifactStep& s, const Resolver& r) {
  const ExecutionContext& context = r.context();
  DeployArtifactOp op;
  REPRISE_ASSIGN_OR_RETURN(op.artifact, r.Expand(s.artifact));
  auto it = context.artifact_sha256.find(op.artifact);
  if (it == context.artifact_sha256.end()) {
    std::string have;
    for (const auto& [name, sha] : context.artifact_sha256) {
      have += (have.empty() ? "" : ", ") + name;
    }
    return InvalidArgument("build " + context.build + " has no artifact \"" + op.artifact +
                           "\" (it has: " + (have.empty() ? "none" : have) + ")");
  }
  op.sha256 = it->second;
  if (auto m = context.artifact_manifest_hash.find(op.artifact);
      m != context.artifact_manifest_hash.end())
    op.manifest_hash = m->second;
  REPRISE_ASSIGN_OR_RETURN(op.to, r.Expand(s.to));
  op.mode = s.mode;
  op.keep = s.keep;
  return ResolvedOperation(op);
}

}  // namespace

StepKindInfo DeployArtifactKind() { return MakeTargetStepKind("deploy-artifact", Parse, Resolve); }

}  // namespace reprise
