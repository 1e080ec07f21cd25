// The `exec` operation: runs a program (argv) or a shell command on each selected target.
#include "planner/steps/registry.h"
#include "planner/steps/walker.h"

namespace reprise {
namespace {

constexpr const char* kKind = "exec";

Status ReadArgv(const StepArgs& list, std::string_view desc, std::vector<std::string>* argv) {
  if (!list.IsSequence() || list.size() == 0) {
    return list.Error(std::string(desc) + " must be a non-empty list of strings");
  }
  for (const StepArgs& item : list.Items()) {
    REPRISE_ASSIGN_OR_RETURN(std::string arg, item.Template(desc));
    argv->push_back(arg);
  }
  return Status::Ok();
}

Status ReadEnv(const StepArgs& env, std::map<std::string, std::string>* out) {
  if (!env.IsMap()) return env.Error("'env' in exec must be a map of NAME: value");
  for (const auto& [key, value] : env.Entries()) {
    if (!key.IsScalar() || !IsValidVariableName(key.Scalar())) {
      return key.Error("'env' in exec: keys must be environment variable names");
    }
    const std::string& name = key.Scalar();
    if (out->count(name)) return key.Error("duplicate key '" + name + "' in env");
    REPRISE_ASSIGN_OR_RETURN(std::string text, value.Template("env '" + name + "' in exec"));
    (*out)[name] = text;
  }
  return Status::Ok();
}

Status ReadSuccessCodes(const StepArgs& codes, std::vector<int>* out) {
  if (!codes.IsSequence() || codes.size() == 0) {
    return codes.Error("'success_codes' in exec must be a non-empty list of exit codes");
  }
  out->clear();
  for (const StepArgs& c : codes.Items()) {
    REPRISE_ASSIGN_OR_RETURN(int64_t code, c.Int("an exit code in 'success_codes'", 0, 255));
    out->push_back(static_cast<int>(code));
  }
  return Status::Ok();
}

// Exactly one of argv and command; a list under `command` is an argv too.
Status ReadProgram(const StepArgs& args, ExecStep* s) {
  if (args.Has("argv") == args.Has("command")) {
    return args.Error(
        "exec needs exactly one of 'argv' (a list) and 'command' (a shell "
        "string)");
  }
  if (args.Has("argv")) return ReadArgv(args.Get("argv"), Quoted("argv", kKind), &s->argv);
  StepArgs command = args.Get("command");
  if (command.IsSequence()) return ReadArgv(command, Quoted("command", kKind), &s->argv);
  REPRISE_ASSIGN_OR_RETURN(s->command, command.Template(Quoted("command", kKind)));
  if (s->command.empty()) return command.Error("'command' in exec is empty");
  return Status::Ok();
}

Result<ExecStep> Parse(StepArgs& args) {
  ExecStep s;
  if (args.IsScalar()) {
    REPRISE_ASSIGN_OR_RETURN(s.command, args.Template(kKind));
    if (s.command.empty()) return args.Error("exec needs a command");
    return s;
  }
  if (args.IsSequence()) {
    REPRISE_RETURN_IF_ERROR(ReadArgv(args, "exec", &s.argv));
    return s;
  }
  REPRISE_RETURN_IF_ERROR(
      args.Load(kKind, {"argv", "command", "timeout", "cwd", "env", "success_codes"}));
  REPRISE_RETURN_IF_ERROR(ReadProgram(args, &s));
  if (args.Has("timeout")) {
    int t = 0;
    REPRISE_RETURN_IF_ERROR(args.OptionalInt("timeout", kKind, 1, 86400, &t));
    s.timeout_seconds = t;
  }
  REPRISE_ASSIGN_OR_RETURN(s.cwd, args.Optional("cwd", kKind, ""));
  if (args.Has("env")) REPRISE_RETURN_IF_ERROR(ReadEnv(args.Get("env"), &s.env));
  if (args.Has("success_codes")) {
    REPRISE_RETURN_IF_ERROR(ReadSuccessCodes(args.Get("success_codes"), &s.success_codes));
  }
  return s;
}

Result<ResolvedOperation> Resolve(const ExecStep& s, const Resolver& r) {
  ExecOp op;
  for (const auto& a : s.argv) {
    REPRISE_ASSIGN_OR_RETURN(std::string arg, r.Expand(a));
    op.argv.push_back(std::move(arg));
  }
  if (s.argv.empty()) {
    REPRISE_ASSIGN_OR_RETURN(op.command, r.Expand(s.command));
  }
  op.timeout_seconds = s.timeout_seconds.value_or(0);
  REPRISE_ASSIGN_OR_RETURN(op.cwd, r.Expand(s.cwd));
  for (const auto& [k, v] : s.env) {
    REPRISE_ASSIGN_OR_RETURN(op.env[k], r.Expand(v));
  }
  op.success_codes = s.success_codes;
  return ResolvedOperation(op);
}

}  // namespace

StepKindInfo ExecKind() { return MakeTargetStepKind("exec", Parse, Resolve); }

}  // namespace reprise
