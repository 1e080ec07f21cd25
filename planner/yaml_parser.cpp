// The one place yaml-cpp is used: plans and application specs. Every
// yaml-cpp exception is caught here and turned into a Status with a position.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "planner/app_spec.h"
#include "planner/plan.h"

namespace reprise {
namespace {

// The server's roles: a step or gate naming anything else would wait for nobody.
constexpr const char* kKnownRoles = "viewer, deployer, release-manager, admin";
bool IsKnownRole(std::string_view role) {
  return role == "viewer" || role == "deployer" || role == "release-manager" || role == "admin";
}


constexpr int kMaxNesting = 32;

// Formats errors for one source. Plans embedded in a spec as text report
// "spec:line:col: plan 'name' line L column C: message".
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  Reader(std::string outer_prefix, bool nested)
      : source_(std::move(outer_prefix)), nested_(nested) {}

  Status Error(const YAML::Mark& mark, std::string_view message) const {
    return InvalidArgument(Where(mark) + ": " + std::string(message));
  }
  Status Error(const YAML::Node& node, std::string_view message) const {
    return Error(node.Mark(), message);
  }
  std::string Where(const YAML::Mark& mark) const {
    SourcePosition p = Position(mark);
    if (nested_) {
      return source_ + "line " + std::to_string(p.line) + " column " + std::to_string(p.column);
    }
    return FormatPosition(source_, p);
  }
  static SourcePosition Position(const YAML::Mark& mark) {
    if (mark.is_null()) return {};
    return {mark.line + 1, mark.column + 1};
  }

 private:
  std::string source_;
  bool nested_ = false;
};

// The entries of a mapping, checked against the keys allowed there.
class Fields {
 public:
  Result<bool> Load(const Reader& r, const YAML::Node& node, std::string_view what,
                    std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) return r.Error(node, std::string(what) + " must be a map of arguments");
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
      if (!key.IsScalar())
        return r.Error(key, std::string("a key in ") + std::string(what) + " must be a plain word");
      const std::string& name = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return r.Error(
            key, "unknown key '" + name + "' in " + std::string(what) + " (allowed: " + list + ")");
      }
      for (const auto& [seen, unused1, unused2] : entries_) {
        if (seen == name) {
          return r.Error(key, "duplicate key '" + name + "' in " + std::string(what));
        }
      }
      entries_.emplace_back(name, key, it->second);
    }
    return true;
  }
  // An undefined node when absent.
  YAML::Node Get(std::string_view name) const {
    for (const auto& [key, key_node, value] : entries_) {
      if (key == name) return value;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }
  bool Has(std::string_view name) const { return Get(name).IsDefined(); }
  YAML::Mark KeyMark(std::string_view name) const {
    for (const auto& [key, key_node, value] : entries_) {
      if (key == name) return key_node.Mark();
    }
    return YAML::Mark::null_mark();
  }

 private:
  std::vector<std::tuple<std::string, YAML::Node, YAML::Node>> entries_;
};

std::string Quoted(std::string_view key, std::string_view what) {
  return "'" + std::string(key) + "' in " + std::string(what);
}

Result<std::string> ReadString(const Reader& r, const YAML::Node& node, std::string_view desc) {
  if (!node.IsScalar()) return r.Error(node, std::string(desc) + " must be a string");
  return node.Scalar();
}

Result<int64_t> ReadInt(const Reader& r, const YAML::Node& node, std::string_view desc, int64_t min,
                        int64_t max) {
  if (!node.IsScalar()) return r.Error(node, std::string(desc) + " must be an integer");
  const std::string& s = node.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return r.Error(node, std::string(desc) + " must be an integer, not \"" + s + "\"");
  }
  if (v < min || v > max) {
    return r.Error(node, std::string(desc) + " must be between " + std::to_string(min) + " and " +
                             std::to_string(max));
  }
  return v;
}

Result<bool> ReadBool(const Reader& r, const YAML::Node& node, std::string_view desc) {
  if (node.IsScalar()) {
    if (auto b = ParseBoolWord(node.Scalar()); b && node.Scalar() != "1" && node.Scalar() != "0")
      return *b;
  }
  return r.Error(node, std::string(desc) + " must be true or false");
}

Result<uint32_t> ReadMode(const Reader& r, const YAML::Node& node, std::string_view desc) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 8);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size() && v <= 07777) return v;
  }
  return r.Error(node, std::string(desc) + " must be an octal file mode such as \"0644\"");
}

Result<std::vector<std::string>> ReadStringList(const Reader& r, const YAML::Node& node,
                                                std::string_view desc) {
  if (!node.IsSequence()) return r.Error(node, std::string(desc) + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar())
      return r.Error(item, "each item of " + std::string(desc) + " must be a string");
    out.push_back(item.Scalar());
  }
  return out;
}

// Validates `$` references early so a typo is reported where it is written.
Status CheckTemplate(const Reader& r, const YAML::Node& node, std::string_view desc) {
  auto refs = ReferencedVariables(node.Scalar());
  if (!refs.ok()) return r.Error(node, std::string(desc) + ": " + refs.status().message());
  return Status::Ok();
}

Result<std::string> ReadTemplate(const Reader& r, const YAML::Node& node, std::string_view desc) {
  REPRISE_ASSIGN_OR_RETURN(std::string s, ReadString(r, node, desc));
  REPRISE_RETURN_IF_ERROR(CheckTemplate(r, node, desc));
  return s;
}

class PlanParser {
 public:
  explicit PlanParser(const Reader& reader) : r_(reader) {}

  Result<Steps> ParseSteps(const YAML::Node& node, const std::string& parent_id,
                           std::string_view what, int depth, int* counter) {
    if (depth > kMaxNesting) return r_.Error(node, "blocks nested too deeply");
    if (!node.IsSequence()) {
      return r_.Error(node, std::string(what) + " must be a list of steps");
    }
    Steps steps;
    for (const auto& item : node) {
      ++*counter;
      std::string id =
          parent_id.empty() ? std::to_string(*counter) : parent_id + "." + std::to_string(*counter);
      REPRISE_ASSIGN_OR_RETURN(Step step, ParseStep(item, id, depth));
      steps.push_back(std::move(step));
    }
    return steps;
  }

 private:
  Result<Steps> Children(const Fields& f, std::string_view key, std::string_view what,
                         const std::string& id, int depth, int* counter) {
    return ParseSteps(f.Get(key), id, Quoted(key, what), depth + 1, counter);
  }

  Result<Step> ParseStep(const YAML::Node& node, const std::string& id, int depth) {
    if (!node.IsMap() || node.size() != 1) {
      return r_.Error(node,
                      "a step must be a map with exactly one key, the operation or block (e.g. "
                      "\"- log: hello\")");
    }
    auto entry = node.begin();
    const YAML::Node key = entry->first;     // a copy: the iterator proxy dies here
    const YAML::Node value = entry->second;  // a copy: the iterator proxy dies here
    if (!key.IsScalar()) return r_.Error(key, "the operation name must be a word");
    const std::string& kind = key.Scalar();
    Step step;
    step.position = Reader::Position(key.Mark());
    step_key_mark_ = key.Mark();
    step.id = id;
    Result<StepBody> body = ParseBody(kind, key, value, id, depth);
    if (!body.ok()) return body.status();
    step.body = std::move(body).value();
    return step;
  }

  Result<StepBody> ParseBody(const std::string& kind, const YAML::Node& key, const YAML::Node& v,
                             const std::string& id, int depth) {
    if (kind == "log") {
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(std::string m, ReadTemplate(r_, v, "log"));
        return StepBody(LogStep{m});
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, "log", {"message"}));
      REPRISE_ASSIGN_OR_RETURN(std::string m, Required(f, v, "message", "log"));
      return StepBody(LogStep{m});
    }
    if (kind == "set") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, "set", {"name", "value", "sensitive"}));
      SetStep s;
      if (!f.Has("name")) return r_.Error(v, "missing key 'name' in set");
      REPRISE_ASSIGN_OR_RETURN(s.name, ReadString(r_, f.Get("name"), "'name' in set"));
      if (!IsValidVariableName(s.name)) {
        return r_.Error(f.Get("name"), "'name' in set: \"" + s.name +
                                           "\" is not a variable name (letters, digits, _)");
      }
      if (IsBuiltinVariableName(s.name)) {
        return r_.Error(f.Get("name"), "'name' in set: $" + s.name + " is built in");
      }
      REPRISE_ASSIGN_OR_RETURN(s.value, Required(f, v, "value", "set"));
      if (f.Has("sensitive")) {
        REPRISE_ASSIGN_OR_RETURN(s.sensitive,
                                 ReadBool(r_, f.Get("sensitive"), "'sensitive' in set"));
      }
      return StepBody(s);
    }
    if (kind == "deploy-artifact") {
      DeployArtifactStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(s.artifact, ReadTemplate(r_, v, "deploy-artifact"));
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"artifact", "to", "mode", "keep"}));
      REPRISE_ASSIGN_OR_RETURN(s.artifact, Required(f, v, "artifact", kind));
      REPRISE_ASSIGN_OR_RETURN(s.to, Optional(f, "to", kind, ""));
      if (f.Has("mode")) {
        REPRISE_ASSIGN_OR_RETURN(std::string mode, ReadString(r_, f.Get("mode"), "'mode'"));
        auto m = DeployModeFromName(mode);
        if (!m) {
          return r_.Error(f.Get("mode"),
                          "'mode' in deploy-artifact must be atomic, sync or "
                          "overlay, not \"" +
                              mode + "\"");
        }
        s.mode = *m;
      }
      if (f.Has("keep")) {
        REPRISE_ASSIGN_OR_RETURN(int64_t keep,
                                 ReadInt(r_, f.Get("keep"), Quoted("keep", kind), 1, 100));
        s.keep = static_cast<int>(keep);
      }
      return StepBody(s);
    }
    if (kind == "write-file") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"path", "content", "template", "mode"}));
      WriteFileStep s;
      REPRISE_ASSIGN_OR_RETURN(s.path, Required(f, v, "path", kind));
      if (f.Has("content") == f.Has("template")) {
        return r_.Error(v,
                        "write-file needs exactly one of 'content' (written as is) and "
                        "'template' (variables expanded)");
      }
      if (f.Has("content")) {
        REPRISE_ASSIGN_OR_RETURN(s.text, ReadString(r_, f.Get("content"), Quoted("content", kind)));
      } else {
        REPRISE_ASSIGN_OR_RETURN(s.text,
                                 ReadTemplate(r_, f.Get("template"), Quoted("template", kind)));
        s.is_template = true;
      }
      if (f.Has("mode")) {
        REPRISE_ASSIGN_OR_RETURN(s.mode, ReadMode(r_, f.Get("mode"), Quoted("mode", kind)));
      }
      return StepBody(s);
    }
    if (kind == "exec") return ParseExec(v);
    if (kind == "ensure-dir") {
      EnsureDirStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(s.path, ReadTemplate(r_, v, kind));
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"path", "mode"}));
      REPRISE_ASSIGN_OR_RETURN(s.path, Required(f, v, "path", kind));
      if (f.Has("mode")) {
        REPRISE_ASSIGN_OR_RETURN(s.mode, ReadMode(r_, f.Get("mode"), Quoted("mode", kind)));
      }
      return StepBody(s);
    }
    if (kind == "delete") {
      DeleteStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(s.path, ReadTemplate(r_, v, kind));
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"path"}));
      REPRISE_ASSIGN_OR_RETURN(s.path, Required(f, v, "path", kind));
      return StepBody(s);
    }
    if (kind == "http-check") {
      HttpCheckStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(s.url, ReadTemplate(r_, v, kind));
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(
          Load(f, v, kind, {"url", "expect_status", "retries", "delay", "timeout"}));
      REPRISE_ASSIGN_OR_RETURN(s.url, Required(f, v, "url", kind));
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "expect_status", kind, 100, 599, &s.expect_status));
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "retries", kind, 0, 1000, &s.retries));
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "delay", kind, 0, 3600, &s.delay_seconds));
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "timeout", kind, 1, 3600, &s.timeout_seconds));
      return StepBody(s);
    }
    if (kind == "wait") {
      WaitStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(int64_t secs, ReadInt(r_, v, "wait (seconds)", 0, 86400));
        s.seconds = static_cast<int>(secs);
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"seconds"}));
      if (!f.Has("seconds")) return r_.Error(v, "missing key 'seconds' in wait");
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "seconds", kind, 0, 86400, &s.seconds));
      return StepBody(s);
    }
    if (kind == "fail") {
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(std::string m, ReadTemplate(r_, v, kind));
        return StepBody(FailStep{m});
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"message"}));
      REPRISE_ASSIGN_OR_RETURN(std::string m, Required(f, v, "message", kind));
      return StepBody(FailStep{m});
    }
    if (kind == "manual") {
      ManualStep s;
      if (v.IsScalar()) {
        REPRISE_ASSIGN_OR_RETURN(s.message, ReadTemplate(r_, v, kind));
        return StepBody(s);
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"message", "role"}));
      REPRISE_ASSIGN_OR_RETURN(s.message, Required(f, v, "message", kind));
      if (f.Has("role")) {
        REPRISE_ASSIGN_OR_RETURN(s.role, ReadString(r_, f.Get("role"), Quoted("role", kind)));
        if (!IsKnownRole(s.role))
          return r_.Error(f.Get("role"), "unknown role '" + s.role + "' in manual (expected: " +
                                             kKnownRoles + ")");
      }
      return StepBody(s);
    }
    if (kind == "if") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"condition", "then", "else"}));
      if (!f.Has("condition")) return r_.Error(v, "missing key 'condition' in if");
      if (!f.Has("then")) return r_.Error(v, "missing key 'then' in if");
      const YAML::Node cond = f.Get("condition");
      REPRISE_ASSIGN_OR_RETURN(std::string text, ReadString(r_, cond, "'condition' in if"));
      auto expr = ParseExpression(text);
      if (!expr.ok()) return r_.Error(cond, "'condition' in if: " + expr.status().message());
      IfBlock b;
      b.condition = std::move(expr).value();
      int counter = 0;
      REPRISE_ASSIGN_OR_RETURN(b.then_steps, Children(f, "then", kind, id, depth, &counter));
      if (f.Has("else")) {
        REPRISE_ASSIGN_OR_RETURN(b.else_steps, Children(f, "else", kind, id, depth, &counter));
      }
      return StepBody(std::move(b));
    }
    if (kind == "retry") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"count", "delay", "steps"}));
      RetryBlock b;
      if (!f.Has("count")) return r_.Error(v, "missing key 'count' in retry");
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "count", kind, 1, 100, &b.count));
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "delay", kind, 0, 3600, &b.delay_seconds));
      if (!f.Has("steps")) return r_.Error(v, "missing key 'steps' in retry");
      int counter = 0;
      REPRISE_ASSIGN_OR_RETURN(b.steps, Children(f, "steps", kind, id, depth, &counter));
      return StepBody(std::move(b));
    }
    if (kind == "try") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"steps", "catch", "finally"}));
      if (!f.Has("steps")) return r_.Error(v, "missing key 'steps' in try");
      if (!f.Has("catch") && !f.Has("finally")) {
        return r_.Error(v, "try needs 'catch' or 'finally'");
      }
      TryBlock b;
      int counter = 0;
      REPRISE_ASSIGN_OR_RETURN(b.steps, Children(f, "steps", kind, id, depth, &counter));
      if (f.Has("catch")) {
        b.has_catch = true;
        REPRISE_ASSIGN_OR_RETURN(b.catch_steps, Children(f, "catch", kind, id, depth, &counter));
      }
      if (f.Has("finally")) {
        REPRISE_ASSIGN_OR_RETURN(b.finally_steps,
                                 Children(f, "finally", kind, id, depth, &counter));
      }
      return StepBody(std::move(b));
    }
    if (kind == "for-each-target") {
      ForEachTargetBlock b;
      int counter = 0;
      if (v.IsSequence()) {  // shorthand: the steps themselves
        REPRISE_ASSIGN_OR_RETURN(b.steps, ParseSteps(v, id, kind, depth + 1, &counter));
        return StepBody(std::move(b));
      }
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"parallel", "steps"}));
      if (f.Has("parallel")) {
        REPRISE_ASSIGN_OR_RETURN(b.parallel,
                                 ReadBool(r_, f.Get("parallel"), Quoted("parallel", kind)));
      }
      if (!f.Has("steps")) return r_.Error(v, "missing key 'steps' in for-each-target");
      REPRISE_ASSIGN_OR_RETURN(b.steps, Children(f, "steps", kind, id, depth, &counter));
      return StepBody(std::move(b));
    }
    if (kind == "on-targets") {
      Fields f;
      REPRISE_RETURN_IF_ERROR(Load(f, v, kind, {"targets", "steps"}));
      OnTargetsBlock b;
      if (!f.Has("targets")) return r_.Error(v, "missing key 'targets' in on-targets");
      const YAML::Node targets = f.Get("targets");
      if (targets.IsScalar()) {
        b.targets.push_back(targets.Scalar());
      } else {
        REPRISE_ASSIGN_OR_RETURN(b.targets, ReadStringList(r_, targets, Quoted("targets", kind)));
      }
      if (b.targets.empty()) return r_.Error(targets, "'targets' in on-targets is empty");
      if (!f.Has("steps")) return r_.Error(v, "missing key 'steps' in on-targets");
      int counter = 0;
      REPRISE_ASSIGN_OR_RETURN(b.steps, Children(f, "steps", kind, id, depth, &counter));
      return StepBody(std::move(b));
    }
    return r_.Error(key, "unknown operation '" + kind +
                             "' (operations: log, set, deploy-artifact, write-file, exec, "
                             "ensure-dir, delete, http-check, wait, fail, manual; blocks: if, "
                             "retry, try, for-each-target, on-targets)");
  }

  Result<StepBody> ParseExec(const YAML::Node& v) {
    const std::string kind = "exec";
    ExecStep s;
    if (v.IsScalar()) {
      REPRISE_ASSIGN_OR_RETURN(s.command, ReadTemplate(r_, v, kind));
      if (s.command.empty()) return r_.Error(v, "exec needs a command");
      return StepBody(s);
    }
    if (v.IsSequence()) {
      REPRISE_RETURN_IF_ERROR(ReadArgv(v, "exec", &s.argv));
      return StepBody(s);
    }
    Fields f;
    REPRISE_RETURN_IF_ERROR(
        Load(f, v, kind, {"argv", "command", "timeout", "cwd", "env", "success_codes"}));
    if (f.Has("argv") == f.Has("command")) {
      return r_.Error(v,
                      "exec needs exactly one of 'argv' (a list) and 'command' (a shell "
                      "string)");
    }
    if (f.Has("argv")) {
      REPRISE_RETURN_IF_ERROR(ReadArgv(f.Get("argv"), Quoted("argv", kind), &s.argv));
    } else if (f.Get("command").IsSequence()) {
      REPRISE_RETURN_IF_ERROR(ReadArgv(f.Get("command"), Quoted("command", kind), &s.argv));
    } else {
      REPRISE_ASSIGN_OR_RETURN(s.command,
                               ReadTemplate(r_, f.Get("command"), Quoted("command", kind)));
      if (s.command.empty()) return r_.Error(f.Get("command"), "'command' in exec is empty");
    }
    if (f.Has("timeout")) {
      int t = 0;
      REPRISE_RETURN_IF_ERROR(OptionalInt(f, "timeout", kind, 1, 86400, &t));
      s.timeout_seconds = t;
    }
    REPRISE_ASSIGN_OR_RETURN(s.cwd, Optional(f, "cwd", kind, ""));
    if (f.Has("env")) {
      const YAML::Node env = f.Get("env");
      if (!env.IsMap()) return r_.Error(env, "'env' in exec must be a map of NAME: value");
      for (auto it = env.begin(); it != env.end(); ++it) {
        if (!it->first.IsScalar() || !IsValidVariableName(it->first.Scalar())) {
          return r_.Error(it->first, "'env' in exec: keys must be environment variable names");
        }
        const std::string& name = it->first.Scalar();
        if (s.env.count(name)) return r_.Error(it->first, "duplicate key '" + name + "' in env");
        REPRISE_ASSIGN_OR_RETURN(std::string value,
                                 ReadTemplate(r_, it->second, "env '" + name + "' in exec"));
        s.env[name] = value;
      }
    }
    if (f.Has("success_codes")) {
      const YAML::Node codes = f.Get("success_codes");
      if (!codes.IsSequence() || codes.size() == 0) {
        return r_.Error(codes, "'success_codes' in exec must be a non-empty list of exit codes");
      }
      s.success_codes.clear();
      for (const auto& c : codes) {
        REPRISE_ASSIGN_OR_RETURN(int64_t code,
                                 ReadInt(r_, c, "an exit code in 'success_codes'", 0, 255));
        s.success_codes.push_back(static_cast<int>(code));
      }
    }
    return StepBody(s);
  }

  Status ReadArgv(const YAML::Node& node, std::string_view desc, std::vector<std::string>* argv) {
    if (!node.IsSequence() || node.size() == 0) {
      return r_.Error(node, std::string(desc) + " must be a non-empty list of strings");
    }
    for (const auto& item : node) {
      REPRISE_ASSIGN_OR_RETURN(std::string arg, ReadTemplate(r_, item, desc));
      argv->push_back(arg);
    }
    return Status::Ok();
  }

  Status Load(Fields& f, const YAML::Node& node, std::string_view what,
              std::initializer_list<std::string_view> allowed) {
    if (!node.IsDefined() || node.IsNull()) {
      // A missing value has no useful position of its own: point at the key.
      return r_.Error(step_key_mark_, std::string(what) + " needs arguments");
    }
    auto loaded = f.Load(r_, node, what, allowed);
    if (!loaded.ok()) return loaded.status();
    return Status::Ok();
  }

  Result<std::string> Required(const Fields& f, const YAML::Node& parent, std::string_view key,
                               std::string_view what) {
    if (!f.Has(key)) {
      return r_.Error(parent, "missing key '" + std::string(key) + "' in " + std::string(what));
    }
    return ReadTemplate(r_, f.Get(key), Quoted(key, what));
  }

  Result<std::string> Optional(const Fields& f, std::string_view key, std::string_view what,
                               std::string fallback) {
    if (!f.Has(key)) return fallback;
    return ReadTemplate(r_, f.Get(key), Quoted(key, what));
  }

  Status OptionalInt(const Fields& f, std::string_view key, std::string_view what, int64_t min,
                     int64_t max, int* out) {
    if (!f.Has(key)) return Status::Ok();
    REPRISE_ASSIGN_OR_RETURN(int64_t v, ReadInt(r_, f.Get(key), Quoted(key, what), min, max));
    *out = static_cast<int>(v);
    return Status::Ok();
  }

  const Reader& r_;
  YAML::Mark step_key_mark_;
};

Result<Plan> ParsePlanNode(const Reader& r, const YAML::Node& root, std::string_view source) {
  if (!root.IsDefined() || root.IsNull()) {
    return r.Error(root, "a plan is a list of steps; this one is empty");
  }
  if (!root.IsSequence()) return r.Error(root, "a plan must be a list of steps");
  PlanParser parser(r);
  int counter = 0;
  Plan plan;
  plan.source_name = std::string(source);
  REPRISE_ASSIGN_OR_RETURN(plan.steps, parser.ParseSteps(root, "", "the plan", 0, &counter));
  return plan;
}

// Runs `body` and turns yaml-cpp exceptions into positioned errors.
template <typename T, typename Body>
Result<T> Guarded(const Reader& r, Body body) {
  try {
    return body();
  } catch (const YAML::Exception& e) {
    return r.Error(e.mark, e.msg);
  } catch (const std::exception& e) {
    return r.Error(YAML::Mark::null_mark(), std::string("cannot parse: ") + e.what());
  }
}

// ---- Application spec ----

Result<Variable> ReadVariable(const Reader& r, const YAML::Node& node, const std::string& name) {
  if (node.IsScalar()) return Variable{node.Scalar(), false};
  if (node.IsNull()) return Variable{"", false};
  Fields f;
  std::string what = "variable '" + name + "'";
  auto loaded = f.Load(r, node, what, {"value", "sensitive"});
  if (!loaded.ok()) return loaded.status();
  Variable var;
  if (!f.Has("value")) return r.Error(node, "missing key 'value' in " + what);
  REPRISE_ASSIGN_OR_RETURN(var.value, ReadString(r, f.Get("value"), Quoted("value", what)));
  if (f.Has("sensitive")) {
    REPRISE_ASSIGN_OR_RETURN(var.sensitive,
                             ReadBool(r, f.Get("sensitive"), Quoted("sensitive", what)));
  }
  return var;
}

Result<VariableMap> ReadVariables(const Reader& r, const YAML::Node& node) {
  VariableMap out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) return r.Error(node, "'variables' must be a map of name: value");
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
    if (!key.IsScalar() || !IsValidVariableName(key.Scalar())) {
      return r.Error(key, "variable names are letters, digits and _ (not starting with a digit)");
    }
    const std::string& name = key.Scalar();
    if (IsBuiltinVariableName(name)) {
      return r.Error(key, "variable '" + name + "' is built in and cannot be set");
    }
    if (out.count(name)) return r.Error(key, "duplicate variable '" + name + "'");
    REPRISE_ASSIGN_OR_RETURN(out[name], ReadVariable(r, it->second, name));
  }
  return out;
}

Result<GateSpec> ReadGates(const Reader& r, const YAML::Node& node) {
  GateSpec gates;
  if (node.IsNull()) return gates;
  Fields f;
  auto loaded =
      f.Load(r, node, "gates", {"approvals", "window", "timezone", "allow_self_approval"});
  if (!loaded.ok()) return loaded.status();
  if (f.Has("approvals")) {
    const YAML::Node a = f.Get("approvals");
    Fields af;
    auto l = af.Load(r, a, "approvals", {"count", "role"});
    if (!l.ok()) return l.status();
    if (!af.Has("count")) return r.Error(a, "missing key 'count' in approvals");
    REPRISE_ASSIGN_OR_RETURN(int64_t count,
                             ReadInt(r, af.Get("count"), "'count' in approvals", 0, 100));
    gates.approvals.count = static_cast<int>(count);
    if (af.Has("role")) {
      REPRISE_ASSIGN_OR_RETURN(gates.approvals.role,
                               ReadString(r, af.Get("role"), "'role' in approvals"));
      if (!gates.approvals.role.empty() && !IsKnownRole(gates.approvals.role))
        return r.Error(af.Get("role"), "unknown role '" + gates.approvals.role +
                                           "' in approvals (expected: " + kKnownRoles + ")");
    }
  }
  std::shared_ptr<const TimeZone> zone;  // for windows that name none; null: UTC
  if (f.Has("timezone")) {
    const YAML::Node z = f.Get("timezone");
    REPRISE_ASSIGN_OR_RETURN(gates.timezone, ReadString(r, z, "'timezone' in gates"));
    auto loaded_zone = TimeZone::Get(gates.timezone);
    if (!loaded_zone.ok()) {
      return r.Error(z, "'timezone' in gates: " + loaded_zone.status().message());
    }
    zone = *loaded_zone;
  }
  if (f.Has("window")) {
    const YAML::Node w = f.Get("window");
    std::vector<YAML::Node> items;
    if (w.IsScalar()) {
      items.push_back(w);
    } else if (w.IsSequence()) {
      for (const auto& item : w) items.push_back(item);
    } else {
      return r.Error(w, "'window' in gates must be a list such as [\"Mon-Fri 22:00-06:00\"]");
    }
    for (const auto& item : items) {
      REPRISE_ASSIGN_OR_RETURN(std::string text, ReadString(r, item, "a 'window' in gates"));
      auto window = ParseDeploymentWindow(text, zone);
      if (!window.ok()) return r.Error(item, "'window' in gates: " + window.status().message());
      gates.windows.push_back(std::move(window).value());
    }
  }
  if (f.Has("allow_self_approval")) {
    REPRISE_ASSIGN_OR_RETURN(gates.allow_self_approval, ReadBool(r, f.Get("allow_self_approval"),
                                                                 "'allow_self_approval' in gates"));
  }
  return gates;
}

Result<StageSpec> ReadStage(const Reader& r, const YAML::Node& node) {
  Fields f;
  auto loaded =
      f.Load(r, node, "a pipeline stage",
             {"stage", "environment", "targets", "plan", "auto_promote", "protected", "gates"});
  if (!loaded.ok()) return loaded.status();
  StageSpec s;
  s.position = Reader::Position(node.Mark());
  for (const char* key : {"stage", "environment", "targets", "plan"}) {
    if (!f.Has(key)) {
      return r.Error(node, "missing key '" + std::string(key) + "' in a pipeline stage");
    }
  }
  REPRISE_ASSIGN_OR_RETURN(s.stage, ReadString(r, f.Get("stage"), "'stage'"));
  if (s.stage.empty()) return r.Error(f.Get("stage"), "'stage' is empty");
  std::string what = "stage '" + s.stage + "'";
  REPRISE_ASSIGN_OR_RETURN(s.environment,
                           ReadString(r, f.Get("environment"), Quoted("environment", what)));
  const YAML::Node targets = f.Get("targets");
  if (targets.IsScalar()) {
    s.targets.push_back(targets.Scalar());
  } else {
    REPRISE_ASSIGN_OR_RETURN(s.targets, ReadStringList(r, targets, Quoted("targets", what)));
  }
  if (s.targets.empty()) return r.Error(targets, Quoted("targets", what) + " is empty");
  std::set<std::string> seen;
  for (const auto& t : s.targets) {
    if (!seen.insert(t).second)
      return r.Error(targets, "target '" + t + "' listed twice in " + what);
  }
  REPRISE_ASSIGN_OR_RETURN(s.plan, ReadString(r, f.Get("plan"), Quoted("plan", what)));
  if (f.Has("auto_promote")) {
    REPRISE_ASSIGN_OR_RETURN(s.auto_promote,
                             ReadBool(r, f.Get("auto_promote"), Quoted("auto_promote", what)));
  }
  if (f.Has("protected")) {
    REPRISE_ASSIGN_OR_RETURN(s.is_protected,
                             ReadBool(r, f.Get("protected"), Quoted("protected", what)));
  }
  if (f.Has("gates")) {
    REPRISE_ASSIGN_OR_RETURN(s.gates, ReadGates(r, f.Get("gates")));
  }
  return s;
}

bool IsValidPlanName(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

Result<AppSpec> ReadAppSpec(const Reader& r, const YAML::Node& root) {
  if (!root.IsDefined() || root.IsNull()) return r.Error(root, "the application spec is empty");
  Fields f;
  auto loaded =
      f.Load(r, root, "the application spec", {"description", "variables", "pipeline", "plans"});
  if (!loaded.ok()) return loaded.status();
  AppSpec spec;
  if (f.Has("description")) {
    REPRISE_ASSIGN_OR_RETURN(spec.description,
                             ReadString(r, f.Get("description"), "'description'"));
  }
  if (f.Has("variables")) {
    REPRISE_ASSIGN_OR_RETURN(spec.variables, ReadVariables(r, f.Get("variables")));
  }
  std::map<std::string, YAML::Mark> plan_marks;
  if (f.Has("plans")) {
    const YAML::Node plans = f.Get("plans");
    if (!plans.IsMap() && !plans.IsNull()) {
      return r.Error(plans, "'plans' must be a map of plan name: plan YAML");
    }
    for (auto it = plans.begin(); plans.IsMap() && it != plans.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
      if (!key.IsScalar() || !IsValidPlanName(key.Scalar())) {
        return r.Error(key, "plan names are letters, digits, '-', '_' and '.'");
      }
      const std::string& name = key.Scalar();
      if (spec.plans.count(name)) return r.Error(key, "duplicate plan '" + name + "'");
      const YAML::Node value = it->second;  // a copy: the iterator proxy dies here
      std::string text;
      if (value.IsScalar()) {
        text = value.Scalar();
        // Positions inside the text are relative to the text itself.
        Reader inner(r.Where(value.Mark()) + ": plan '" + name + "' ", true);
        Result<Plan> plan =
            Guarded<Plan>(inner, [&] { return ParsePlanNode(inner, YAML::Load(text), name); });
        if (!plan.ok()) return plan.status();
      } else if (value.IsSequence()) {
        // A plan written inline as YAML: positions are the spec's own.
        Result<Plan> plan = ParsePlanNode(r, value, name);
        if (!plan.ok())
          return Status(plan.status().code(),
                        plan.status().message() + " (in plan '" + name + "')");
        text = YAML::Dump(value) + "\n";
      } else {
        return r.Error(value,
                       "plan '" + name + "' must be YAML text (a string) or a list of steps");
      }
      spec.plans[name] = text;
      plan_marks[name] = key.Mark();
    }
  }
  if (!f.Has("pipeline")) return r.Error(root, "missing key 'pipeline' in the application spec");
  const YAML::Node pipeline = f.Get("pipeline");
  if (!pipeline.IsSequence()) return r.Error(pipeline, "'pipeline' must be a list of stages");
  for (const auto& item : pipeline) {
    REPRISE_ASSIGN_OR_RETURN(StageSpec stage, ReadStage(r, item));
    if (spec.FindStage(stage.stage)) {
      return r.Error(item, "duplicate stage '" + stage.stage + "'");
    }
    if (spec.plans.count(stage.plan) == 0) {
      return r.Error(item, "stage '" + stage.stage + "' uses plan '" + stage.plan +
                               "', which is not in 'plans'");
    }
    spec.pipeline.push_back(std::move(stage));
  }
  return spec;
}

}  // namespace

Result<Plan> ParsePlan(std::string_view yaml, std::string_view source_name) {
  Reader r{std::string(source_name)};
  return Guarded<Plan>(
      r, [&] { return ParsePlanNode(r, YAML::Load(std::string(yaml)), source_name); });
}

Result<AppSpec> ParseAppSpec(std::string_view text, std::string_view source_name) {
  Reader r{std::string(source_name)};
  return Guarded<AppSpec>(r, [&] { return ReadAppSpec(r, YAML::Load(std::string(text))); });
}

}  // namespace reprise
