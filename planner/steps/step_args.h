// StepArgs: what a step kind's parser sees of the plan YAML, without yaml-cpp
// (implemented in planner/yaml_parser.cpp, the one yaml-cpp user). A StepArgs
// is one YAML value: the value under the step's key, or a value inside it.
// Every error it returns is an InvalidArgument "source:line:column: message"
// pointing at that value, or at the entry named.
//
// The map form: Load() checks the keys against those allowed (unknown and
// duplicate keys are errors) and remembers them for Has/Get/Required/...
// `what` in messages is the step kind, e.g. "missing key 'path' in delete".
//
// Thread-safety: a StepArgs lives only while its plan is parsed, on one thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "planner/plan.h"

namespace reprise {

class StepArgs {
 public:
  struct Impl;  // the YAML node and the parser's state; in yaml_parser.cpp
  explicit StepArgs(std::shared_ptr<Impl> impl);
  ~StepArgs();
  StepArgs(const StepArgs&);
  StepArgs& operator=(const StepArgs&);

  // The step's dotted id ("3.2"), for numbering children.
  const std::string& step_id() const;

  bool IsScalar() const;
  bool IsSequence() const;
  bool IsMap() const;
  size_t size() const;
  const std::string& Scalar() const;                           // "" unless IsScalar()
  std::vector<StepArgs> Items() const;                         // a sequence's items
  std::vector<std::pair<StepArgs, StepArgs>> Entries() const;  // a map's keys and values

  // An InvalidArgument at this value.
  Status Error(std::string_view message) const;

  // This value read as a type; `desc` names it in errors ("'keep' in deploy-artifact").
  Result<std::string> String(std::string_view desc) const;
  // A string whose `$Variable` references are checked now and expanded at run time.
  Result<std::string> Template(std::string_view desc) const;
  Result<int64_t> Int(std::string_view desc, int64_t min, int64_t max) const;
  Result<bool> Bool(std::string_view desc) const;
  Result<uint32_t> FileMode(std::string_view desc) const;  // octal, "0644"
  Result<std::vector<std::string>> StringList(std::string_view desc) const;
  // This value as a list of child steps of this step, numbered on from *counter.
  Result<Steps> ChildSteps(std::string_view desc, int* counter) const;

  // ---- the map form ----
  // "<what> needs arguments" when there is no value; "<what> must be a map of
  // arguments" when it is not a map.
  Status Load(std::string_view what, std::initializer_list<std::string_view> allowed);
  // For a kind with a main argument `main`: the short form `<what>: value`,
  // where the value is that argument and no other key is given (Has() is
  // false for all), or the map form, Load()ed with `main` required. Returns
  // the main argument, a template.
  Result<std::string> LoadShortOrMap(std::string_view what, std::string_view main,
                                     std::initializer_list<std::string_view> allowed);
  bool Has(std::string_view key) const;
  StepArgs Get(std::string_view key) const;  // an undefined value when absent
  // "missing key '<key>' in <what>", at this value.
  Status Missing(std::string_view key, std::string_view what) const;
  // A template under `key`, which must be present.
  Result<std::string> Required(std::string_view key, std::string_view what) const;
  // A template under `key`, or `fallback` when absent.
  Result<std::string> Optional(std::string_view key, std::string_view what,
                               std::string fallback) const;
  // An integer under `key` into *out, left alone when absent.
  Status OptionalInt(std::string_view key, std::string_view what, int64_t min, int64_t max,
                     int* out) const;
  // An integer under `key` into *out; `key` must be present.
  Status RequiredInt(std::string_view key, std::string_view what, int64_t min, int64_t max,
                     int* out) const;
  // A file mode under `key` into *out, left alone when absent.
  Status OptionalFileMode(std::string_view key, std::string_view what, uint32_t* out) const;
  // The child steps under `key`, which must be present.
  Result<Steps> Children(std::string_view key, std::string_view what, int* counter) const;

 private:
  std::shared_ptr<Impl> impl_;
};

// "'key' in what"
std::string Quoted(std::string_view key, std::string_view what);

// The server's roles: a step or gate naming anything else would wait for nobody.
extern const char* const kKnownRoles;  // "viewer, deployer, ..." for messages
bool IsKnownRole(std::string_view role);

}  // namespace reprise
