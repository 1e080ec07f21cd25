// SqlStore, deployment aggregate: deployments, their targets, logs and
// approvals, scheduling, target states and automatic-promotion holds.
#include <map>
#include <nlohmann/json.hpp>

#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {

constexpr const char* kDeploymentColumns =
    "SELECT id, application, release, build, stage, kind, status, COALESCE(scheduled_at, 0), "
    "expires_after_ms, forced, context_choice, variables_json, comment, requested_by, "
    "created_at, COALESCE(started_at, 0), COALESCE(finished_at, 0), COALESCE(context_json, ''), "
    "error, targets_csv, automatic FROM deployments";

DeploymentRecord ReadDeployment(const SqlRow& q) {
  DeploymentRecord d;
  ReadColumns(q, d.id, d.application, d.release, d.build, d.stage, d.kind, d.status, d.scheduled_at,
              d.expires_after_ms, d.forced, d.context_choice, d.variables_json, d.comment,
              d.requested_by, d.created_at, d.started_at, d.finished_at, d.context_json, d.error,
              d.targets_csv, d.automatic);
  return d;
}

using DepTgt = DeploymentTargetRecord;
constexpr auto ReadDeploymentTarget =
    ReadFields<&DepTgt::deployment_id, &DepTgt::target, &DepTgt::status, &DepTgt::message,
               &DepTgt::release_dir, &DepTgt::manifest_sha256, &DepTgt::started_at,
               &DepTgt::finished_at>;
using Line = DeploymentLogRecord;
constexpr auto ReadLogLine = ReadFields<&Line::deployment_id, &Line::seq, &Line::at, &Line::target,
                                        &Line::level, &Line::text>;
using Appr = ApprovalRecord;
constexpr auto ReadApproval =
    ReadFields<&Appr::id, &Appr::deployment_id, &Appr::user, &Appr::decision, &Appr::comment,
               &Appr::at, &Appr::revoked>;
using Cur = TargetCurrent;
constexpr auto ReadTargetCurrent =
    ReadFields<&Cur::target, &Cur::release, &Cur::build, &Cur::deployment_id, &Cur::at, &Cur::by>;
using SB = StageBuild;
constexpr auto ReadStageBuild =
    ReadFields<&SB::release, &SB::build, &SB::deployment_id, &SB::at, &SB::by>;

TargetStateRecord ReadTargetState(const SqlRow& q) {
  TargetStateRecord t;
  TargetCurrent& c = t.current;
  ReadColumns(q, t.application, t.stage, c.target, c.release, c.build, c.deployment_id, c.at, c.by,
              t.release_dir);
  return t;
}

// The SQL of "`haystack` contains `needle`" (both text expressions).
std::string ContainsSql(SqlDialect dialect, const std::string& haystack,
                        const std::string& needle) {
  if (dialect == SqlDialect::kPostgres) return "strpos(" + haystack + ", " + needle + ") > 0";
  return "instr(" + haystack + ", " + needle + ") > 0";
}

}  // namespace

Result<DeploymentRecord> SqlStore::CreateDeployment(const DeploymentRecord& d) {
  return WriteValue("create deployment", d, [&](DeploymentRecord& stored) {
    stored.id = InsertId(
        InsertSql("deployments",
                  {"application", "release", "build", "stage", "kind", "status", "scheduled_at",
                   "expires_after_ms", "forced", "context_choice", "variables_json", "comment",
                   "requested_by", "created_at", "targets_csv", "automatic"}),
        d.application, d.release, d.build, d.stage, d.kind, d.status, ZeroAsNull{d.scheduled_at},
        d.expires_after_ms, d.forced, d.context_choice, d.variables_json, d.comment, d.requested_by,
        d.created_at, d.targets_csv, d.automatic);
    return Status::Ok();
  });
}

Result<DeploymentRecord> SqlStore::GetDeployment(int64_t id) {
  return SelectOne("deployment " + std::to_string(id),
                   std::string(kDeploymentColumns) + " WHERE id=?", ReadDeployment, id);
}

Result<std::vector<DeploymentRecord>> SqlStore::ListDeployments(const DeploymentFilter& f,
                                                                const Page& page) {
  // Names match whatever their case (lower() on both sides).
  std::string sql =
      std::string(kDeploymentColumns) +
      " WHERE (?1 = '' OR lower(application) = lower(?1)) AND (?2 = '' OR lower(stage) = "
      "lower(?2)) AND (?3 = '' OR " +
      ContainsSql(db_->Dialect(), "',' || lower(targets_csv) || ','", "',' || lower(?3) || ','") +
      ") AND (?4 = '' OR lower(CASE WHEN automatic <> 0 THEN 'automation' ELSE requested_by END) "
      "= lower(?4)) AND (?5 = '' OR lower(release) = lower(?5)) AND (?6 = 0 OR build = ?6) "
      "AND (?7 = 0 OR created_at >= ?7) AND (?8 = 0 OR created_at < ?8)";
  size_t next = 9;
  if (!f.statuses.empty()) {
    sql += " AND lower(status) IN (";
    for (size_t i = 0; i < f.statuses.size(); ++i)
      sql += (i ? ",lower(?" : "lower(?") + std::to_string(next++) + ")";
    sql += ")";
  }
  sql += f.oldest_first ? " ORDER BY id ASC" : " ORDER BY id DESC";
  sql += " LIMIT ?" + std::to_string(next) + " OFFSET ?" + std::to_string(next + 1);
  return SelectAll(sql, ReadDeployment, f.application, f.stage, f.target, f.requested_by, f.release,
                   f.build, f.created_from, f.created_to, f.statuses, ClampLimit(page),
                   ClampOffset(page));
}

Result<bool> SqlStore::TransitionDeployment(int64_t id, const std::vector<std::string>& from,
                                            const std::string& to, int64_t started_at,
                                            int64_t finished_at, const std::string& error) {
  return Changed("transition deployment",
                 "UPDATE deployments SET status=?1, started_at=CASE WHEN ?2 != 0 THEN ?2 ELSE "
                 "started_at END, finished_at=CASE WHEN ?3 != 0 THEN ?3 ELSE finished_at END, "
                 "error=CASE WHEN ?4 != '' THEN ?4 ELSE error END WHERE id=?5 AND status IN (" +
                     Placeholders(6, from.size()) + ")",
                 to, started_at, finished_at, error, id, from);
}

Result<std::vector<DeploymentRecord>> SqlStore::DueScheduled(int64_t until, int64_t limit) {
  return DueRows(kDeploymentColumns, ReadDeployment, "scheduled", "scheduled_at", until, limit);
}

Result<int64_t> SqlStore::NextScheduledAt() {
  return NextDueAt("deployments", "scheduled", "scheduled_at");
}

namespace {

// `ids` in chunks of at most `per`, each padded to a power of two by
// repeating its last id (harmless in an IN list), so that a statement
// taking a chunk comes in few distinct forms to prepare.
std::vector<std::vector<int64_t>> PaddedChunks(const std::vector<int64_t>& ids, size_t per) {
  std::vector<std::vector<int64_t>> chunks;
  for (size_t first = 0; first < ids.size(); first += per) {
    auto begin = ids.begin() + static_cast<std::ptrdiff_t>(first);
    auto& chunk = chunks.emplace_back(
        begin, begin + static_cast<std::ptrdiff_t>(std::min(per, ids.size() - first)));
    size_t padded = 1;
    while (padded < chunk.size()) padded *= 2;
    chunk.resize(padded, chunk.back());
  }
  return chunks;
}

}  // namespace

// One statement per kind of move (to queued, to waiting, to a final status
// with its error) and per up to 256 ids, not one per deployment: a burst of
// thousands falling due at once is fired in a few round trips to the
// database.
Result<std::vector<int64_t>> SqlStore::FireScheduled(const std::vector<ScheduledFiring>& firings,
                                                     int64_t due_by, int64_t now) {
  std::vector<int64_t> moved;
  if (firings.empty()) return moved;
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> moves;
  for (const auto& f : firings) {
    bool final_status = f.to != "queued" && f.to != "waiting";
    moves[{f.to, final_status ? f.error : std::string()}].push_back(f.id);
  }
  constexpr size_t kIdsPerStatement = 256;
  Status st = Write("fire scheduled deployments", [&] {
    for (const auto& [move, ids] : moves) {
      const auto& [to, error] = move;
      const int64_t finished_at = to != "queued" && to != "waiting" ? now : int64_t{0};
      for (const auto& some : PaddedChunks(ids, kIdsPerStatement)) {
        auto fired = AllRows(
            "UPDATE deployments SET status=?1, "
            "finished_at=CASE WHEN ?2 != 0 THEN ?2 ELSE finished_at END, "
            "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END "
            "WHERE status='scheduled' AND scheduled_at<=?4 AND id IN (" +
                Placeholders(5, some.size()) + ") RETURNING id",
            ReadInt64, to, finished_at, error, due_by, some);
        moved.insert(moved.end(), fired.begin(), fired.end());
      }
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return moved;
}

Result<std::vector<int64_t>> SqlStore::TransitionDeployments(const std::vector<int64_t>& ids,
                                                             const std::vector<std::string>& from,
                                                             const std::string& to) {
  std::vector<int64_t> moved;
  if (ids.empty()) return moved;
  Status st = Write("transition deployments", [&] {
    std::string sql = "UPDATE deployments SET status=?1 WHERE id=?2 AND status IN (" +
                      Placeholders(3, from.size()) + ")";
    for (int64_t id : ids)
      if (Exec(sql, to, id, from) == 1) moved.push_back(id);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return moved;
}

Result<bool> SqlStore::RescheduleDeployment(int64_t id, int64_t scheduled_at) {
  return Changed("reschedule deployment",
                 "UPDATE deployments SET scheduled_at=? WHERE id=? AND status='scheduled'",
                 scheduled_at, id);
}

Status SqlStore::SetDeploymentContext(int64_t id, const std::string& context_json,
                                      const std::string& kind) {
  return Write("set deployment context",
               [&] { return PutDeploymentContext(id, context_json, kind); });
}

Status SqlStore::PutDeploymentTarget(const DeploymentTargetRecord& t) {
  return Write("put deployment target", [&] {
    PutDeploymentTargets({t});
    return Status::Ok();
  });
}

Status SqlStore::StartDeployment(int64_t id, const std::string& context_json,
                                 const std::string& kind,
                                 const std::vector<DeploymentTargetRecord>& targets) {
  return Write("start deployment", [&] {
    REPRISE_RETURN_IF_ERROR(PutDeploymentContext(id, context_json, kind));
    PutDeploymentTargets(targets);
    return Status::Ok();
  });
}

Result<bool> SqlStore::FinishDeployment(int64_t id, const std::vector<std::string>& from,
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
    moved = Exec(
                "UPDATE deployments SET status=?1, finished_at=?2, "
                "error=CASE WHEN ?3 != '' THEN ?3 ELSE error END WHERE id=?4 AND "
                "status IN (" +
                    Placeholders(5, from.size()) + ")",
                to, finished_at, error, id, from) == 1;
    if (moved) AppendLogs(final_logs);
    return Status::Ok();
  });
}

Result<std::vector<DeploymentTargetRecord>> SqlStore::ListDeploymentTargets(int64_t id) {
  return SelectAll(
      "SELECT deployment_id, target, status, message, release_dir, manifest_sha256, "
      "COALESCE(started_at, 0), COALESCE(finished_at, 0) FROM deployment_targets "
      "WHERE deployment_id=? ORDER BY target",
      ReadDeploymentTarget, id);
}

Result<int64_t> SqlStore::AppendDeploymentLog(const DeploymentLogRecord& l) {
  return WriteValue("append deployment log", int64_t{0}, [&](int64_t& seq) {
    AppendLogs({l});
    seq = LastLogSeq(l.deployment_id);
    return Status::Ok();
  });
}

Status SqlStore::AppendDeploymentLogs(const std::vector<DeploymentLogRecord>& lines) {
  if (lines.empty()) return Status::Ok();
  return Write("append deployment logs", [&] {
    AppendLogs(lines);
    return Status::Ok();
  });
}

Result<std::vector<DeploymentLogRecord>> SqlStore::ListDeploymentLog(int64_t id, int64_t after_seq,
                                                                     int64_t limit) {
  return SelectAll(
      "SELECT deployment_id, seq, at, target, level, line FROM deployment_logs "
      "WHERE deployment_id=? AND seq>? ORDER BY seq LIMIT ?",
      ReadLogLine, id, after_seq, limit);
}

Result<ApprovalRecord> SqlStore::AddApproval(const ApprovalRecord& a) {
  return WriteValue("add approval", a, [&](ApprovalRecord& stored) {
    auto decision = FirstRow(
        "SELECT decision FROM approvals WHERE deployment_id=? AND \"user\"=? AND revoked=0",
        ReadText, a.deployment_id, a.user);
    if (decision) {
      if (a.decision == "approved" || *decision == "rejected")
        return AlreadyExists("'" + a.user + "' has already " + *decision + " deployment " +
                             std::to_string(a.deployment_id) +
                             "; one decision per user counts (revoke it first to change it)");
      Exec("UPDATE approvals SET revoked=1 WHERE deployment_id=? AND \"user\"=? AND revoked=0",
           a.deployment_id, a.user);
    }
    stored.id =
        InsertId(InsertSql("approvals", {"deployment_id", "\"user\"", "decision", "comment", "at"}),
                 a.deployment_id, a.user, a.decision, a.comment, a.at);
    return Status::Ok();
  });
}

Result<std::vector<ApprovalRecord>> SqlStore::ListApprovals(int64_t deployment_id) {
  return SelectAll(
      "SELECT id, deployment_id, \"user\", decision, comment, at, revoked FROM approvals "
      "WHERE deployment_id=? ORDER BY id",
      ReadApproval, deployment_id);
}

Result<int64_t> SqlStore::RevokeApprovals(int64_t deployment_id, const std::string& user) {
  return ExecuteCount("revoke approvals",
                      "UPDATE approvals SET revoked=1 WHERE deployment_id=? AND \"user\"=? AND "
                      "revoked=0",
                      deployment_id, user);
}

Result<std::vector<TargetCurrent>> SqlStore::CurrentBuilds(const std::string& app,
                                                           const std::string& stage) {
  return SelectAll(
      "SELECT target, release, build, deployment_id, at, \"by\" FROM target_states "
      "WHERE application=? AND stage=? ORDER BY target",
      ReadTargetCurrent, app, stage);
}

Status SqlStore::PutTargetState(const std::string& app, const std::string& stage,
                                const TargetCurrent& c, const std::string& release_dir) {
  return Write("put target state", [&] {
    PutTargetStateRow(app, stage, c, release_dir);
    return Status::Ok();
  });
}

// Inside a write transaction.
void SqlStore::PutTargetStateRow(const std::string& app, const std::string& stage,
                                 const TargetCurrent& c, const std::string& release_dir) {
  Exec(UpsertSql("target_states", "target",
                 {"target", "application", "stage", "release", "build", "deployment_id", "at",
                  "\"by\"", "release_dir"}),
       c.target, app, stage, c.release, c.build, c.deployment_id, c.at, c.by, release_dir);
}

Result<TargetStateRecord> SqlStore::GetTargetState(const std::string& target) {
  return SelectOne(
      "the state of target '" + target + "'",
      "SELECT application, stage, target, release, build, deployment_id, at, \"by\", release_dir "
      "FROM target_states WHERE target=?",
      ReadTargetState, target);
}

Status SqlStore::ClearTargetState(const std::string& target) {
  return Execute("clear target state", "DELETE FROM target_states WHERE target=?", target);
}

Result<std::vector<StageBuild>> SqlStore::SucceededBuilds(const std::string& app,
                                                          const std::string& stage, int64_t limit) {
  return SelectAll(
      "SELECT release, build, deployment_id, finished_at, requested_by FROM stage_builds "
      "WHERE application=? AND stage=? ORDER BY finished_at DESC, deployment_id DESC LIMIT ?",
      ReadStageBuild, app, stage, limit);
}

Result<DeploymentRecord> SqlStore::LastSuccess(const std::string& app, const std::string& release,
                                               int64_t build, const std::string& stage) {
  return SelectOne("a successful deployment of that build to stage '" + stage + "'",
                   std::string(kDeploymentColumns) +
                       " WHERE id = (SELECT deployment_id FROM stage_builds WHERE "
                       "application=? AND stage=? AND release=? AND build=?)",
                   ReadDeployment, app, stage, release, build);
}

Result<std::string> SqlStore::HoldJson(const std::string& app) {
  auto hold = FirstRow("SELECT hold_json FROM applications WHERE name=?", ReadText, app);
  if (!hold) return NotFound("application '" + app + "' not found");
  return std::move(*hold);
}

namespace {

// The holds as a JSON object ({} when unreadable: holds are advisory), in
// the order their stages were placed.
nlohmann::ordered_json ParseHolds(const std::string& text) {
  auto holds = nlohmann::ordered_json::parse(text, nullptr, false);
  return holds.is_object() ? holds : nlohmann::ordered_json::object();
}

std::string DumpHolds(const nlohmann::ordered_json& holds) {
  return holds.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

// The hold is merged as a JSON merge patch (RFC 7396) under the stage's key.
Status SqlStore::PlaceHold(const std::string& app, const std::string& stage,
                           const std::string& hold_json) {
  return Write("place hold", [&] {
    auto current = HoldJson(app);
    if (!current.ok()) return current.status();
    auto hold = nlohmann::ordered_json::parse(hold_json, nullptr, false);
    if (hold.is_discarded()) return InvalidArgument("hold of stage '" + stage + "' is not JSON");
    nlohmann::ordered_json patch = nlohmann::ordered_json::object();
    patch[stage] = std::move(hold);
    nlohmann::ordered_json holds = ParseHolds(*current);
    holds.merge_patch(patch);
    Exec("UPDATE applications SET hold_json=? WHERE name=?", DumpHolds(holds), app);
    return Status::Ok();
  });
}

Result<bool> SqlStore::ClearHold(const std::string& app, const std::string& stage) {
  return WriteValue("clear hold", false, [&](bool& removed) {
    auto current = HoldJson(app);
    if (!current.ok()) return current.status();
    nlohmann::ordered_json holds = ParseHolds(*current);
    if (holds.erase(stage) == 0) return Status::Ok();
    Exec("UPDATE applications SET hold_json=? WHERE name=?", DumpHolds(holds), app);
    removed = true;
    return Status::Ok();
  });
}

// Inside a write transaction: appends lines, numbering each deployment's
// lines on from its last one.
void SqlStore::AppendLogs(const std::vector<DeploymentLogRecord>& lines) {
  if (lines.empty()) return;
  // The last seq of every deployment in one query (per 256), then the rows
  // in INSERTs of up to 32: a flush of a burst's lines costs a few round
  // trips to the database, not two per line.
  std::map<int64_t, int64_t> next;
  for (const auto& l : lines) next.emplace(l.deployment_id, 0);
  std::vector<int64_t> ids;
  for (const auto& [id, seq] : next) ids.push_back(id);
  for (const auto& some : PaddedChunks(ids, 256)) {
    db_->Run("SELECT deployment_id, MAX(seq) FROM deployment_logs WHERE deployment_id IN (" +
                 Placeholders(1, some.size()) + ") GROUP BY deployment_id",
             BindAll(some), [&](const SqlRow& row) { next[row.Int64(0)] = row.Int64(1); });
  }
  constexpr size_t kRowsPerInsert = 32;
  for (size_t first = 0; first < lines.size(); first += kRowsPerInsert) {
    const size_t rows = std::min(kRowsPerInsert, lines.size() - first);
    std::string sql =
        "INSERT INTO deployment_logs(deployment_id, seq, at, target, line, level) VALUES ";
    std::vector<SqlValue> params;
    params.reserve(rows * 6);
    for (size_t i = 0; i < rows; ++i) {
      const auto& l = lines[first + i];
      sql += (i ? ",(" : "(") + Placeholders(i * 6 + 1, 6) + ")";
      AddParam(params, l.deployment_id);
      AddParam(params, ++next[l.deployment_id]);
      AddParam(params, l.at);
      AddParam(params, l.target);
      AddParam(params, l.text);
      AddParam(params, l.level);
    }
    db_->Run(sql, params, [](const SqlRow&) {});
  }
}

// Inside a write transaction.
Status SqlStore::PutDeploymentContext(int64_t id, const std::string& context_json,
                                      const std::string& kind) {
  if (Exec("UPDATE deployments SET context_json=?, kind=? WHERE id=?", context_json, kind, id) != 1)
    return NotFound("deployment " + std::to_string(id) + " not found");
  return Status::Ok();
}

// Inside a write transaction.
void SqlStore::PutDeploymentTargets(const std::vector<DeploymentTargetRecord>& targets) {
  if (targets.empty()) return;
  const std::string upsert =
      UpsertSql("deployment_targets", "deployment_id, target",
                {"deployment_id", "target", "status", "message", "release_dir", "manifest_sha256",
                 "started_at", "finished_at"});
  for (const auto& t : targets)
    Exec(upsert, t.deployment_id, t.target, t.status, t.message, t.release_dir, t.manifest_sha256,
         ZeroAsNull{t.started_at}, ZeroAsNull{t.finished_at});
}

// Inside a transaction: the deployment's last log line number (0: none).
int64_t SqlStore::LastLogSeq(int64_t deployment_id) {
  return FirstRow("SELECT COALESCE(MAX(seq), 0) FROM deployment_logs WHERE deployment_id=?",
                  ReadInt64, deployment_id)
      .value_or(0);
}

}  // namespace reprise
