// SqlStore, deployment aggregate: the irreversible plan steps that ran
// (irreversible_steps), kept as each one runs.
#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {
using Step = IrreversibleStepRecord;
constexpr auto ReadStep =
    ReadFields<&Step::id, &Step::deployment_id, &Step::application, &Step::stage, &Step::release,
               &Step::build, &Step::step_id, &Step::position, &Step::label, &Step::target,
               &Step::ran_at, &Step::outcome, &Step::note, &Step::has_undo>;
}  // namespace

Status SqlStore::AddIrreversibleStep(const IrreversibleStepRecord& s) {
  return Execute(
      "add irreversible step",
      InsertSql("irreversible_steps",
                {"deployment_id", "application", "stage", "release", "build", "step_id", "position",
                 "label", "target", "ran_at", "outcome", "note", "has_undo"}),
      s.deployment_id, s.application, s.stage, s.release, s.build, s.step_id, s.position, s.label,
      s.target, s.ran_at, s.outcome, s.note, s.has_undo);
}

Result<std::vector<IrreversibleStepRecord>> SqlStore::ListIrreversibleSteps(
    const std::string& app, const std::string& stage, int64_t after) {
  return SelectAll(
      "SELECT id, deployment_id, application, stage, release, build, step_id, position, label, "
      "target, ran_at, outcome, note, has_undo FROM irreversible_steps WHERE application=? AND "
      "stage=? AND ran_at>? ORDER BY ran_at, id",
      ReadStep, app, stage, after);
}

}  // namespace reprise
