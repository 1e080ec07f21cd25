#include "planner/variables.h"

#include <algorithm>

#include "common/enum_names.h"

namespace reprise {

namespace {

// clang-format off
constexpr EnumName<Scope> kScopeNames[] = {
    {Scope::kRuntime, "runtime"}, {Scope::kDeployment, "deployment"}, {Scope::kBuild, "build"},
    {Scope::kRelease, "release"}, {Scope::kApplication, "application"}, {Scope::kTarget, "target"},
    {Scope::kEnvironment, "environment"}, {Scope::kGlobal, "global"},
};
// clang-format on

}  // namespace

std::string_view ScopeName(Scope scope) { return NameOf(kScopeNames, scope, "unknown"); }

std::optional<Scope> ScopeFromName(std::string_view name) { return ValueOf(kScopeNames, name); }

namespace {
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
}  // namespace

bool IsValidVariableName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  return std::all_of(name.begin(), name.end(), IsNameChar);
}

const std::vector<std::string>& BuiltinVariableNames() {
  static const std::vector<std::string> kNames = {
      "ApplicationName", "ReleaseNumber", "BuildNumber", "StageName",
      "EnvironmentName", "TargetName",    "TargetPath",  "DeploymentId",
      "ExecutionUser",   "IsRedeploy",    "IsRollback",  "PreviousBuildNumber",
      "ArtifactSha256",  "Error"};
  return kNames;
}

bool IsBuiltinVariableName(std::string_view name) {
  const auto& names = BuiltinVariableNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::optional<ResolvedVariable> VariableScopes::Find(std::string_view name) const {
  if (auto it = builtins_.find(name); it != builtins_.end()) {
    Scope scope = (name == "TargetName" || name == "TargetPath") ? Scope::kTarget
                  : name == "Error"                              ? Scope::kRuntime
                                                                 : Scope::kDeployment;
    return ResolvedVariable{it->second, scope, true};
  }
  for (Scope s : kAllScopes) {
    const VariableMap& map = At(s);
    if (auto it = map.find(name); it != map.end()) return ResolvedVariable{it->second, s, false};
  }
  return std::nullopt;
}

std::map<std::string, ResolvedVariable, std::less<>> VariableScopes::Resolve() const {
  std::map<std::string, ResolvedVariable, std::less<>> out;
  auto add_names = [&](const VariableMap& map) {
    for (const auto& [name, var] : map) {
      if (out.count(name) == 0) out.emplace(name, *Find(name));
    }
  };
  add_names(builtins_);
  for (Scope s : kAllScopes) add_names(At(s));
  return out;
}

void AppendSensitiveValues(const VariableMap& map, std::vector<std::string>* out) {
  for (const auto& [name, var] : map) {
    if (var.sensitive && !var.value.empty()) out->push_back(var.value);
  }
}

std::vector<std::string> VariableScopes::SensitiveValues() const {
  std::vector<std::string> out;
  AppendSensitiveValues(builtins_, &out);
  for (const auto& map : maps_) AppendSensitiveValues(map, &out);
  return out;
}

std::string UndefinedVariableMessage(std::string_view name) {
  std::string msg = "undefined variable $" + std::string(name) + " (searched built-ins";
  for (Scope s : kAllScopes) {
    msg += ", ";
    msg += ScopeName(s);
  }
  msg += ")";
  return msg;
}

VariableLookup LookupIn(const VariableScopes& scopes) {
  return [&scopes](std::string_view name) -> Result<std::optional<std::string>> {
    auto found = scopes.Find(name);
    if (!found) return InvalidArgument(UndefinedVariableMessage(name));
    return std::optional<std::string>(found->variable.value);
  };
}

namespace {

// Calls `on_text(literal)` and `on_name(name)` for the pieces of `text`.
template <typename OnText, typename OnName>
Status ScanTemplate(std::string_view text, OnText on_text, OnName on_name) {
  size_t i = 0;
  while (i < text.size()) {
    size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      on_text(text.substr(i));
      break;
    }
    on_text(text.substr(i, dollar - i));
    size_t next = dollar + 1;
    if (next < text.size() && text[next] == '$') {
      on_text("$");
      i = next + 1;
      continue;
    }
    if (next < text.size() && text[next] == '{') {
      size_t close = text.find('}', next + 1);
      if (close == std::string_view::npos) {
        return InvalidArgument("unterminated \"${\" at offset " + std::to_string(dollar));
      }
      std::string_view name = text.substr(next + 1, close - next - 1);
      if (!IsValidVariableName(name)) {
        return InvalidArgument("invalid variable name \"" + std::string(name) +
                               "\" in \"${...}\" at offset " + std::to_string(dollar));
      }
      REPRISE_RETURN_IF_ERROR(on_name(name));
      i = close + 1;
      continue;
    }
    if (next < text.size() && IsNameStart(text[next])) {
      size_t end = next;
      while (end < text.size() && IsNameChar(text[end])) ++end;
      REPRISE_RETURN_IF_ERROR(on_name(text.substr(next, end - next)));
      i = end;
      continue;
    }
    return InvalidArgument("'$' at offset " + std::to_string(dollar) +
                           " is not followed by a variable name; write $$ for a literal dollar");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> ExpandVariables(std::string_view text, const VariableLookup& lookup,
                                    bool* has_unknown) {
  std::string out;
  Status st = ScanTemplate(
      text, [&](std::string_view literal) { out.append(literal); },
      [&](std::string_view name) -> Status {
        auto value = lookup(name);
        if (!value.ok()) return value.status();
        if (!value->has_value()) {
          if (has_unknown) *has_unknown = true;
          out += "<$" + std::string(name) + ": known at run time>";
        } else {
          out += **value;
        }
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<std::string>> ReferencedVariables(std::string_view text) {
  std::vector<std::string> names;
  Status st = ScanTemplate(
      text, [](std::string_view) {},
      [&](std::string_view name) -> Status {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return names;
}

Masker::Masker(std::vector<std::string> secrets) {
  for (auto& s : secrets) {
    if (!s.empty()) secrets_.push_back(std::move(s));
  }
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
}

std::string Masker::Mask(std::string_view text) const {
  if (secrets_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t matched = 0;
    for (const auto& s : secrets_) {  // longest first
      if (text.compare(i, s.size(), s) == 0) {
        matched = s.size();
        break;
      }
    }
    if (matched > 0) {
      out += kMask;
      i += matched;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string StreamingMasker::Feed(std::string_view chunk) {
  pending_.append(chunk);
  const auto& secrets = masker_->secrets();
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    std::string_view rest = std::string_view(pending_).substr(i);
    size_t matched = 0;
    bool maybe_partial = false;
    for (const auto& s : secrets) {
      if (rest.size() >= s.size()) {
        if (rest.compare(0, s.size(), s) == 0) {
          matched = s.size();
          break;
        }
      } else if (s.compare(0, rest.size(), rest) == 0) {
        // The rest of the buffer is the start of a secret: wait for more,
        // unless a shorter secret matches fully right here (checked below).
        maybe_partial = true;
      }
    }
    if (matched > 0) {
      // A longer secret might still be completed by the next chunk.
      if (maybe_partial) break;
      out += kMask;
      i += matched;
      continue;
    }
    if (maybe_partial) break;
    out += pending_[i++];
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingMasker::Finish() {
  std::string out = masker_->Mask(pending_);
  pending_.clear();
  return out;
}

}  // namespace reprise
