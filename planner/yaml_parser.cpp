// Plans from YAML: this file reads the list of steps and each step's key;
// the arguments are read by the step's kind (planner/steps/<kind>.cpp, found
// in the registry) through StepArgs, implemented here. yaml-cpp is used only
// here, in app_spec_parser.cpp and through yaml_reader.h; every yaml-cpp
// exception is caught and turned into a Status with a position.
#include "planner/app_spec.h"
#include "planner/plan.h"
#include "planner/steps/registry.h"
#include "planner/steps/step_args.h"
#include "planner/yaml_reader.h"

namespace reprise {

std::string Quoted(std::string_view key, std::string_view what) {
  return "'" + std::string(key) + "' in " + std::string(what);
}

const char* const kKnownRoles = "viewer, deployer, release-manager, admin";
bool IsKnownRole(std::string_view role) {
  return role == "viewer" || role == "deployer" || role == "release-manager" || role == "admin";
}

using namespace yaml_internal;

namespace {

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

}  // namespace

namespace yaml_internal {

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

}  // namespace yaml_internal

Result<Plan> ParsePlan(std::string_view yaml, std::string_view source_name) {
  Reader r{std::string(source_name)};
  return Guarded<Plan>(
      r, [&] { return ParsePlanNode(r, YAML::Load(std::string(yaml)), source_name); });
}

}  // namespace reprise
