// Variables of a deployment: scopes, resolution, `$Name` expansion and masking
// of sensitive values.
//
// VariableScopes, Masker and StreamingMasker are plain values. A const Masker
// may be shared between threads; a StreamingMasker belongs to one stream and
// is not thread-safe. The free functions are thread-safe.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reprise {

// Most specific first: a variable in kRuntime hides one of the same name in
// any later scope.
enum class Scope {
  kRuntime,
  kDeployment,
  kBuild,
  kRelease,
  kApplication,
  kTarget,
  kEnvironment,
  kGlobal
};
inline constexpr std::array<Scope, 8> kAllScopes = {
    Scope::kRuntime,     Scope::kDeployment, Scope::kBuild,       Scope::kRelease,
    Scope::kApplication, Scope::kTarget,     Scope::kEnvironment, Scope::kGlobal};

// "runtime", "deployment", ... "global".
std::string_view ScopeName(Scope scope);
std::optional<Scope> ScopeFromName(std::string_view name);

struct Variable {
  std::string value;
  bool sensitive = false;
  friend bool operator==(const Variable&, const Variable&) = default;
};

// Ordered so that listings and JSON are deterministic.
using VariableMap = std::map<std::string, Variable, std::less<>>;

// Appends the non-empty values of the sensitive variables in `map` (for a Masker).
void AppendSensitiveValues(const VariableMap& map, std::vector<std::string>* out);

// A letter or '_' followed by letters, digits and '_'. Names are case-sensitive.
bool IsValidVariableName(std::string_view name);

// Names computed from the deployment ($ApplicationName, $TargetName, ...).
// They cannot be defined in any scope or by `set`.
bool IsBuiltinVariableName(std::string_view name);
const std::vector<std::string>& BuiltinVariableNames();

struct ResolvedVariable {
  Variable variable;
  // Where the value came from; built-ins report kDeployment (kTarget for
  // $TargetName and $TargetPath).
  Scope scope;
  bool builtin = false;
};

// One map per scope plus the built-ins; resolves a name by precedence.
class VariableScopes {
 public:
  VariableMap& At(Scope scope) { return maps_[static_cast<size_t>(scope)]; }
  const VariableMap& At(Scope scope) const { return maps_[static_cast<size_t>(scope)]; }
  VariableMap& Builtins() { return builtins_; }
  const VariableMap& Builtins() const { return builtins_; }

  // Built-ins first, then kRuntime ... kGlobal. nullopt when undefined.
  std::optional<ResolvedVariable> Find(std::string_view name) const;
  // The effective value of every name.
  std::map<std::string, ResolvedVariable, std::less<>> Resolve() const;
  // Every sensitive value in any scope, for a Masker.
  std::vector<std::string> SensitiveValues() const;

 private:
  std::array<VariableMap, kAllScopes.size()> maps_;
  VariableMap builtins_;
};

// "undefined variable $Name (searched built-ins, runtime, deployment, ...)".
std::string UndefinedVariableMessage(std::string_view name);

// Looks a name up while expanding. Returns the value; std::nullopt when the
// value is not known yet (a dry run before the step that sets it); an error
// Status when the name is undefined.
using VariableLookup = std::function<Result<std::optional<std::string>>(std::string_view name)>;

// A lookup over `scopes` that never answers "unknown".
VariableLookup LookupIn(const VariableScopes& scopes);

// Expands `$Name`, `${Name}` and `$$` (a literal '$') in `text`. A '$' not
// followed by a name, '{' or '$' is an error, so is an unterminated "${".
// A value unknown to `lookup` is written as "<$Name: known at run time>" and
// `*has_unknown` (when given) is set.
Result<std::string> ExpandVariables(std::string_view text, const VariableLookup& lookup,
                                    bool* has_unknown = nullptr);

// The names referenced by `text` (in order, repeated names once); errors on
// malformed references as ExpandVariables does.
Result<std::vector<std::string>> ReferencedVariables(std::string_view text);

inline constexpr std::string_view kMask = "******";

// Replaces every occurrence of any sensitive value with "******". The longest
// value wins where several match at one position. Empty values are ignored.
class Masker {
 public:
  Masker() = default;
  explicit Masker(std::vector<std::string> secrets);
  std::string Mask(std::string_view text) const;
  const std::vector<std::string>& secrets() const { return secrets_; }
  // The length of the longest secret, or 0.
  size_t max_length() const { return secrets_.empty() ? 0 : secrets_.front().size(); }

 private:
  std::vector<std::string> secrets_;  // longest first
};

// Masks a stream that arrives in chunks (process output). A secret split
// across two chunks is still masked: the tail of a chunk that could be the
// start of a secret is held back until the next chunk or Finish().
class StreamingMasker {
 public:
  explicit StreamingMasker(const Masker& masker) : masker_(&masker) {}
  // Returns the masked text that is safe to emit now.
  std::string Feed(std::string_view chunk);
  // Returns whatever was held back, masked. The masker can be fed again.
  std::string Finish();

 private:
  const Masker* masker_;
  std::string pending_;
};

}  // namespace reprise
