// SqliteDb: the SqlDb on one SQLite file through SQLiteCpp (the only
// SQLiteCpp user of the server), its migration runner, and OpenSqliteStore.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <cctype>
#include <set>
#include <unordered_map>

#include "server/store/sql_store.h"
#include "server/store/sqlite_migrations.h"

namespace reprise {
namespace {

// SQLiteCpp's exception as the SqlError the store understands.
SqlError ToSqlError(const SQLite::Exception& e) {
  switch (e.getErrorCode() & 0xff) {
    case SQLITE_CONSTRAINT:
      return SqlError(SqlError::Kind::kConstraint, e.what());
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return SqlError(SqlError::Kind::kBusy, e.what());
    default:
      return SqlError(SqlError::Kind::kOther, e.what());
  }
}

class SqliteRow final : public SqlRow {
 public:
  explicit SqliteRow(SQLite::Statement& q) : q_(q) {}
  bool IsNull(int column) const override { return q_.isColumnNull(column); }
  int64_t Int64(int column) const override { return q_.getColumn(column).getInt64(); }
  std::string Text(int column) const override {
    if (q_.isColumnNull(column)) return "";
    return q_.getColumn(column).getString();
  }

 private:
  SQLite::Statement& q_;
};

class SqliteDb final : public SqlDb {
 public:
  explicit SqliteDb(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

  SqlDialect Dialect() const override { return SqlDialect::kSqlite; }

  int64_t Run(std::string_view sql, const std::vector<SqlValue>& params,
              const std::function<void(const SqlRow&)>& on_row) override {
    try {
      Lease lease(*this, sql);
      SQLite::Statement& q = lease.statement();
      for (size_t i = 0; i < params.size(); ++i) Bind(q, static_cast<int>(i + 1), params[i]);
      SqliteRow row(q);
      while (q.executeStep()) on_row(row);
      return Changes(sql) ? db_->getChanges() : 0;
    } catch (const SQLite::Exception& e) {
      throw ToSqlError(e);
    }
  }

  void Script(std::string_view sql) override {
    try {
      db_->exec(std::string(sql));
    } catch (const SQLite::Exception& e) {
      throw ToSqlError(e);
    }
  }

  // IMMEDIATE: the write lock is taken at BEGIN, so a read-then-write inside
  // the transaction never meets SQLITE_BUSY half-way (see DEPENDENCIES.md).
  void BeginWrite() override { Script("BEGIN IMMEDIATE"); }
  void Commit() override { Script("COMMIT"); }
  void Rollback() override { Script("ROLLBACK"); }
  void Savepoint(std::string_view name) override { Script("SAVEPOINT " + std::string(name)); }
  void ReleaseSavepoint(std::string_view name) override { Script("RELEASE " + std::string(name)); }
  void RollbackToSavepoint(std::string_view name) override {
    Script("ROLLBACK TO " + std::string(name));
  }

 private:
  // Prepared statements kept by their text: the store runs the same few
  // queries over and over. Bounded: the IN lists make the set open-ended.
  static constexpr size_t kMaxCached = 256;

  // A cached statement for the time of one Run, reset (so it holds no read
  // snapshot) and unbound when the Run ends. A statement already in use
  // (a query run again from inside its own row callback) is prepared anew.
  class Lease {
   public:
    Lease(SqliteDb& db, std::string_view sql) : db_(db) {
      std::string key(sql);
      auto it = db_.cache_.find(key);
      if (it != db_.cache_.end() && !db_.in_use_.count(it->second.get())) {
        statement_ = it->second.get();
      } else if (it == db_.cache_.end()) {
        if (db_.cache_.size() >= kMaxCached && db_.in_use_.empty()) db_.cache_.clear();
        auto made = std::make_unique<SQLite::Statement>(*db_.db_, key);
        statement_ = made.get();
        db_.cache_.emplace(std::move(key), std::move(made));
      } else {
        own_ = std::make_unique<SQLite::Statement>(*db_.db_, key);
        statement_ = own_.get();
      }
      db_.in_use_.insert(statement_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      db_.in_use_.erase(statement_);
      try {
        statement_->reset();
      } catch (const SQLite::Exception&) {
        // reset() repeats the step's error, already thrown to the caller.
      }
      statement_->clearBindings();
    }
    SQLite::Statement& statement() { return *statement_; }

   private:
    SqliteDb& db_;
    SQLite::Statement* statement_ = nullptr;
    std::unique_ptr<SQLite::Statement> own_;
  };

  // Whether `sql` changes rows (sqlite3_changes() keeps the count of the
  // last statement that did, so a SELECT must not report it).
  static bool Changes(std::string_view sql) {
    size_t start = sql.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) return false;
    std::string verb;
    for (char c : sql.substr(start, 6)) verb += static_cast<char>(std::toupper(c));
    return verb == "INSERT" || verb == "UPDATE" || verb == "DELETE";
  }

  static void Bind(SQLite::Statement& q, int index, const SqlValue& value) {
    if (const auto* i = std::get_if<int64_t>(&value))
      q.bind(index, *i);
    else if (const auto* s = std::get_if<std::string>(&value))
      q.bind(index, *s);
    else
      q.bind(index);
  }

  std::unique_ptr<SQLite::Database> db_;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> cache_;
  std::set<SQLite::Statement*> in_use_;
};

int64_t UserVersion(SqlDb& db) {
  int64_t version = 0;
  db.Run("PRAGMA user_version", {}, [&](const SqlRow& row) { version = row.Int64(0); });
  return version;
}

// Applies the migrations the file lacks, each in its own transaction that
// also moves `PRAGMA user_version` on.
Status Migrate(SqlDb& db) {
  const auto& migrations = SqliteMigrations();
  int64_t version = UserVersion(db);
  if (version > static_cast<int64_t>(migrations.size()))
    return FailedPrecondition("database schema version " + std::to_string(version) +
                              " is newer than this server knows (" +
                              std::to_string(migrations.size()) + ")");
  for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
    db.BeginWrite();
    try {
      db.Script(migrations[i]);
      db.Script("PRAGMA user_version = " + std::to_string(i + 1));
      db.Commit();
    } catch (...) {
      db.Rollback();
      throw;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SqlDb>> OpenSqliteDb(const SqliteStoreOptions& options) {
  try {
    auto file = std::make_unique<SQLite::Database>(
        options.path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
        options.busy_timeout_ms);
    auto db = std::make_unique<SqliteDb>(std::move(file));
    db->Script("PRAGMA journal_mode=WAL");
    // FULL: a committed transaction survives power loss; deployments depend on it.
    db->Script("PRAGMA synchronous=FULL");
    db->Script("PRAGMA foreign_keys=ON");
    REPRISE_RETURN_IF_ERROR(Migrate(*db));
    return std::unique_ptr<SqlDb>(std::move(db));
  } catch (const std::exception& e) {
    return IoError("cannot open store " + options.path + ": " + e.what());
  }
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  auto db = OpenSqliteDb(options);
  if (!db.ok()) return db.status();
  return MakeSqlStore(std::move(db).value());
}

}  // namespace reprise
