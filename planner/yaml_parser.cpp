// The one place yaml-cpp is used: plans and application specs. Every
// yaml-cpp exception is caught here and turned into a Status with a position.
// For plans, this file reads the list of steps and each step's key; the
// arguments are read by the step's kind (planner/steps/<kind>.cpp, found in
// the registry) through StepArgs, implemented here.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include "planner/app_spec.h"
#include "planner/plan.h"
#include "planner/steps/registry.h"
#include "planner/steps/step_args.h"

namespace reprise {

std::string Quoted(std::string_view key, std::string_view what) {
  return "'" + std::string(key) + "' in " + std::string(what);
}

const char* const kKnownRoles = "viewer, deployer, release-manager, admin";
bool IsKnownRole(std::string_view role) {
  return role == "viewer" || role == "deployer" || role == "release-manager" || role == "admin";
}

namespace {

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

// ---- Plans: the step list and the arguments of each step ----

class PlanParser {
 public:
  explicit PlanParser(const Reader& reader) : r_(reader) {}
  const Reader& reader() const { return r_; }

  Result<Steps> ParseSteps(const YAML::Node& node, const std::string& parent_id,
                           std::string_view what, int depth, int* counter);

 private:
  Result<Step> ParseStep(const YAML::Node& node, const std::string& id, int depth);
  static bool IsStepAttribute(const std::string& key);
  Status ParseAttributes(const YAML::Node& node, const YAML::Node& key, int depth, Step* step);

  const Reader& r_;
};

}  // namespace

struct StepArgs::Impl {
  PlanParser* parser = nullptr;
  YAML::Node node;
  std::string step_id;
  int depth = 0;
  YAML::Mark step_key_mark;  // where "needs arguments" points when there is no value
  Fields fields;             // after Load()

  const Reader& r() const { return parser->reader(); }
  // Another value of the same step.
  StepArgs Value(const YAML::Node& value) const {
    auto impl = std::make_shared<Impl>();
    impl->parser = parser;
    impl->node = value;
    impl->step_id = step_id;
    impl->depth = depth;
    impl->step_key_mark = step_key_mark;
    return StepArgs(std::move(impl));
  }
};

StepArgs::StepArgs(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
StepArgs::~StepArgs() = default;
StepArgs::StepArgs(const StepArgs&) = default;
StepArgs& StepArgs::operator=(const StepArgs&) = default;

const std::string& StepArgs::step_id() const { return impl_->step_id; }
bool StepArgs::IsScalar() const { return impl_->node.IsScalar(); }
bool StepArgs::IsSequence() const { return impl_->node.IsSequence(); }
bool StepArgs::IsMap() const { return impl_->node.IsMap(); }
size_t StepArgs::size() const { return impl_->node.size(); }

const std::string& StepArgs::Scalar() const {
  static const std::string kEmpty;
  return impl_->node.IsScalar() ? impl_->node.Scalar() : kEmpty;
}

std::vector<StepArgs> StepArgs::Items() const {
  std::vector<StepArgs> items;
  if (!impl_->node.IsSequence()) return items;
  for (const auto& item : impl_->node) items.push_back(impl_->Value(item));
  return items;
}

std::vector<std::pair<StepArgs, StepArgs>> StepArgs::Entries() const {
  std::vector<std::pair<StepArgs, StepArgs>> entries;
  if (!impl_->node.IsMap()) return entries;
  for (auto it = impl_->node.begin(); it != impl_->node.end(); ++it) {
    entries.emplace_back(impl_->Value(it->first), impl_->Value(it->second));
  }
  return entries;
}

Status StepArgs::Error(std::string_view message) const {
  return impl_->r().Error(impl_->node, message);
}

Result<std::string> StepArgs::String(std::string_view desc) const {
  return ReadString(impl_->r(), impl_->node, desc);
}
Result<std::string> StepArgs::Template(std::string_view desc) const {
  return ReadTemplate(impl_->r(), impl_->node, desc);
}
Result<int64_t> StepArgs::Int(std::string_view desc, int64_t min, int64_t max) const {
  return ReadInt(impl_->r(), impl_->node, desc, min, max);
}
Result<bool> StepArgs::Bool(std::string_view desc) const {
  return ReadBool(impl_->r(), impl_->node, desc);
}
Result<uint32_t> StepArgs::FileMode(std::string_view desc) const {
  return ReadMode(impl_->r(), impl_->node, desc);
}
Result<std::vector<std::string>> StepArgs::StringList(std::string_view desc) const {
  return ReadStringList(impl_->r(), impl_->node, desc);
}
Result<Steps> StepArgs::ChildSteps(std::string_view desc, int* counter) const {
  return impl_->parser->ParseSteps(impl_->node, impl_->step_id, desc, impl_->depth + 1, counter);
}

Status StepArgs::Load(std::string_view what, std::initializer_list<std::string_view> allowed) {
  if (!impl_->node.IsDefined() || impl_->node.IsNull()) {
    // A missing value has no useful position of its own: point at the key.
    return impl_->r().Error(impl_->step_key_mark, std::string(what) + " needs arguments");
  }
  auto loaded = impl_->fields.Load(impl_->r(), impl_->node, what, allowed);
  if (!loaded.ok()) return loaded.status();
  return Status::Ok();
}

Result<std::string> StepArgs::LoadShortOrMap(std::string_view what, std::string_view main,
                                             std::initializer_list<std::string_view> allowed) {
  if (IsScalar()) return Template(what);
  REPRISE_RETURN_IF_ERROR(Load(what, allowed));
  return Required(main, what);
}

bool StepArgs::Has(std::string_view key) const { return impl_->fields.Has(key); }
StepArgs StepArgs::Get(std::string_view key) const { return impl_->Value(impl_->fields.Get(key)); }

Status StepArgs::Missing(std::string_view key, std::string_view what) const {
  return Error("missing key '" + std::string(key) + "' in " + std::string(what));
}

Result<std::string> StepArgs::Required(std::string_view key, std::string_view what) const {
  if (!Has(key)) return Missing(key, what);
  return Get(key).Template(Quoted(key, what));
}

Result<std::string> StepArgs::Optional(std::string_view key, std::string_view what,
                                       std::string fallback) const {
  if (!Has(key)) return fallback;
  return Get(key).Template(Quoted(key, what));
}

Status StepArgs::OptionalInt(std::string_view key, std::string_view what, int64_t min, int64_t max,
                             int* out) const {
  if (!Has(key)) return Status::Ok();
  REPRISE_ASSIGN_OR_RETURN(int64_t v, Get(key).Int(Quoted(key, what), min, max));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status StepArgs::RequiredInt(std::string_view key, std::string_view what, int64_t min, int64_t max,
                             int* out) const {
  if (!Has(key)) return Missing(key, what);
  return OptionalInt(key, what, min, max, out);
}

Status StepArgs::OptionalFileMode(std::string_view key, std::string_view what,
                                  uint32_t* out) const {
  if (!Has(key)) return Status::Ok();
  REPRISE_ASSIGN_OR_RETURN(*out, Get(key).FileMode(Quoted(key, what)));
  return Status::Ok();
}

Result<Steps> StepArgs::Children(std::string_view key, std::string_view what, int* counter) const {
  if (!Has(key)) return Missing(key, what);
  return Get(key).ChildSteps(Quoted(key, what), counter);
}

namespace {

Result<Steps> PlanParser::ParseSteps(const YAML::Node& node, const std::string& parent_id,
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

Result<Step> PlanParser::ParseStep(const YAML::Node& node, const std::string& id, int depth) {
  // One key names the operation or block; the others are the attributes
  // common to every step (irreversible, note, undo), read into Step here.
  if (!node.IsMap() || node.size() == 0) {
    return r_.Error(node,
                    "a step must be a map with one key, the operation or block (e.g. "
                    "\"- log: hello\"), and optionally irreversible, note and undo");
  }
  std::optional<YAML::Node> key, value;
  Fields attributes;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: the iterator proxy dies here
    if (!k.IsScalar()) return r_.Error(k, "the operation name must be a word");
    if (IsStepAttribute(k.Scalar())) continue;
    if (!FindStepKind(k.Scalar())) {
      return r_.Error(k, "unknown operation '" + k.Scalar() + "' (" + KnownStepKinds() + ")");
    }
    if (key) {
      return r_.Error(k, "a step has one operation; '" + key->Scalar() + "' and '" + k.Scalar() +
                             "' are two (make them two steps)");
    }
    key = k;
    value = it->second;
  }
  if (!key) return r_.Error(node, "this step has no operation (" + KnownStepKinds() + ")");
  auto impl = std::make_shared<StepArgs::Impl>();
  impl->parser = this;
  impl->node = *value;
  impl->step_id = id;
  impl->depth = depth;
  impl->step_key_mark = key->Mark();
  StepArgs args(std::move(impl));
  Step step;
  step.position = Reader::Position(key->Mark());
  step.id = id;
  REPRISE_ASSIGN_OR_RETURN(step.body, FindStepKind(key->Scalar())->parse(args));
  REPRISE_RETURN_IF_ERROR(ParseAttributes(node, *key, depth, &step));
  return step;
}

bool PlanParser::IsStepAttribute(const std::string& key) {
  return key == "irreversible" || key == "note" || key == "undo";
}

// irreversible: true, note: "...", undo: [steps]. Only target operations
// leave a mark on a target that a rollback could miss; undo needs irreversible.
Status PlanParser::ParseAttributes(const YAML::Node& node, const YAML::Node& key, int depth,
                                   Step* step) {
  const std::string what = "step '" + key.Scalar() + "'";
  YAML::Node irreversible(YAML::NodeType::Undefined), note(YAML::NodeType::Undefined),
      undo(YAML::NodeType::Undefined);
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string& name = it->first.Scalar();
    if (name == "irreversible") irreversible = it->second;
    if (name == "note") note = it->second;
    if (name == "undo") undo = it->second;
  }
  if (irreversible.IsDefined()) {
    REPRISE_ASSIGN_OR_RETURN(step->irreversible,
                             ReadBool(r_, irreversible, Quoted("irreversible", what)));
  }
  // 'note' and 'undo' belong to irreversible steps only.
  auto check_irreversible = [&](const YAML::Node& attribute, std::string_view says,
                                std::string_view remove) -> Status {
    if (step->irreversible) return Status::Ok();
    return r_.Error(attribute, std::string(says) + ": add 'irreversible: true' to " + what +
                                   ", or remove " + std::string(remove));
  };
  if (note.IsDefined()) {
    REPRISE_RETURN_IF_ERROR(
        check_irreversible(note, "'note' says what an irreversible step cannot undo", "the note"));
    if (!note.IsScalar()) {
      return r_.Error(note, Quoted("note", what) + " must be a string");
    }
    step->note = note.Scalar();
  }
  if (undo.IsDefined()) {
    REPRISE_RETURN_IF_ERROR(
        check_irreversible(undo, "'undo' belongs to an irreversible step", "'undo'"));
    int counter = 0;
    REPRISE_ASSIGN_OR_RETURN(step->undo, ParseSteps(undo, step->id + ".undo", Quoted("undo", what),
                                                    depth + 1, &counter));
    if (step->undo.empty()) return r_.Error(undo, Quoted("undo", what) + " has no steps");
    for (const auto& u : step->undo) {
      if (u.irreversible) {
        return r_.Error(undo, "an undo step cannot itself be irreversible (in " + what + ")");
      }
    }
  }
  if (!step->irreversible) return Status::Ok();
  if (!IsTargetOperation(*step)) {
    return r_.Error(irreversible,
                    "'irreversible' marks an operation that runs on targets (deploy-artifact, "
                    "write-file, exec, ensure-dir, delete, http-check), not " +
                        what + ": mark the operation inside it");
  }
  if (step->note.empty()) {
    return r_.Error(irreversible,
                    "an irreversible step needs a 'note' saying what a rollback "
                    "cannot undo (e.g. note: \"schema v42\")");
  }
  return Status::Ok();
}

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
