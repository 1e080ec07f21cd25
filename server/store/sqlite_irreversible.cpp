// SqliteStore, deployment aggregate: the irreversible plan steps that ran
// (irreversible_steps), kept as each one runs.
#include "server/store/sqlite_store_internal.h"

namespace reprise {
namespace {
IrreversibleStepRecord ReadStep(SQLite::Statement& q) {
  IrreversibleStepRecord s;
  ReadColumns(q, s.id, s.deployment_id, s.application, s.stage, s.release, s.build, s.step_id,
              s.position, s.label, s.target, s.ran_at, s.outcome, s.note, s.has_undo);
  return s;
}
}  // namespace

Status SqliteStore::AddIrreversibleStep(const IrreversibleStepRecord& s) {
  return Execute(
      "add irreversible step",
      "INSERT INTO irreversible_steps(deployment_id, application, stage, release, build, "
      "step_id, position, label, target, ran_at, outcome, note, has_undo) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
      s.deployment_id, s.application, s.stage, s.release, s.build, s.step_id, s.position, s.label,
      s.target, s.ran_at, s.outcome, s.note, s.has_undo);
}

Result<std::vector<IrreversibleStepRecord>> SqliteStore::ListIrreversibleSteps(
    const std::string& app, const std::string& stage, int64_t after) {
  return SelectAll(
      "SELECT id, deployment_id, application, stage, release, build, step_id, position, label, "
      "target, ran_at, outcome, note, has_undo FROM irreversible_steps WHERE application=? AND "
      "stage=? AND ran_at>? ORDER BY ran_at, id",
      ReadStep, app, stage, after);
}

}  // namespace reprise
