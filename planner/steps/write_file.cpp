// The `write-file` operation: writes a file on each selected target, verbatim or as a template.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

Result<WriteFileStep> Parse(StepArgs& args) {
  const char* kind = "write-file";
  REPRISE_RETURN_IF_ERROR(args.Load(kind, {"path", "content", "template", "mode"}));
  WriteFileStep s;
  REPRISE_ASSIGN_OR_RETURN(s.path, args.Required("path", kind));
  if (args.Has("content") == args.Has("template")) {
    return args.Error(
        "write-file needs exactly one of 'content' (written as is) and "
        "'template' (variables expanded)");
  }
  if (args.Has("content")) {
    REPRISE_ASSIGN_OR_RETURN(s.text, args.Get("content").String(Quoted("content", kind)));
  } else {
    REPRISE_ASSIGN_OR_RETURN(s.text, args.Get("template").Template(Quoted("template", kind)));
    s.is_template = true;
  }
  REPRISE_RETURN_IF_ERROR(args.OptionalFileMode("mode", kind, &s.mode));
  return s;
}

Result<ResolvedOperation> Resolve(const WriteFileStep& s, const Resolver& r) {
  REPRISE_ASSIGN_OR_RETURN(std::string path, r.Expand(s.path));
  std::string content = s.text;
  if (s.is_template) {
    REPRISE_ASSIGN_OR_RETURN(content, r.Expand(s.text));
  }
  return ResolvedOperation(
      WriteFileOp{.path = std::move(path), .content = std::move(content), .mode = s.mode});
}

}  // namespace

StepKindInfo WriteFileKind() { return MakeTargetStepKind("write-file", Parse, Resolve); }

}  // namespace reprise
