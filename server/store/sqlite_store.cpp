// SqliteStore: opening and migrating the database, and the transaction
// machinery (Write, Read, Atomically) every aggregate's file uses.
#include "server/store/migrations.h"
#include "server/store/sqlite_store_internal.h"

namespace reprise {

int64_t SqliteStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  return db_->execAndGet("PRAGMA user_version").getInt64();
}

Status SqliteStore::Ping() {
  return Read("ping", [&] { db_->execAndGet("SELECT 1"); });
}

Status SqliteStore::Atomically(const std::function<Status()>& body) {
  return Write("atomic change", body);
}

namespace {

// A SAVEPOINT inside the enclosing write transaction. Undone alone (ROLLBACK
// TO, then RELEASE, so it leaves the savepoint stack) unless released.
// SQLite::Savepoint's destructor does not RELEASE, hence this one.
class NestedWrite {
 public:
  explicit NestedWrite(SQLite::Database& db) : db_(db) { db_.exec("SAVEPOINT nested_write"); }
  NestedWrite(const NestedWrite&) = delete;
  NestedWrite& operator=(const NestedWrite&) = delete;
  ~NestedWrite() {
    if (released_) return;
    try {
      db_.exec("ROLLBACK TO nested_write");
      db_.exec("RELEASE nested_write");
    } catch (const std::exception&) {
      // The outer transaction is rolled back when the error reaches it.
    }
  }
  void Release() {
    db_.exec("RELEASE nested_write");
    released_ = true;
  }

 private:
  SQLite::Database& db_;
  bool released_ = false;
};

}  // namespace

// Runs `body` in one IMMEDIATE transaction (IMMEDIATE: see DEPENDENCIES.md);
// commits when it returns OK, rolls back when it fails or throws. Inside
// another Write (Atomically) on this thread it is a savepoint of that
// transaction instead: undone alone when it fails.
Status SqliteStore::Write(std::string_view what, const std::function<Status()>& body) {
  std::lock_guard lock(mu_);
  try {
    if (write_depth_ > 0) {
      NestedWrite savepoint(*db_);
      REPRISE_RETURN_IF_ERROR(RunBody(body));
      savepoint.Release();
    } else {
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      REPRISE_RETURN_IF_ERROR(RunBody(body));
      tx.commit();
    }
    return Status::Ok();
  } catch (const SQLite::Exception& e) {
    if (IsConstraint(e)) return Conflict(std::string(what) + ": " + e.what());
    return FromException(e, what);
  } catch (const std::exception& e) {
    return FromException(e, what);
  }
}

Status SqliteStore::RunBody(const std::function<Status()>& body) {
  ++write_depth_;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{write_depth_};
  return body();
}

Status SqliteStore::Read(std::string_view what, const std::function<void()>& body) {
  std::lock_guard lock(mu_);
  try {
    body();
    return Status::Ok();
  } catch (const std::exception& e) {
    return FromException(e, what);
  }
}

namespace {

Status Migrate(SQLite::Database& db) {
  const auto& migrations = SqliteMigrations();
  int64_t version = db.execAndGet("PRAGMA user_version").getInt64();
  if (version > static_cast<int64_t>(migrations.size()))
    return FailedPrecondition("database schema version " + std::to_string(version) +
                              " is newer than this server knows (" +
                              std::to_string(migrations.size()) + ")");
  for (size_t i = static_cast<size_t>(version); i < migrations.size(); ++i) {
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    db.exec(std::string(migrations[i]));
    db.exec("PRAGMA user_version = " + std::to_string(i + 1));
    tx.commit();
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        options.path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
        options.busy_timeout_ms);
    db->exec("PRAGMA journal_mode=WAL");
    // FULL: a committed transaction survives power loss; deployments depend on it.
    db->exec("PRAGMA synchronous=FULL");
    db->exec("PRAGMA foreign_keys=ON");
    REPRISE_RETURN_IF_ERROR(Migrate(*db));
    return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
  } catch (const std::exception& e) {
    return IoError("cannot open store " + options.path + ": " + e.what());
  }
}

}  // namespace reprise
