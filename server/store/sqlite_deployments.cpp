// SqliteStore, deployment aggregate: deployments, their targets, logs and
// approvals, scheduling, target states and automatic-promotion holds.
#include <map>

#include "server/store/sqlite_store_internal.h"

namespace reprise {
namespace {

DeploymentTargetRecord ReadDeploymentTarget(SQLite::Statement& q) {
  DeploymentTargetRecord t;
  ReadColumns(q, t.deployment_id, t.target, t.status, t.message, t.release_dir, t.manifest_sha256,
              t.started_at, t.finished_at);
  return t;
}

DeploymentLogRecord ReadLogLine(SQLite::Statement& q) {
  DeploymentLogRecord l;
  ReadColumns(q, l.deployment_id, l.seq, l.at, l.target, l.level, l.text);
  return l;
}

ApprovalRecord ReadApproval(SQLite::Statement& q) {
  ApprovalRecord a;
  ReadColumns(q, a.id, a.deployment_id, a.user, a.decision, a.comment, a.at, a.revoked);
  return a;
}

TargetCurrent ReadTargetCurrent(SQLite::Statement& q) {
  TargetCurrent c;
  ReadColumns(q, c.target, c.release, c.build, c.deployment_id, c.at, c.by);
  return c;
}

TargetStateRecord ReadTargetState(SQLite::Statement& q) {
  TargetStateRecord t;
  TargetCurrent& c = t.current;
  ReadColumns(q, t.application, t.stage, c.target, c.release, c.build, c.deployment_id, c.at, c.by,
              t.release_dir);
  return t;
}

StageBuild ReadStageBuild(SQLite::Statement& q) {
  StageBuild b;
  ReadColumns(q, b.release, b.build, b.deployment_id, b.at, b.by);
  return b;
}

}  // namespace

Result<DeploymentRecord> SqliteStore::CreateDeployment(const DeploymentRecord& d) {
  return WriteValue("create deployment", d, [&](DeploymentRecord& stored) {
    SQLite::Statement q(*db_,
                        "INSERT INTO deployments(application, release, build, stage, kind, "
                        "status, scheduled_at, expires_after_ms, forced, context_choice, "
                        "variables_json, comment, requested_by, created_at, targets_csv, "
                        "automatic) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    SQLite::bind(q, d.application, d.release, d.build, d.stage, d.kind, d.status);
    if (d.scheduled_at != 0)
      q.bind(7, d.scheduled_at);
    else
      q.bind(7);
    q.bind(8, d.expires_after_ms);
    q.bind(9, d.forced ? 1 : 0);
    q.bind(10, d.context_choice);
    q.bind(11, d.variables_json);
    q.bind(12, d.comment);
    q.bind(13, d.requested_by);
    q.bind(14, d.created_at);
    q.bind(15, d.targets_csv);
    q.bind(16, d.automatic ? 1 : 0);
    q.exec();
    stored.id = db_->getLastInsertRowid();
    return Status::Ok();
  });
}

Result<DeploymentRecord> SqliteStore::GetDeployment(int64_t id) {
  return SelectOne("deployment " + std::to_string(id),
                   std::string(kDeploymentColumns) + " WHERE id=?", ReadDeployment, id);
}

Result<std::vector<DeploymentRecord>> SqliteStore::ListDeployments(const DeploymentFilter& f,
                                                                   const Page& page) {
  std::string sql =
      std::string(kDeploymentColumns) +
      " WHERE (?1 = '' OR application = ?1 COLLATE NOCASE) AND (?2 = '' OR stage = ?2 COLLATE "
      "NOCASE) AND (?3 = '' OR instr(',' || lower(targets_csv) || ',', ',' || lower(?3) || ',') > "
      "0) AND (?4 = '' OR (CASE WHEN automatic THEN 'automation' ELSE requested_by END) = ?4 "
      "COLLATE NOCASE) AND (?5 = '' OR release = ?5 COLLATE NOCASE) AND (?6 = 0 OR build = ?6) "
      "AND (?7 = 0 OR created_at >= ?7) AND (?8 = 0 OR created_at < ?8)";
  if (!f.statuses.empty()) {
    sql += " AND lower(status) IN (";
    for (size_t i = 0; i < f.statuses.size(); ++i) sql += i ? ",lower(?)" : "lower(?)";
    sql += ")";
  }
  sql +=
      f.oldest_first ? " ORDER BY id ASC LIMIT ? OFFSET ?" : " ORDER BY id DESC LIMIT ? OFFSET ?";
  return Many<DeploymentRecord>(
      sql,
      [&](SQLite::Statement& q) {
        SQLite::bind(q, f.application, f.stage, f.target, f.requested_by, f.release, f.build,
                     f.created_from, f.created_to);
        int i = 9;
        for (const auto& st : f.statuses) q.bind(i++, st);
        BindPage(q, i, page);
      },
      ReadDeployment);
}

Result<bool> SqliteStore::TransitionDeployment(int64_t id, const std::vector<std::string>& from,
                                               const std::string& to, int64_t started_at,
                                               int64_t finished_at, const std::string& error) {
  return Changed("transition deployment",
                 "UPDATE deployments SET status=?1, started_at=CASE WHEN ?2 != 0 THEN ?2 ELSE "
                 "started_at END, finished_at=CASE WHEN ?3 != 0 THEN ?3 ELSE finished_at END, "
                 "error=CASE WHEN ?4 != '' THEN ?4 ELSE error END WHERE id=?5 AND status IN (" +
                     Placeholders(from.size()) + ")",
                 to, started_at, finished_at, error, id, from);
}

Result<std::vector<DeploymentRecord>> SqliteStore::DueScheduled(int64_t until, int64_t limit) {
  return SelectAll(
      std::string(kDeploymentColumns) +
          " WHERE status='scheduled' AND scheduled_at<=? ORDER BY scheduled_at, id LIMIT ?",
      ReadDeployment, until, limit);
}

Result<int64_t> SqliteStore::NextScheduledAt() {
  return SelectOne("next scheduled",
                   "SELECT COALESCE(MIN(scheduled_at), 0) FROM deployments "
                   "WHERE status='scheduled'",
                   ReadInt64);
}

Result<std::vector<int64_t>> SqliteStore::FireScheduled(const std::vector<ScheduledFiring>& firings,
                                                        int64_t due_by, int64_t now) {
  std::vector<int64_t> moved;
  if (firings.empty()) return moved;
  Status st = Write("fire scheduled deployments", [&] {
    SQLite::Statement q(*db_,
                        "UPDATE deployments SET status=?1, "
                        "finished_at=CASE WHEN ?2 != 0 THEN ?2 ELSE finished_at END, "
                        "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END "
                        "WHERE id=?4 AND status='scheduled' AND scheduled_at<=?5");
    for (const auto& f : firings) {
      bool final_status = f.to != "queued" && f.to != "waiting";
      q.reset();
      SQLite::bind(q, f.to, final_status ? now : int64_t{0}, final_status ? f.error : std::string(),
                   f.id, due_by);
      if (q.exec() == 1) moved.push_back(f.id);
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return moved;
}

Result<std::vector<int64_t>> SqliteStore::TransitionDeployments(
    const std::vector<int64_t>& ids, const std::vector<std::string>& from, const std::string& to) {
  std::vector<int64_t> moved;
  if (ids.empty()) return moved;
  Status st = Write("transition deployments", [&] {
    SQLite::Statement q(*db_, "UPDATE deployments SET status=? WHERE id=? AND status IN (" +
                                  Placeholders(from.size()) + ")");
    for (int64_t id : ids) {
      q.reset();
      BindAll(q, to, id, from);
      if (q.exec() == 1) moved.push_back(id);
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return moved;
}

Result<bool> SqliteStore::RescheduleDeployment(int64_t id, int64_t scheduled_at) {
  return Changed("reschedule deployment",
                 "UPDATE deployments SET scheduled_at=? WHERE id=? AND status='scheduled'",
                 scheduled_at, id);
}

Status SqliteStore::SetDeploymentContext(int64_t id, const std::string& context_json,
                                         const std::string& kind) {
  return Write("set deployment context",
               [&] { return PutDeploymentContext(id, context_json, kind); });
}

Status SqliteStore::PutDeploymentTarget(const DeploymentTargetRecord& t) {
  return Write("put deployment target", [&] {
    PutDeploymentTargets({t});
    return Status::Ok();
  });
}

Status SqliteStore::StartDeployment(int64_t id, const std::string& context_json,
                                    const std::string& kind,
                                    const std::vector<DeploymentTargetRecord>& targets) {
  return Write("start deployment", [&] {
    REPRISE_RETURN_IF_ERROR(PutDeploymentContext(id, context_json, kind));
    PutDeploymentTargets(targets);
    return Status::Ok();
  });
}

Result<bool> SqliteStore::FinishDeployment(int64_t id, const std::vector<std::string>& from,
                                           const std::string& to, int64_t finished_at,
                                           const std::string& error,
                                           const std::vector<DeploymentTargetRecord>& targets,
                                           const std::vector<TargetStateRecord>& target_states,
                                           const std::vector<DeploymentLogRecord>& logs,
                                           const std::vector<DeploymentLogRecord>& final_logs) {
  return WriteValue("finish deployment", false, [&](bool& moved) {
    AppendLogs(logs);
    PutDeploymentTargets(targets);
    for (const auto& t : target_states)
      PutTargetStateRow(t.application, t.stage, t.current, t.release_dir);
    SQLite::Statement q(*db_,
                        "UPDATE deployments SET status=?1, finished_at=?2, "
                        "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END WHERE id=?4 AND "
                        "status IN (" +
                            Placeholders(from.size()) + ")");
    BindAll(q, to, finished_at, error, id, from);
    moved = q.exec() == 1;
    if (moved) AppendLogs(final_logs);
    return Status::Ok();
  });
}

Result<std::vector<DeploymentTargetRecord>> SqliteStore::ListDeploymentTargets(int64_t id) {
  return SelectAll(
      "SELECT deployment_id, target, status, message, release_dir, manifest_sha256, "
      "COALESCE(started_at, 0), COALESCE(finished_at, 0) FROM deployment_targets "
      "WHERE deployment_id=? ORDER BY target",
      ReadDeploymentTarget, id);
}

Result<int64_t> SqliteStore::AppendDeploymentLog(const DeploymentLogRecord& l) {
  return WriteValue("append deployment log", int64_t{0}, [&](int64_t& seq) {
    SQLite::Statement next(*db_,
                           "SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_logs "
                           "WHERE deployment_id=?");
    next.bind(1, l.deployment_id);
    next.executeStep();
    seq = next.getColumn(0).getInt64();
    Exec(
        "INSERT INTO deployment_logs(deployment_id, seq, at, target, line, "
        "level) VALUES(?,?,?,?,?,?)",
        l.deployment_id, seq, l.at, l.target, l.text, l.level);
    return Status::Ok();
  });
}

Status SqliteStore::AppendDeploymentLogs(const std::vector<DeploymentLogRecord>& lines) {
  if (lines.empty()) return Status::Ok();
  return Write("append deployment logs", [&] {
    AppendLogs(lines);
    return Status::Ok();
  });
}

Result<std::vector<DeploymentLogRecord>> SqliteStore::ListDeploymentLog(int64_t id,
                                                                        int64_t after_seq,
                                                                        int64_t limit) {
  return SelectAll(
      "SELECT deployment_id, seq, at, target, level, line FROM deployment_logs "
      "WHERE deployment_id=? AND seq>? ORDER BY seq LIMIT ?",
      ReadLogLine, id, after_seq, limit);
}

Result<ApprovalRecord> SqliteStore::AddApproval(const ApprovalRecord& a) {
  return WriteValue("add approval", a, [&](ApprovalRecord& stored) {
    SQLite::Statement standing(*db_,
                               "SELECT decision FROM approvals WHERE deployment_id=? AND "
                               "user=? AND revoked=0");
    SQLite::bind(standing, a.deployment_id, a.user);
    if (standing.executeStep()) {
      std::string decision = standing.getColumn(0).getString();
      if (a.decision == "approved" || decision == "rejected")
        return AlreadyExists("'" + a.user + "' has already " + decision + " deployment " +
                             std::to_string(a.deployment_id) +
                             "; one decision per user counts (revoke it first to change it)");
      Exec(
          "UPDATE approvals SET revoked=1 WHERE deployment_id=? AND "
          "user=? AND revoked=0",
          a.deployment_id, a.user);
    }
    Exec(
        "INSERT INTO approvals(deployment_id, user, decision, comment, at) "
        "VALUES(?,?,?,?,?)",
        a.deployment_id, a.user, a.decision, a.comment, a.at);
    stored.id = db_->getLastInsertRowid();
    return Status::Ok();
  });
}

Result<std::vector<ApprovalRecord>> SqliteStore::ListApprovals(int64_t deployment_id) {
  return SelectAll(
      "SELECT id, deployment_id, user, decision, comment, at, revoked FROM approvals "
      "WHERE deployment_id=? ORDER BY id",
      ReadApproval, deployment_id);
}

Result<int64_t> SqliteStore::RevokeApprovals(int64_t deployment_id, const std::string& user) {
  return ExecuteCount("revoke approvals",
                      "UPDATE approvals SET revoked=1 WHERE deployment_id=? AND user=? AND "
                      "revoked=0",
                      deployment_id, user);
}

Result<std::vector<TargetCurrent>> SqliteStore::CurrentBuilds(const std::string& app,
                                                              const std::string& stage) {
  return SelectAll(
      "SELECT target, release, build, deployment_id, at, by FROM target_states "
      "WHERE application=? AND stage=? ORDER BY target",
      ReadTargetCurrent, app, stage);
}

Status SqliteStore::PutTargetState(const std::string& app, const std::string& stage,
                                   const TargetCurrent& c, const std::string& release_dir) {
  return Write("put target state", [&] {
    PutTargetStateRow(app, stage, c, release_dir);
    return Status::Ok();
  });
}

// Inside a write transaction.
void SqliteStore::PutTargetStateRow(const std::string& app, const std::string& stage,
                                    const TargetCurrent& c, const std::string& release_dir) {
  Exec(
      "INSERT INTO target_states(target, application, stage, release, build, "
      "deployment_id, at, by, release_dir) VALUES(?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(target) DO UPDATE SET application=excluded.application, "
      "stage=excluded.stage, release=excluded.release, build=excluded.build, "
      "deployment_id=excluded.deployment_id, at=excluded.at, by=excluded.by, "
      "release_dir=excluded.release_dir",
      c.target, app, stage, c.release, c.build, c.deployment_id, c.at, c.by, release_dir);
}

Result<TargetStateRecord> SqliteStore::GetTargetState(const std::string& target) {
  return SelectOne(
      "the state of target '" + target + "'",
      "SELECT application, stage, target, release, build, deployment_id, at, by, release_dir "
      "FROM target_states WHERE target=?",
      ReadTargetState, target);
}

Status SqliteStore::ClearTargetState(const std::string& target) {
  return Execute("clear target state", "DELETE FROM target_states WHERE target=?", target);
}

Result<std::vector<StageBuild>> SqliteStore::SucceededBuilds(const std::string& app,
                                                             const std::string& stage,
                                                             int64_t limit) {
  return SelectAll(
      "SELECT release, build, deployment_id, finished_at, requested_by FROM stage_builds "
      "WHERE application=? AND stage=? ORDER BY finished_at DESC, deployment_id DESC LIMIT ?",
      ReadStageBuild, app, stage, limit);
}

Result<DeploymentRecord> SqliteStore::LastSuccess(const std::string& app,
                                                  const std::string& release, int64_t build,
                                                  const std::string& stage) {
  return SelectOne("a successful deployment of that build to stage '" + stage + "'",
                   std::string(kDeploymentColumns) +
                       " WHERE id = (SELECT deployment_id FROM stage_builds WHERE "
                       "application=? AND stage=? AND release=? AND build=?)",
                   ReadDeployment, app, stage, release, build);
}

// SQLite's JSON functions edit the one stage's key inside the transaction
// (json_object quotes any stage name; a merge patch with null removes it).
Status SqliteStore::PlaceHold(const std::string& app, const std::string& stage,
                              const std::string& hold_json) {
  return Write("place hold", [&] {
    if (Exec("UPDATE applications SET hold_json=json_patch(hold_json, "
             "json_object(?, json(?))) WHERE name=?",
             stage, hold_json, app) != 1)
      return NotFound("application '" + app + "' not found");
    return Status::Ok();
  });
}

Result<bool> SqliteStore::ClearHold(const std::string& app, const std::string& stage) {
  return WriteValue("clear hold", false, [&](bool& removed) {
    SQLite::Statement read(*db_,
                           "SELECT json(hold_json), json_patch(hold_json, json_object(?, "
                           "json('null'))) FROM applications WHERE name=?");
    SQLite::bind(read, stage, app);
    if (!read.executeStep()) return NotFound("application '" + app + "' not found");
    std::string before = read.getColumn(0).getString();
    std::string after = read.getColumn(1).getString();
    if (before == after) return Status::Ok();
    Exec("UPDATE applications SET hold_json=? WHERE name=?", after, app);
    removed = true;
    return Status::Ok();
  });
}

// Inside a write transaction: appends lines, numbering each deployment's
// lines on from its last one.
void SqliteStore::AppendLogs(const std::vector<DeploymentLogRecord>& lines) {
  if (lines.empty()) return;
  std::map<int64_t, int64_t> next;
  SQLite::Statement last(*db_,
                         "SELECT COALESCE(MAX(seq), 0) FROM deployment_logs "
                         "WHERE deployment_id=?");
  SQLite::Statement q(*db_,
                      "INSERT INTO deployment_logs(deployment_id, seq, at, target, line, "
                      "level) VALUES(?,?,?,?,?,?)");
  for (const auto& l : lines) {
    auto it = next.find(l.deployment_id);
    if (it == next.end()) {
      last.reset();
      last.bind(1, l.deployment_id);
      last.executeStep();
      it = next.emplace(l.deployment_id, last.getColumn(0).getInt64()).first;
    }
    q.reset();
    SQLite::bind(q, l.deployment_id, ++it->second, l.at, l.target, l.text, l.level);
    q.exec();
  }
}

// Inside a write transaction.
Status SqliteStore::PutDeploymentContext(int64_t id, const std::string& context_json,
                                         const std::string& kind) {
  if (Exec("UPDATE deployments SET context_json=?, kind=? WHERE id=?", context_json, kind, id) != 1)
    return NotFound("deployment " + std::to_string(id) + " not found");
  return Status::Ok();
}

// Inside a write transaction.
void SqliteStore::PutDeploymentTargets(const std::vector<DeploymentTargetRecord>& targets) {
  if (targets.empty()) return;
  SQLite::Statement q(*db_,
                      "INSERT INTO deployment_targets(deployment_id, target, status, message, "
                      "release_dir, manifest_sha256, started_at, finished_at) "
                      "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(deployment_id, target) DO UPDATE "
                      "SET status=excluded.status, message=excluded.message, "
                      "release_dir=excluded.release_dir, "
                      "manifest_sha256=excluded.manifest_sha256, "
                      "started_at=excluded.started_at, finished_at=excluded.finished_at");
  for (const auto& t : targets) {
    q.reset();
    q.clearBindings();
    SQLite::bind(q, t.deployment_id, t.target, t.status, t.message, t.release_dir,
                 t.manifest_sha256);
    if (t.started_at)
      q.bind(7, t.started_at);
    else
      q.bind(7);
    if (t.finished_at)
      q.bind(8, t.finished_at);
    else
      q.bind(8);
    q.exec();
  }
}

}  // namespace reprise
