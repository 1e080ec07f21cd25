// The Store's lease methods (deployment_store.h): each one write (or read)
// transaction around the common-SQL queries of sql_leases.cpp.
#include "server/store/sql_leases.h"
#include "server/store/sqlite_store_internal.h"

namespace reprise {
namespace {

// SqlDb over the store's SQLite connection, for queries written in the
// common SQL; transactions stay the store's own (Write, Read).
class SqliteConnection final : public SqlDb {
 public:
  explicit SqliteConnection(SQLite::Database& db) : db_(db) {}
  SqlDialect Dialect() const override { return SqlDialect::kSqlite; }
  int64_t Run(std::string_view sql, const std::vector<SqlValue>& params,
              const std::function<void(const SqlRow&)>& on_row) override {
    SQLite::Statement q(db_, std::string(sql));
    for (size_t i = 0; i < params.size(); ++i) {
      int index = static_cast<int>(i) + 1;
      if (auto* n = std::get_if<int64_t>(&params[i]))
        q.bind(index, *n);
      else if (auto* t = std::get_if<std::string>(&params[i]))
        q.bind(index, *t);
      else
        q.bind(index);
    }
    Row row(q);
    while (q.executeStep())
      if (on_row) on_row(row);
    return db_.getChanges();
  }
  void Script(std::string_view sql) override { db_.exec(std::string(sql)); }
  void BeginWrite() override { db_.exec("BEGIN IMMEDIATE"); }
  void Commit() override { db_.exec("COMMIT"); }
  void Rollback() override { db_.exec("ROLLBACK"); }
  void Savepoint(std::string_view name) override { db_.exec("SAVEPOINT " + std::string(name)); }
  void ReleaseSavepoint(std::string_view name) override {
    db_.exec("RELEASE " + std::string(name));
  }
  void RollbackToSavepoint(std::string_view name) override {
    db_.exec("ROLLBACK TO " + std::string(name));
  }

 private:
  class Row final : public SqlRow {
   public:
    explicit Row(SQLite::Statement& q) : q_(q) {}
    bool IsNull(int column) const override { return q_.getColumn(column).isNull(); }
    int64_t Int64(int column) const override { return q_.getColumn(column).getInt64(); }
    std::string Text(int column) const override { return q_.getColumn(column).getString(); }

   private:
    SQLite::Statement& q_;
  };
  SQLite::Database& db_;
};

}  // namespace

Result<std::vector<int64_t>> SqliteStore::ClaimDeployments(const std::vector<int64_t>& ids,
                                                           const std::string& owner, int64_t now,
                                                           int64_t lease_until) {
  if (ids.empty()) return std::vector<int64_t>{};
  return WriteValue("claim deployments", std::vector<int64_t>{}, [&](std::vector<int64_t>& out) {
    SqliteConnection db(*db_);
    out = sql_leases::Claim(db, ids, owner, now, lease_until);
    return Status::Ok();
  });
}

Result<std::vector<int64_t>> SqliteStore::RenewDeploymentLeases(const std::vector<int64_t>& ids,
                                                                const std::string& owner,
                                                                int64_t lease_until) {
  if (ids.empty()) return std::vector<int64_t>{};
  return WriteValue("renew deployment leases", std::vector<int64_t>{},
                    [&](std::vector<int64_t>& out) {
                      SqliteConnection db(*db_);
                      out = sql_leases::Renew(db, ids, owner, lease_until);
                      return Status::Ok();
                    });
}

Status SqliteStore::ReleaseDeploymentLeases(const std::vector<int64_t>& ids,
                                            const std::string& owner) {
  if (ids.empty()) return Status::Ok();
  return Write("release deployment leases", [&] {
    SqliteConnection db(*db_);
    sql_leases::Release(db, ids, owner);
    return Status::Ok();
  });
}

Result<std::vector<OrphanedDeployment>> SqliteStore::InterruptOrphaned(
    const std::string& owner, int64_t now, const std::vector<int64_t>& running_here,
    const std::string& error) {
  return WriteValue("interrupt orphaned deployments", std::vector<OrphanedDeployment>{},
                    [&](std::vector<OrphanedDeployment>& out) {
                      SqliteConnection db(*db_);
                      out = sql_leases::InterruptOrphaned(db, owner, now, running_here, error);
                      return Status::Ok();
                    });
}

Result<bool> SqliteStore::TryTakeLease(const std::string& name, const std::string& owner,
                                       int64_t now, int64_t until) {
  return WriteValue("take lease " + name, false, [&](bool& mine) {
    SqliteConnection db(*db_);
    mine = sql_leases::TryTake(db, name, owner, now, until);
    return Status::Ok();
  });
}

Result<std::vector<LeaseRecord>> SqliteStore::LiveLeases(const std::string& prefix, int64_t now) {
  std::vector<LeaseRecord> out;
  Status st = Read("live leases", [&] {
    SqliteConnection db(*db_);
    out = sql_leases::Live(db, prefix, now);
  });
  if (!st.ok()) return st;
  return out;
}

Result<LeaseRecord> SqliteStore::GetDeploymentLease(int64_t id) {
  std::optional<LeaseRecord> out;
  Status st = Read("deployment lease", [&] {
    SqliteConnection db(*db_);
    out = sql_leases::OfDeployment(db, id);
  });
  if (!st.ok()) return st;
  if (!out) return NotFound("deployment " + std::to_string(id) + " not found");
  return *out;
}

}  // namespace reprise
