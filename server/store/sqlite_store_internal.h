// SqliteStore: the Store on one SQLite file through SQLiteCpp, declared for
// the files that implement it (sqlite_*.cpp, one per aggregate); not used
// outside server/store/. The only SQLiteCpp user: its exceptions are caught
// here and become Status values.
//
// Thread-safety: every public method is safe from any thread; mu_ (recursive,
// so a call inside Atomically() runs on the thread holding it) serialises
// them. Write() is one BEGIN IMMEDIATE transaction, or a SAVEPOINT of the
// enclosing one when nested (Atomically).
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>
#include <SQLiteCpp/VariadicBind.h>
#include <sqlite3.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "server/store/store.h"

namespace reprise {

inline int64_t ClampLimit(const Page& p) {
  return p.limit < 1 ? 1 : (p.limit > 1000 ? 1000 : p.limit);
}
inline int64_t ClampOffset(const Page& p) { return p.offset < 0 ? 0 : p.offset; }

inline Status FromException(const std::exception& e, std::string_view what) {
  return Internal(std::string("store: ") + std::string(what) + ": " + e.what());
}

inline bool IsConstraint(const SQLite::Exception& e) {
  return (e.getErrorCode() & 0xff) == SQLITE_CONSTRAINT;
}

// "?,?,?": one placeholder per value of an IN (...) list.
inline std::string Placeholders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ",?" : "?";
  return out;
}

// Binds the next parameter(s) from `index` on: a flag as 0/1, a list each
// of its values.
template <typename T>
void BindNext(SQLite::Statement& q, int& index, const T& value) {
  q.bind(index++, value);
}
inline void BindNext(SQLite::Statement& q, int& index, bool flag) { q.bind(index++, flag ? 1 : 0); }
inline void BindNext(SQLite::Statement& q, int& index, const std::vector<std::string>& values) {
  for (const auto& v : values) q.bind(index++, v);
}
// Binds `args` to the parameters in order, from the first.
template <typename... Args>
void BindAll(SQLite::Statement& q, const Args&... args) {
  [[maybe_unused]] int index = 1;
  (BindNext(q, index, args), ...);
}

// One column of the current row into a field of the same kind: text,
// integer, or a 0/1 flag.
inline void ReadColumn(const SQLite::Column& c, std::string& field) { field = c.getString(); }
inline void ReadColumn(const SQLite::Column& c, int64_t& field) { field = c.getInt64(); }
inline void ReadColumn(const SQLite::Column& c, bool& field) { field = c.getInt() != 0; }

// The current row's columns, in order from the first, into `fields`.
template <typename... Fields>
void ReadColumns(SQLite::Statement& q, Fields&... fields) {
  int index = 0;
  (ReadColumn(q.getColumn(index++), fields), ...);
}

// The first column of a row as an integer (an aggregate such as MIN).
inline int64_t ReadInt64(SQLite::Statement& q) { return q.getColumn(0).getInt64(); }

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

  int64_t SchemaVersion() override;
  Status Ping() override;
  Result<StoreStats> Stats(const std::vector<double>& bounds_seconds) override;
  // ---- environments
  Status PutEnvironment(const EnvironmentRecord& env) override;
  Result<EnvironmentRecord> GetEnvironment(const std::string& name) override;
  Result<std::vector<EnvironmentRecord>> ListEnvironments(const Page& page) override;
  // ---- global variables
  Status PutGlobalVariables(const GlobalVariablesRecord& globals) override;
  Result<GlobalVariablesRecord> GetGlobalVariables() override;
  // ---- targets
  Status PutTarget(const TargetRecord& t) override;
  Result<TargetRecord> GetTarget(const std::string& name) override;
  Result<std::vector<TargetRecord>> ListTargets(const Page& page) override;
  // ---- agents
  Status PutAgent(const AgentRecord& a) override;
  Result<AgentRecord> GetAgent(const std::string& name) override;
  Result<std::vector<AgentRecord>> ListAgents(const Page& page) override;
  Status CreateEnrollToken(const EnrollTokenRecord& t) override;
  Result<EnrollTokenRecord> FindEnrollToken(const std::string& token_hash) override;
  Status MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) override;
  // ---- applications
  Result<ApplicationRecord> PutApplication(const ApplicationRecord& app) override;
  Result<ApplicationRecord> GetApplication(const std::string& name) override;
  Result<std::vector<ApplicationRecord>> ListApplications(const Page& page) override;
  // ---- releases
  Status CreateRelease(const ReleaseRecord& r) override;
  Result<ReleaseRecord> GetRelease(const std::string& app, const std::string& number) override;
  Result<std::vector<ReleaseRecord>> ListReleases(const std::string& app,
                                                  const Page& page) override;
  // ---- builds
  Result<BuildRecord> CreateBuild(const BuildRecord& b) override;
  Result<BuildRecord> GetBuild(const std::string& app, const std::string& release,
                               int64_t number) override;
  Result<std::vector<BuildRecord>> ListBuilds(const std::string& app, const std::string& release,
                                              const Page& page) override;
  Result<bool> SealBuild(const std::string& app, const std::string& release, int64_t number,
                         int64_t at, const std::string& by) override;
  // ---- artifacts
  Result<bool> AddArtifact(const ArtifactRecord& a) override;
  Result<bool> RestoreArtifactBlob(const std::string& app, const std::string& release,
                                   int64_t build, const std::string& name,
                                   const std::string& sha256) override;
  Result<bool> MarkArtifactBlobsRemoved(const std::string& app, const std::string& release,
                                        int64_t build, int64_t at) override;
  Result<ArtifactRecord> GetArtifact(const std::string& app, const std::string& release,
                                     int64_t build, const std::string& name) override;
  Result<std::vector<ArtifactRecord>> ListArtifacts(const std::string& app,
                                                    const std::string& release,
                                                    int64_t build) override;
  Result<std::vector<std::string>> ReferencedBlobs() override;
  Result<std::vector<ArtifactRecord>> FindArtifactsBySha256(const std::string& sha256) override;
  // ---- retention helpers
  Status DeleteArtifacts(const std::string& app, const std::string& release,
                         int64_t build) override;
  Result<std::vector<BuildRecord>> ListAllBuilds() override;
  // ---- deployments
  Result<DeploymentRecord> CreateDeployment(const DeploymentRecord& d) override;
  Result<DeploymentRecord> GetDeployment(int64_t id) override;
  Result<std::vector<DeploymentRecord>> ListDeployments(const DeploymentFilter& f,
                                                        const Page& page) override;
  Result<bool> TransitionDeployment(int64_t id, const std::vector<std::string>& from,
                                    const std::string& to, int64_t started_at, int64_t finished_at,
                                    const std::string& error) override;
  Result<std::vector<DeploymentRecord>> DueScheduled(int64_t until, int64_t limit) override;
  Result<int64_t> NextScheduledAt() override;
  Result<std::vector<int64_t>> FireScheduled(const std::vector<ScheduledFiring>& firings,
                                             int64_t due_by, int64_t now) override;
  Result<std::vector<int64_t>> TransitionDeployments(const std::vector<int64_t>& ids,
                                                     const std::vector<std::string>& from,
                                                     const std::string& to) override;
  Result<bool> RescheduleDeployment(int64_t id, int64_t scheduled_at) override;
  Status SetDeploymentContext(int64_t id, const std::string& context_json,
                              const std::string& kind) override;
  Status PutDeploymentTarget(const DeploymentTargetRecord& t) override;
  Status StartDeployment(int64_t id, const std::string& context_json, const std::string& kind,
                         const std::vector<DeploymentTargetRecord>& targets) override;
  Result<bool> FinishDeployment(int64_t id, const std::vector<std::string>& from,
                                const std::string& to, int64_t finished_at,
                                const std::string& error,
                                const std::vector<DeploymentTargetRecord>& targets,
                                const std::vector<TargetStateRecord>& target_states,
                                const std::vector<DeploymentLogRecord>& logs,
                                const std::vector<DeploymentLogRecord>& final_logs) override;
  Result<std::vector<DeploymentTargetRecord>> ListDeploymentTargets(int64_t id) override;
  Result<int64_t> AppendDeploymentLog(const DeploymentLogRecord& l) override;
  Status AppendDeploymentLogs(const std::vector<DeploymentLogRecord>& lines) override;
  Result<std::vector<DeploymentLogRecord>> ListDeploymentLog(int64_t id, int64_t after_seq,
                                                             int64_t limit) override;
  Result<ApprovalRecord> AddApproval(const ApprovalRecord& a) override;
  Result<std::vector<ApprovalRecord>> ListApprovals(int64_t deployment_id) override;
  Result<int64_t> RevokeApprovals(int64_t deployment_id, const std::string& user) override;
  Result<std::vector<TargetCurrent>> CurrentBuilds(const std::string& app,
                                                   const std::string& stage) override;
  Status PutTargetState(const std::string& app, const std::string& stage, const TargetCurrent& c,
                        const std::string& release_dir) override;
  // Inside a write transaction.
  void PutTargetStateRow(const std::string& app, const std::string& stage, const TargetCurrent& c,
                         const std::string& release_dir);
  Result<TargetStateRecord> GetTargetState(const std::string& target) override;
  Status ClearTargetState(const std::string& target) override;
  Result<std::vector<StageBuild>> SucceededBuilds(const std::string& app, const std::string& stage,
                                                  int64_t limit) override;
  Result<DeploymentRecord> LastSuccess(const std::string& app, const std::string& release,
                                       int64_t build, const std::string& stage) override;
  // SQLite's JSON functions edit the one stage's key inside the transaction
  // (json_object quotes any stage name; a merge patch with null removes it).
  Status PlaceHold(const std::string& app, const std::string& stage,
                   const std::string& hold_json) override;
  Result<bool> ClearHold(const std::string& app, const std::string& stage) override;
  // ---- leases (store_leases.cpp)
  Result<std::vector<int64_t>> ClaimDeployments(const std::vector<int64_t>& ids,
                                                const std::string& owner, int64_t now,
                                                int64_t lease_until) override;
  Result<std::vector<int64_t>> RenewDeploymentLeases(const std::vector<int64_t>& ids,
                                                     const std::string& owner,
                                                     int64_t lease_until) override;
  Status ReleaseDeploymentLeases(const std::vector<int64_t>& ids,
                                 const std::string& owner) override;
  Result<std::vector<OrphanedDeployment>> InterruptOrphaned(
      const std::string& owner, int64_t now, const std::vector<int64_t>& running_here,
      const std::string& error) override;
  Result<bool> TryTakeLease(const std::string& name, const std::string& owner, int64_t now,
                            int64_t until) override;
  Result<std::vector<LeaseRecord>> LiveLeases(const std::string& prefix, int64_t now) override;
  Result<LeaseRecord> GetDeploymentLease(int64_t id) override;
  // sqlite_irreversible.cpp
  Status AddIrreversibleStep(const IrreversibleStepRecord& step) override;
  Result<std::vector<IrreversibleStepRecord>> ListIrreversibleSteps(const std::string& app,
                                                                    const std::string& stage,
                                                                    int64_t after) override;
  // ---- users and tokens
  Status CreateUser(const UserRecord& u) override;
  Result<UserRecord> GetUser(const std::string& name) override;
  Result<std::vector<UserRecord>> ListUsers(const Page& page) override;
  Status UpdateUser(const UserRecord& u) override;
  Result<TokenRecord> CreateToken(const TokenRecord& t) override;
  Result<TokenRecord> FindTokenByHash(const std::string& token_hash) override;
  Result<std::vector<TokenRecord>> ListTokens(const std::string& user) override;
  Result<bool> DeleteToken(const std::string& user, int64_t id) override;
  Status TouchToken(int64_t id, int64_t at, int64_t min_interval_ms) override;
  // ---- grants
  Result<bool> PutGrant(const GrantRecord& g) override;
  Result<bool> DeleteGrant(const std::string& environment, const std::string& user,
                           const std::string& permission) override;
  Result<std::vector<GrantRecord>> ListGrants(const std::string& environment) override;
  Result<bool> HasGrant(const std::string& environment, const std::string& user,
                        const std::string& permission) override;
  // ---- audit
  Status AppendAudit(const AuditRecord& e) override;
  Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& f, const Page& page) override;
  // ---- webhooks (sqlite_webhooks.cpp)
  Status PutWebhook(const WebhookRecord& w) override;
  Result<WebhookRecord> GetWebhook(const std::string& name) override;
  Result<std::vector<WebhookRecord>> ListWebhooks(const Page& page) override;
  Result<bool> DeleteWebhook(const std::string& name) override;
  Result<WebhookDeliveryRecord> AddWebhookDelivery(const WebhookDeliveryRecord& d) override;
  Result<WebhookDeliveryRecord> GetWebhookDelivery(int64_t id) override;
  Result<std::vector<WebhookDeliveryRecord>> ListWebhookDeliveries(const std::string& webhook,
                                                                   const Page& page) override;
  Result<std::vector<WebhookDeliveryRecord>> DueWebhookDeliveries(int64_t now,
                                                                  int64_t limit) override;
  Result<int64_t> NextWebhookDeliveryAt() override;
  Result<bool> RecordWebhookAttempt(int64_t id, const WebhookAttempt& attempt) override;
  // ---- rollback records (sqlite_rollback_records.cpp)
  Result<RollbackRecord> CreateRollbackRecord(
      const RollbackRecord& record, const std::vector<RollbackRecordTarget>& targets,
      const std::vector<RollbackComponentRecord>& components) override;
  Result<RollbackRecord> GetRollbackRecord(int64_t id) override;
  Result<std::vector<RollbackRecord>> ListRollbackRecords(const RollbackRecordFilter& filter,
                                                          const Page& page) override;
  Result<RollbackRecord> FindRollbackRecordByExecution(int64_t deployment_id) override;
  Result<std::vector<RollbackRecordTarget>> ListRollbackRecordTargets(int64_t id) override;
  Result<std::vector<RollbackComponentRecord>> ListRollbackComponents(int64_t id) override;
  Result<bool> SetRollbackSelection(int64_t id,
                                    const std::vector<RollbackComponentRecord>& components,
                                    const std::vector<RollbackRecordTarget>& composed) override;
  Result<bool> TransitionRollbackRecord(int64_t id, const std::vector<std::string>& from,
                                        const std::string& to,
                                        const RollbackRecordChange& change) override;
  Status AddRollbackApproval(int64_t id, const RollbackApprovalRecord& approval) override;
  Result<std::vector<RollbackApprovalRecord>> ListRollbackApprovals(int64_t id) override;
  Status SetRollbackConnection(int64_t id, const std::string& json, bool ok, int64_t at) override;

 private:
  static constexpr const char* kArtifactColumns =
      "SELECT application, release, build, name, sha256, size, file_count, manifest_json, "
      "created_at, created_by, blob_removed_at FROM artifacts";

  static constexpr const char* kBuildColumns =
      "SELECT application, release, number, variables_json, created_at, created_by, sealed_at, "
      "sealed_by, COALESCE((SELECT MIN(d.id) FROM deployments d WHERE d.application="
      "builds.application AND d.release=builds.release AND d.build=builds.number), 0), "
      "notes, links_json FROM builds";

  static constexpr const char* kDeploymentColumns =
      "SELECT id, application, release, build, stage, kind, status, COALESCE(scheduled_at, 0), "
      "expires_after_ms, forced, context_choice, variables_json, comment, requested_by, "
      "created_at, COALESCE(started_at, 0), COALESCE(finished_at, 0), COALESCE(context_json, ''), "
      "error, targets_csv, automatic FROM deployments";

  static DeploymentRecord ReadDeployment(SQLite::Statement& q) {
    DeploymentRecord d;
    ReadColumns(q, d.id, d.application, d.release, d.build, d.stage, d.kind, d.status,
                d.scheduled_at, d.expires_after_ms, d.forced, d.context_choice, d.variables_json,
                d.comment, d.requested_by, d.created_at, d.started_at, d.finished_at,
                d.context_json, d.error, d.targets_csv, d.automatic);
    return d;
  }

  static void BindPage(SQLite::Statement& q, int index, const Page& page) {
    q.bind(index, ClampLimit(page));
    q.bind(index + 1, ClampOffset(page));
  }

  static EnvironmentRecord ReadEnvironment(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64()};
  }

  static TargetRecord ReadTarget(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64()};
  }

  static AgentRecord ReadAgent(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getInt64(),  q.getColumn(7).getString()};
  }

  static ApplicationRecord ReadApplication(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getString(),
            q.getColumn(3).getString(), q.getColumn(4).getInt64(), q.getColumn(5).getString(),
            q.getColumn(6).getString()};
  }

  static ReleaseRecord ReadRelease(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getString(), q.getColumn(7).getString(), q.getColumn(8).getString()};
  }

  static BuildRecord ReadBuild(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getInt64(),  q.getColumn(5).getString(),
            q.getColumn(6).getInt64(),  q.getColumn(7).getString(), q.getColumn(8).getInt64(),
            q.getColumn(9).getString(), q.getColumn(10).getString()};
  }

  static ArtifactRecord ReadArtifact(SQLite::Statement& q) {
    return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(),
            q.getColumn(3).getString(), q.getColumn(4).getString(), q.getColumn(5).getInt64(),
            q.getColumn(6).getInt64(),  q.getColumn(7).getString(), q.getColumn(8).getInt64(),
            q.getColumn(9).getString(), q.getColumn(10).getInt64()};
  }

  static UserRecord ReadUser(SQLite::Statement& q) {
    return {q.getColumn(0).getString(),
            ParseRole(q.getColumn(1).getString()).value_or(Role::kViewer),
            q.getColumn(2).getString(), q.getColumn(3).getInt64(), q.getColumn(4).getInt() != 0};
  }

  // Inside a write transaction: appends lines, numbering each deployment's
  // lines on from its last one.
  void AppendLogs(const std::vector<DeploymentLogRecord>& lines);
  // Inside a write transaction.
  void PutDeploymentTargets(const std::vector<DeploymentTargetRecord>& targets);
  // Inside a write transaction: NotFound when there is no deployment `id`.
  Status PutDeploymentContext(int64_t id, const std::string& context_json, const std::string& kind);
  Status Atomically(const std::function<Status()>& body) override;
  // Runs `body` in one IMMEDIATE transaction; commits when it returns OK.
  // Inside another Write (Atomically) on this thread it is a savepoint of
  // that transaction instead: undone alone when it fails.
  Status Write(std::string_view what, const std::function<Status()>& body);
  // Inside a write transaction: `sql` with `args` bound in order (BindAll).
  // Returns how many rows it changed.
  template <typename... Args>
  int Exec(const std::string& sql, const Args&... args) {
    SQLite::Statement q(*db_, sql);
    BindAll(q, args...);
    return q.exec();
  }
  // Inside a transaction: whether `sql` with `args` bound in order returns a
  // row.
  template <typename... Args>
  bool Exists(const std::string& sql, const Args&... args) {
    SQLite::Statement q(*db_, sql);
    BindAll(q, args...);
    return q.executeStep();
  }
  // The same as its own Write.
  template <typename... Args>
  Result<int64_t> ExecuteCount(std::string_view what, const std::string& sql, const Args&... args) {
    return WriteValue(what, int64_t{0}, [&](int64_t& changed) {
      changed = Exec(sql, args...);
      return Status::Ok();
    });
  }
  template <typename... Args>
  Status Execute(std::string_view what, const std::string& sql, const Args&... args) {
    return ExecuteCount(what, sql, args...).status();
  }
  // The same, saying whether it changed any row.
  template <typename... Args>
  Result<bool> Changed(std::string_view what, const std::string& sql, const Args&... args) {
    auto changed = ExecuteCount(what, sql, args...);
    if (!changed.ok()) return changed.status();
    return *changed > 0;
  }
  // A Write whose body fills a value: `body(value)`, with value starting as
  // `initial`; the value once the transaction commits.
  template <typename T, typename Body>
  Result<T> WriteValue(std::string_view what, T initial, Body body) {
    Status st = Write(what, [&] { return body(initial); });
    if (!st.ok()) return st;
    return initial;
  }
  // Runs `body` with write_depth_ raised (a Write inside it nests).
  Status RunBody(const std::function<Status()>& body);
  Status Read(std::string_view what, const std::function<void()>& body);
  template <typename T, typename Bind, typename Row>
  Result<T> One(const std::string& sql, Bind bind, Row row, const std::string& what) {
    std::optional<T> out;
    Status st = Read(what, [&] {
      SQLite::Statement q(*db_, sql);
      bind(q);
      if (q.executeStep()) out = row(q);
    });
    if (!st.ok()) return st;
    if (!out) return NotFound(what + " not found");
    return std::move(*out);
  }

  template <typename T, typename Bind, typename Row>
  Result<std::vector<T>> Many(const std::string& sql, Bind bind, Row row) {
    std::vector<T> out;
    Status st = Read("list", [&] {
      SQLite::Statement q(*db_, sql);
      bind(q);
      while (q.executeStep()) out.push_back(row(q));
    });
    if (!st.ok()) return st;
    return out;
  }

  // Many and One with `args` bound in order (BindAll); the row type is what
  // `read` returns.
  template <typename Reader, typename... Args>
  auto SelectAll(const std::string& sql, Reader read, const Args&... args) {
    using T = std::invoke_result_t<Reader, SQLite::Statement&>;
    return Many<T>(
        sql, [&](SQLite::Statement& q) { BindAll(q, args...); }, read);
  }
  template <typename Reader, typename... Args>
  auto SelectOne(const std::string& what, const std::string& sql, Reader read,
                 const Args&... args) {
    using T = std::invoke_result_t<Reader, SQLite::Statement&>;
    return One<T>(
        sql, [&](SQLite::Statement& q) { BindAll(q, args...); }, read, what);
  }

  // Tables keyed by name (environments, targets, agents, applications,
  // users): `select` is "SELECT <the columns read> FROM <table>". The row
  // named `name`; NotFound names it as "<noun> '<name>'".
  template <typename T>
  Result<T> GetByName(const char* select, T (*read)(SQLite::Statement&), std::string_view noun,
                      const std::string& name) {
    return SelectOne(std::string(noun) + " '" + name + "'", std::string(select) + " WHERE name=?",
                     read, name);
  }
  // A page of such a table's rows in name order.
  template <typename T>
  Result<std::vector<T>> ListByName(const char* select, T (*read)(SQLite::Statement&),
                                    const Page& page) {
    return SelectAll(std::string(select) + " ORDER BY name LIMIT ? OFFSET ?", read,
                     ClampLimit(page), ClampOffset(page));
  }

  // Recursive: a call inside Atomically() runs on the thread holding it.
  std::recursive_mutex mu_;

  int write_depth_ = 0;  // guarded by mu_
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace reprise
