// SqlStore, rollback-record aggregate: records, their targets, components,
// approvals, connection checks and validation files.
#include <algorithm>

#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {

constexpr const char* kRecordColumns =
    "SELECT id, deployment_id, application, stage, release, build, status, comment, created_by, "
    "created_at, submitted_by, submitted_at, executed_by, executed_at, execution_deployment_id, "
    "scheduled_at, finished_at, validated_by, validated_at, validation_json, connection_json, "
    "connection_checked_at, connection_ok, error, "
    "(SELECT COUNT(*) FROM rollback_record_components c WHERE c.record_id = r.id), "
    "(SELECT COUNT(*) FROM rollback_record_components c WHERE c.record_id = r.id AND c.selected <> "
    "0) "
    "FROM rollback_records r";

constexpr const char* kTargetColumns =
    "SELECT record_id, target, release_dir, manifest_json, manifest_hash, artifact, "
    "previous_deployment_id, previous_release, previous_build, previous_release_dir, "
    "previous_artifact, previous_sha256, previous_manifest_json, previous_manifest_hash, "
    "composed_manifest_json, composed_manifest_hash FROM rollback_record_targets";

RollbackRecord ReadRecord(const SqlRow& q) {
  RollbackRecord r;
  ReadColumns(q, r.id, r.deployment_id, r.application, r.stage, r.release, r.build, r.status,
              r.comment, r.created_by, r.created_at, r.submitted_by, r.submitted_at, r.executed_by,
              r.executed_at, r.execution_deployment_id, r.scheduled_at, r.finished_at,
              r.validated_by, r.validated_at, r.validation_json, r.connection_json,
              r.connection_checked_at, r.connection_ok, r.error, r.components_total,
              r.components_selected);
  return r;
}

RollbackRecordTarget ReadRecordTarget(const SqlRow& q) {
  RollbackRecordTarget t;
  ReadColumns(q, t.record_id, t.target, t.release_dir, t.manifest_json, t.manifest_hash, t.artifact,
              t.previous_deployment_id, t.previous_release, t.previous_build,
              t.previous_release_dir, t.previous_artifact, t.previous_sha256,
              t.previous_manifest_json, t.previous_manifest_hash, t.composed_manifest_json,
              t.composed_manifest_hash);
  return t;
}

using Comp = RollbackComponentRecord;
constexpr auto ReadComponent = ReadFields<&Comp::target, &Comp::path, &Comp::type, &Comp::selected>;

using RAppr = RollbackApprovalRecord;
constexpr auto ReadRollbackApproval =
    ReadFields<&RAppr::user, &RAppr::decision, &RAppr::comment, &RAppr::at>;

}  // namespace

Result<RollbackRecord> SqlStore::CreateRollbackRecord(
    const RollbackRecord& r, const std::vector<RollbackRecordTarget>& targets,
    const std::vector<RollbackComponentRecord>& components) {
  int64_t id = 0;
  Status st = Write("create rollback record", [&] {
    id = InsertId(
        InsertSql("rollback_records", {"deployment_id", "application", "stage", "release", "build",
                                       "status", "comment", "created_by", "created_at"}),
        r.deployment_id, r.application, r.stage, r.release, r.build, r.status, r.comment,
        r.created_by, r.created_at);
    const std::string insert_target = InsertSql(
        "rollback_record_targets",
        {"record_id", "target", "release_dir", "manifest_json", "manifest_hash", "artifact",
         "previous_deployment_id", "previous_release", "previous_build", "previous_release_dir",
         "previous_artifact", "previous_sha256", "previous_manifest_json", "previous_manifest_hash",
         "composed_manifest_json", "composed_manifest_hash"});
    for (const auto& t : targets)
      Exec(insert_target, id, t.target, t.release_dir, t.manifest_json, t.manifest_hash, t.artifact,
           t.previous_deployment_id, t.previous_release, t.previous_build, t.previous_release_dir,
           t.previous_artifact, t.previous_sha256, t.previous_manifest_json,
           t.previous_manifest_hash, t.composed_manifest_json, t.composed_manifest_hash);
    const std::string insert_component = InsertSql(
        "rollback_record_components", {"record_id", "target", "path", "type", "selected"});
    for (const auto& c : components)
      Exec(insert_component, id, c.target, c.path, c.type, c.selected);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return GetRollbackRecord(id);
}

// Inside a write transaction: the record's status, or NotFound.
Result<std::string> SqlStore::RecordStatus(int64_t id) {
  auto status = FirstRow("SELECT status FROM rollback_records WHERE id=?", ReadText, id);
  if (!status) return NotFound("rollback record " + std::to_string(id) + " not found");
  return std::move(*status);
}

Result<RollbackRecord> SqlStore::GetRollbackRecord(int64_t id) {
  return SelectOne("rollback record " + std::to_string(id),
                   std::string(kRecordColumns) + " WHERE id=?", ReadRecord, id);
}

Result<RollbackRecord> SqlStore::FindRollbackRecordByExecution(int64_t deployment_id) {
  return SelectOne("rollback record executed by deployment " + std::to_string(deployment_id),
                   std::string(kRecordColumns) +
                       " WHERE execution_deployment_id=? AND execution_deployment_id<>0",
                   ReadRecord, deployment_id);
}

Result<std::vector<RollbackRecord>> SqlStore::ListRollbackRecords(const RollbackRecordFilter& f,
                                                                  const Page& page) {
  std::string sql = std::string(kRecordColumns) +
                    " WHERE (?1 = '' OR application = ?1) AND (?2 = '' OR stage = ?2) AND "
                    "(?3 = 0 OR created_at >= ?3) AND (?4 = 0 OR created_at < ?4) AND "
                    "(?5 = 0 OR deployment_id = ?5)";
  size_t next = 6;
  if (!f.statuses.empty()) {
    sql += " AND status IN (" + Placeholders(next, f.statuses.size()) + ")";
    next += f.statuses.size();
  }
  sql +=
      " ORDER BY id DESC LIMIT ?" + std::to_string(next) + " OFFSET ?" + std::to_string(next + 1);
  return SelectAll(sql, ReadRecord, f.application, f.stage, f.from, f.to, f.deployment_id,
                   f.statuses, ClampLimit(page), ClampOffset(page));
}

Result<std::vector<RollbackRecordTarget>> SqlStore::ListRollbackRecordTargets(int64_t id) {
  return SelectAll(std::string(kTargetColumns) + " WHERE record_id=? ORDER BY target",
                   ReadRecordTarget, id);
}

Result<std::vector<RollbackComponentRecord>> SqlStore::ListRollbackComponents(int64_t id) {
  return SelectAll(
      "SELECT target, path, type, selected FROM rollback_record_components WHERE record_id=? "
      "ORDER BY target, path",
      ReadComponent, id);
}

Result<bool> SqlStore::SetRollbackSelection(int64_t id,
                                            const std::vector<RollbackComponentRecord>& components,
                                            const std::vector<RollbackRecordTarget>& composed) {
  return WriteValue("change rollback selection", false, [&](bool& changed) {
    auto status = RecordStatus(id);
    if (!status.ok()) return status.status();
    if (*status != "draft") return Status::Ok();
    for (const auto& c : components)
      Exec(
          "UPDATE rollback_record_components SET selected=? WHERE record_id=? AND target=? AND "
          "path=?",
          c.selected, id, c.target, c.path);
    for (const auto& t : composed)
      Exec(
          "UPDATE rollback_record_targets SET composed_manifest_json=?, "
          "composed_manifest_hash=? WHERE record_id=? AND target=?",
          t.composed_manifest_json, t.composed_manifest_hash, id, t.target);
    // A new selection needs a new connection check.
    Exec("UPDATE rollback_records SET connection_ok=0 WHERE id=?", id);
    changed = true;
    return Status::Ok();
  });
}

Result<bool> SqlStore::TransitionRollbackRecord(int64_t id, const std::vector<std::string>& from,
                                                const std::string& to,
                                                const RollbackRecordChange& c) {
  return WriteValue("change rollback record", false, [&](bool& moved) {
    auto status = RecordStatus(id);
    if (!status.ok()) return status.status();
    if (std::find(from.begin(), from.end(), *status) == from.end()) return Status::Ok();
    moved = Exec(
                "UPDATE rollback_records SET status=?1, "
                "submitted_by=CASE WHEN ?2='' THEN submitted_by ELSE ?2 END, "
                "submitted_at=CASE WHEN ?3=0 THEN submitted_at ELSE ?3 END, "
                "executed_by=CASE WHEN ?4='' THEN executed_by ELSE ?4 END, "
                "executed_at=CASE WHEN ?5=0 THEN executed_at ELSE ?5 END, "
                "execution_deployment_id=CASE WHEN ?6=0 THEN execution_deployment_id ELSE ?6 END, "
                "scheduled_at=CASE WHEN ?7=0 THEN scheduled_at ELSE ?7 END, "
                "finished_at=CASE WHEN ?8=0 THEN finished_at ELSE ?8 END, "
                "validated_by=CASE WHEN ?9='' THEN validated_by ELSE ?9 END, "
                "validated_at=CASE WHEN ?10=0 THEN validated_at ELSE ?10 END, "
                "validation_json=CASE WHEN ?11='' THEN validation_json ELSE ?11 END, "
                "error=CASE WHEN ?12='' THEN error ELSE ?12 END WHERE id=?13",
                to, c.submitted_by, c.submitted_at, c.executed_by, c.executed_at,
                c.execution_deployment_id, c.scheduled_at, c.finished_at, c.validated_by,
                c.validated_at, c.validation_json, c.error, id) == 1;
    return Status::Ok();
  });
}

Status SqlStore::AddRollbackApproval(int64_t id, const RollbackApprovalRecord& a) {
  return Write("add rollback approval", [&] {
    auto decision =
        FirstRow("SELECT decision FROM rollback_record_approvals WHERE record_id=? AND \"user\"=?",
                 ReadText, id, a.user);
    if (decision)
      return AlreadyExists("'" + a.user + "' has already " + *decision + " rollback record " +
                           std::to_string(id) + "; one decision per user counts");
    Exec(InsertSql("rollback_record_approvals",
                   {"record_id", "\"user\"", "decision", "comment", "at"}),
         id, a.user, a.decision, a.comment, a.at);
    return Status::Ok();
  });
}

Result<std::vector<RollbackApprovalRecord>> SqlStore::ListRollbackApprovals(int64_t id) {
  return SelectAll(
      "SELECT \"user\", decision, comment, at FROM rollback_record_approvals WHERE record_id=? "
      "ORDER BY id",
      ReadRollbackApproval, id);
}

Status SqlStore::SetRollbackConnection(int64_t id, const std::string& json, bool ok, int64_t at) {
  return Write("record rollback connection check", [&] {
    if (Exec("UPDATE rollback_records SET connection_json=?, connection_ok=?, "
             "connection_checked_at=? WHERE id=?",
             json, ok, at, id) != 1)
      return NotFound("rollback record " + std::to_string(id) + " not found");
    return Status::Ok();
  });
}

}  // namespace reprise
