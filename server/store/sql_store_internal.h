// SqlStore: the Store written once over a SqlDb (SQLite or PostgreSQL),
// declared for the files that implement it (store_*.cpp, one per aggregate);
// not used outside server/store/. Its queries are in the common SQL that
// sql_db.h describes; a SqlError is caught at the transaction boundary
// (Write/Read) and becomes a Status.
//
// Thread-safety: every public method is safe from any thread; mu_ (recursive,
// so a call inside Atomically() runs on the thread holding it) serialises
// them and so the one connection. Write() is one write transaction
// (BeginWrite: it excludes every other writer), or a savepoint of the
// enclosing one when nested (Atomically).
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "server/store/sql_db.h"
#include "server/store/store.h"

namespace reprise {

inline int64_t ClampLimit(const Page& p) {
  return p.limit < 1 ? 1 : (p.limit > 1000 ? 1000 : p.limit);
}
inline int64_t ClampOffset(const Page& p) { return p.offset < 0 ? 0 : p.offset; }

inline Status FromException(const std::exception& e, std::string_view what) {
  return Internal(std::string("store: ") + std::string(what) + ": " + e.what());
}

// "?3,?4,?5": numbered placeholders for the `n` values of an IN (...) list
// bound from parameter `first` on (numbered, so a query never mixes them
// with plain `?`).
std::string Placeholders(size_t first, size_t n);

// "INSERT INTO <table>(<columns>) VALUES(?,...)".
std::string InsertSql(std::string_view table, std::initializer_list<std::string_view> columns);
// The same, "ON CONFLICT(<key>) DO UPDATE SET c=excluded.c, ..." for every
// column but the key's and the `kept` ones (written on insert only).
std::string UpsertSql(std::string_view table, std::string_view key,
                      std::initializer_list<std::string_view> columns,
                      std::initializer_list<std::string_view> kept = {});

// ---- parameters: BindAll(args...) is the parameter list of a query.

// An integer bound as NULL when it is 0 (columns where NULL means "not yet").
struct ZeroAsNull {
  int64_t value = 0;
};

inline void AddParam(std::vector<SqlValue>& out, bool flag) {
  out.emplace_back(int64_t{flag ? 1 : 0});
}
template <std::integral T>
requires(!std::same_as<T, bool>) void AddParam(std::vector<SqlValue>& out, T value) {
  out.emplace_back(static_cast<int64_t>(value));
}
inline void AddParam(std::vector<SqlValue>& out, const std::string& text) {
  out.emplace_back(text);
}
inline void AddParam(std::vector<SqlValue>& out, const char* text) {
  out.emplace_back(std::string(text));
}
inline void AddParam(std::vector<SqlValue>& out, ZeroAsNull v) {
  if (v.value == 0)
    out.emplace_back(std::monostate{});
  else
    out.emplace_back(v.value);
}
// A list binds each of its values (an IN list).
inline void AddParam(std::vector<SqlValue>& out, const std::vector<std::string>& values) {
  for (const auto& v : values) out.emplace_back(v);
}
inline void AddParam(std::vector<SqlValue>& out, const std::vector<int64_t>& values) {
  for (int64_t v : values) out.emplace_back(v);
}

// The parameters `args` in order: a flag as 0/1, a list as its values.
template <typename... Args>
std::vector<SqlValue> BindAll(const Args&... args) {
  std::vector<SqlValue> out;
  out.reserve(sizeof...(args));
  (AddParam(out, args), ...);
  return out;
}

// ---- rows: one column into a field of its kind.

inline void ReadColumn(const SqlRow& row, int column, std::string& field) {
  field = row.Text(column);
}
inline void ReadColumn(const SqlRow& row, int column, int64_t& field) { field = row.Int64(column); }
inline void ReadColumn(const SqlRow& row, int column, bool& field) {
  field = row.Int64(column) != 0;
}
// A role by its name (store_users.cpp); an unknown name reads as viewer.
void ReadColumn(const SqlRow& row, int column, Role& field);
// A list of strings kept as a JSON array (store_webhooks.cpp).
void ReadColumn(const SqlRow& row, int column, std::vector<std::string>& field);

// The row's columns, in order from the first, into `fields`.
template <typename... Fields>
void ReadColumns(const SqlRow& row, Fields&... fields) {
  int column = 0;
  (ReadColumn(row, column++, fields), ...);
}

template <typename Member>
struct ClassOf;
template <typename Class, typename Field>
struct ClassOf<Field Class::*> {
  using type = Class;
};

// A record whose members `First, Rest...` are the row's columns in order:
// `ReadFields<&Rec::a, &Rec::b>` reads "SELECT a, b ...".
template <auto First, auto... Rest>
typename ClassOf<decltype(First)>::type ReadFields(const SqlRow& row) {
  typename ClassOf<decltype(First)>::type record{};
  ReadColumns(row, record.*First, record.*Rest...);
  return record;
}

// The first column as an integer (an aggregate such as MIN) or as text.
inline int64_t ReadInt64(const SqlRow& row) { return row.Int64(0); }
inline std::string ReadText(const SqlRow& row) { return row.Text(0); }

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<SqlDb> db) : db_(std::move(db)) {}

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
  // The application's holds are edited as JSON inside the write transaction,
  // so a concurrent hold on another stage is never lost.
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
      const std::string& error, OrphanScope scope) override;
  Result<bool> TryTakeLease(const std::string& name, const std::string& owner, int64_t now,
                            int64_t until) override;
  Result<std::vector<LeaseRecord>> LiveLeases(const std::string& prefix, int64_t now) override;
  Result<LeaseRecord> GetDeploymentLease(int64_t id) override;
  // store_irreversible.cpp
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
  // ---- webhooks (store_webhooks.cpp)
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
  // ---- rollback records (store_rollback_records.cpp)
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
  // Inside a write transaction: appends lines, numbering each deployment's
  // lines on from its last one.
  void AppendLogs(const std::vector<DeploymentLogRecord>& lines);
  // Inside a transaction: the deployment's last log line number (0: none).
  int64_t LastLogSeq(int64_t deployment_id);
  // Inside a write transaction.
  void PutDeploymentTargets(const std::vector<DeploymentTargetRecord>& targets);
  // Inside a write transaction: NotFound when there is no deployment `id`.
  Status PutDeploymentContext(int64_t id, const std::string& context_json, const std::string& kind);
  // Inside a write transaction: the application's hold_json, or NotFound.
  Result<std::string> HoldJson(const std::string& app);
  // Inside a write transaction: the rollback record's status, or NotFound.
  Result<std::string> RecordStatus(int64_t id);
  Status Atomically(const std::function<Status()>& body) override;
  // Runs `body` in one write transaction; commits when it returns OK.
  // Inside another Write (Atomically) on this thread it is a savepoint of
  // that transaction instead: undone alone when it fails.
  Status Write(std::string_view what, const std::function<Status()>& body);
  // Runs `body` with write_depth_ raised (a Write inside it nests).
  Status RunBody(const std::function<Status()>& body);
  Status Read(std::string_view what, const std::function<void()>& body);

  // ---- inside a transaction (Write or Read); SqlError propagates.

  // `sql` with `args` bound in order (BindAll); how many rows it changed.
  template <typename... Args>
  int64_t Exec(const std::string& sql, const Args&... args) {
    return db_->Run(sql, BindAll(args...), [](const SqlRow&) {});
  }
  // The rows of `sql` with `args` bound, each as `read` makes it.
  template <typename Reader, typename... Args>
  auto AllRows(const std::string& sql, Reader read, const Args&... args) {
    std::vector<std::invoke_result_t<Reader, const SqlRow&>> out;
    db_->Run(sql, BindAll(args...), [&](const SqlRow& row) { out.push_back(read(row)); });
    return out;
  }
  // The first row of `sql` with `args` bound, as `read` makes it; nullopt
  // when there is none.
  template <typename Reader, typename... Args>
  auto FirstRow(const std::string& sql, Reader read, const Args&... args) {
    std::optional<std::invoke_result_t<Reader, const SqlRow&>> out;
    db_->Run(sql, BindAll(args...), [&](const SqlRow& row) {
      if (!out) out = read(row);
    });
    return out;
  }
  // Whether `sql` with `args` bound returns a row.
  template <typename... Args>
  bool Exists(const std::string& sql, const Args&... args) {
    return FirstRow(
               sql, [](const SqlRow&) { return true; }, args...)
        .has_value();
  }
  // An INSERT `sql` with `args` bound; the id of the row it inserted.
  template <typename... Args>
  int64_t InsertId(const std::string& sql, const Args&... args) {
    return FirstRow(sql + " RETURNING id", ReadInt64, args...).value_or(0);
  }

  // ---- each its own transaction.

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
  // Inserts a row (`insert` with `args` bound) unless its key is taken;
  // AlreadyExists("<taken> already exists") then.
  template <typename... Args>
  Status InsertNew(std::string_view what, const std::string& insert, const std::string& taken,
                   const Args&... args) {
    auto added = Changed(what, insert + " ON CONFLICT DO NOTHING", args...);
    if (!added.ok()) return added.status();
    if (!*added) return AlreadyExists(taken + " already exists");
    return Status::Ok();
  }
  // A Write whose body fills a value: `body(value)`, with value starting as
  // `initial`; the value once the transaction commits.
  template <typename T, typename Body>
  Result<T> WriteValue(std::string_view what, T initial, Body body) {
    Status st = Write(what, [&] { return body(initial); });
    if (!st.ok()) return st;
    return initial;
  }
  // AllRows in a Read.
  template <typename Reader, typename... Args>
  auto SelectAll(const std::string& sql, Reader read, const Args&... args)
      -> Result<std::vector<std::invoke_result_t<Reader, const SqlRow&>>> {
    std::vector<std::invoke_result_t<Reader, const SqlRow&>> out;
    Status st = Read("list", [&] { out = AllRows(sql, read, args...); });
    if (!st.ok()) return st;
    return out;
  }
  // FirstRow in a Read; NotFound "<what> not found" when there is none.
  template <typename Reader, typename... Args>
  auto SelectOne(const std::string& what, const std::string& sql, Reader read, const Args&... args)
      -> Result<std::invoke_result_t<Reader, const SqlRow&>> {
    std::optional<std::invoke_result_t<Reader, const SqlRow&>> out;
    Status st = Read(what, [&] { out = FirstRow(sql, read, args...); });
    if (!st.ok()) return st;
    if (!out) return NotFound(what + " not found");
    return std::move(*out);
  }

  // Tables keyed by name (environments, targets, agents, applications,
  // users, webhooks): `select` is "SELECT <the columns read> FROM <table>".
  // The row named `name`; NotFound names it as "<noun> '<name>'".
  template <typename Reader>
  auto GetByName(const char* select, Reader read, std::string_view noun, const std::string& name) {
    return SelectOne(std::string(noun) + " '" + name + "'", std::string(select) + " WHERE name=?",
                     read, name);
  }
  // A page of such a table's rows in name order.
  template <typename Reader>
  auto ListByName(const char* select, Reader read, const Page& page) {
    return SelectAll(std::string(select) + " ORDER BY name LIMIT ? OFFSET ?", read,
                     ClampLimit(page), ClampOffset(page));
  }

  // Queues (deployments scheduled for later, webhook deliveries): the rows
  // of `select` in `status` whose `at_column` is due by `until`, earliest
  // first. The status is a literal so a partial index on it serves.
  template <typename Reader>
  auto DueRows(const char* select, Reader read, std::string_view status, std::string_view at_column,
               int64_t until, int64_t limit) {
    std::string at(at_column);
    return SelectAll(std::string(select) + " WHERE status='" + std::string(status) + "' AND " + at +
                         "<=? ORDER BY " + at + ", id LIMIT ?",
                     read, until, limit);
  }
  // The earliest `at_column` of the rows of `table` in `status`; 0 when none.
  Result<int64_t> NextDueAt(std::string_view table, std::string_view status,
                            std::string_view at_column);

  // Recursive: a call inside Atomically() runs on the thread holding it.
  std::recursive_mutex mu_;

  int write_depth_ = 0;  // guarded by mu_
  std::unique_ptr<SqlDb> db_;
};

}  // namespace reprise
