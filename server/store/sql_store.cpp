// SqlStore: the transaction machinery (Write, Read, Atomically) every
// aggregate's file uses, the SQL text builders, and MakeSqlStore.
#include "server/store/sql_store.h"

#include "server/store/sql_store_internal.h"

namespace reprise {

std::unique_ptr<Store> MakeSqlStore(std::unique_ptr<SqlDb> db) {
  return std::make_unique<SqlStore>(std::move(db));
}

std::string Placeholders(size_t first, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? ",?" : "?") + std::to_string(first + i);
  return out;
}

namespace {

std::string Joined(std::initializer_list<std::string_view> items, std::string_view separator) {
  std::string out;
  for (auto item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

bool Contains(std::string_view list, std::string_view column) {
  size_t at = 0;
  while (at <= list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(at, end - at);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == column) return true;
    at = end + 1;
  }
  return false;
}

}  // namespace

std::string InsertSql(std::string_view table, std::initializer_list<std::string_view> columns) {
  std::string values;
  for (size_t i = 0; i < columns.size(); ++i) values += i ? ",?" : "?";
  return "INSERT INTO " + std::string(table) + "(" + Joined(columns, ", ") + ") VALUES(" + values +
         ")";
}

std::string UpsertSql(std::string_view table, std::string_view key,
                      std::initializer_list<std::string_view> columns,
                      std::initializer_list<std::string_view> kept) {
  std::string set;
  for (auto column : columns) {
    if (Contains(key, column) || Contains(Joined(kept, ","), column)) continue;
    if (!set.empty()) set += ", ";
    set += std::string(column) + "=excluded." + std::string(column);
  }
  return InsertSql(table, columns) + " ON CONFLICT(" + std::string(key) + ") DO UPDATE SET " + set;
}

int64_t SqlStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  const char* sql = db_->Dialect() == SqlDialect::kSqlite ? "PRAGMA user_version"
                                                          : "SELECT version FROM schema_version";
  try {
    return FirstRow(sql, ReadInt64).value_or(0);
  } catch (const std::exception&) {
    return 0;
  }
}

Result<int64_t> SqlStore::NextDueAt(std::string_view table, std::string_view status,
                                    std::string_view at_column) {
  return SelectOne("next due in " + std::string(table),
                   "SELECT COALESCE(MIN(" + std::string(at_column) + "), 0) FROM " +
                       std::string(table) + " WHERE status='" + std::string(status) + "'",
                   ReadInt64);
}

Status SqlStore::Ping() {
  return Read("ping", [&] { Exec("SELECT 1"); });
}

Status SqlStore::Atomically(const std::function<Status()>& body) {
  return Write("atomic change", body);
}

namespace {

// The outermost Write: rolled back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(SqlDb& db) : db_(db) { db_.BeginWrite(); }
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  ~WriteTransaction() {
    if (done_) return;
    try {
      db_.Rollback();
    } catch (const std::exception&) {
      // The connection ends the transaction itself when it cannot.
    }
  }
  void Commit() {
    done_ = true;
    db_.Commit();
  }

 private:
  SqlDb& db_;
  bool done_ = false;
};

// A savepoint inside the enclosing write transaction. Undone alone (ROLLBACK
// TO, then RELEASE, so it leaves the savepoint stack) unless released.
class NestedWrite {
 public:
  explicit NestedWrite(SqlDb& db) : db_(db) { db_.Savepoint(kName); }
  NestedWrite(const NestedWrite&) = delete;
  NestedWrite& operator=(const NestedWrite&) = delete;
  ~NestedWrite() {
    if (released_) return;
    try {
      db_.RollbackToSavepoint(kName);
      db_.ReleaseSavepoint(kName);
    } catch (const std::exception&) {
      // The outer transaction is rolled back when the error reaches it.
    }
  }
  void Release() {
    db_.ReleaseSavepoint(kName);
    released_ = true;
  }

 private:
  static constexpr const char* kName = "nested_write";
  SqlDb& db_;
  bool released_ = false;
};

}  // namespace

// Runs `body` in one write transaction (exclusive of other writers: see
// DEPENDENCIES.md); commits when it returns OK, rolls back when it fails or
// throws. Inside another Write (Atomically) on this thread it is a savepoint
// of that transaction instead: undone alone when it fails.
Status SqlStore::Write(std::string_view what, const std::function<Status()>& body) {
  std::lock_guard lock(mu_);
  try {
    if (write_depth_ > 0) {
      NestedWrite savepoint(*db_);
      REPRISE_RETURN_IF_ERROR(RunBody(body));
      savepoint.Release();
    } else {
      WriteTransaction tx(*db_);
      REPRISE_RETURN_IF_ERROR(RunBody(body));
      tx.Commit();
    }
    return Status::Ok();
  } catch (const SqlError& e) {
    if (e.kind() == SqlError::Kind::kConstraint)
      return Conflict(std::string(what) + ": " + e.what());
    return FromException(e, what);
  } catch (const std::exception& e) {
    return FromException(e, what);
  }
}

Status SqlStore::RunBody(const std::function<Status()>& body) {
  ++write_depth_;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{write_depth_};
  return body();
}

Status SqlStore::Read(std::string_view what, const std::function<void()>& body) {
  std::lock_guard lock(mu_);
  try {
    body();
    return Status::Ok();
  } catch (const std::exception& e) {
    return FromException(e, what);
  }
}

}  // namespace reprise
