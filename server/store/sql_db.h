// SqlDb: one connection to the SQL database behind the Store, SQLite
// (SQLiteCpp) or PostgreSQL (libpq). The store's queries are written once,
// against this interface, in the SQL both engines accept; only the schema
// (migrations) is written per engine. Not used outside server/store/.
//
// The common SQL:
//   - placeholders `?` (numbered in order) or `?N` (the Nth parameter; may
//     repeat); the PostgreSQL connection rewrites them to `$N`;
//   - integers are 64-bit, flags are integers 0/1 (never SQL booleans), text
//     is text; NULL reads as 0 or "";
//   - INSERT … ON CONFLICT … DO NOTHING / DO UPDATE, INSERT … RETURNING id,
//     COALESCE, CASE, lower(), string concatenation with ||;
//   - where the engines differ (e.g. SQLite's instr() against PostgreSQL's
//     strpos()), the query picks its text by Dialect().
//
// Errors are thrown as SqlError; the store catches them at its transaction
// boundary (Write/Read) and turns them into a Status.
//
// Thread-safety: none. A connection is used by one thread at a time; the
// store serialises access to it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace reprise {

enum class SqlDialect { kSqlite, kPostgres };

// A parameter: NULL, an integer or text.
using SqlValue = std::variant<std::monostate, int64_t, std::string>;

// The current row of a result; valid only inside the row callback.
class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual bool IsNull(int column) const = 0;
  // NULL reads as 0.
  virtual int64_t Int64(int column) const = 0;
  // NULL reads as "".
  virtual std::string Text(int column) const = 0;
};

class SqlError : public std::runtime_error {
 public:
  enum class Kind {
    kConstraint,  // a UNIQUE, CHECK or FOREIGN KEY constraint refused the change
    kBusy,        // the database stayed locked past its timeout
    kOther,
  };
  SqlError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

class SqlDb {
 public:
  virtual ~SqlDb() = default;

  virtual SqlDialect Dialect() const = 0;

  // Runs one statement with `params` bound in order; calls `on_row` for each
  // row it returns (may be empty). Returns the number of rows it inserted,
  // updated or deleted.
  virtual int64_t Run(std::string_view sql, const std::vector<SqlValue>& params,
                      const std::function<void(const SqlRow&)>& on_row) = 0;

  // Runs statements without parameters (schema, pragmas).
  virtual void Script(std::string_view sql) = 0;

  // A write transaction that excludes every other writer of the database
  // until it ends, as SQLite's BEGIN IMMEDIATE does (PostgreSQL: a
  // transaction-scoped advisory lock taken first), so that a read-then-write
  // inside it cannot interleave with another server's.
  virtual void BeginWrite() = 0;
  virtual void Commit() = 0;
  virtual void Rollback() = 0;
  // Savepoints inside a write transaction.
  virtual void Savepoint(std::string_view name) = 0;
  virtual void ReleaseSavepoint(std::string_view name) = 0;
  virtual void RollbackToSavepoint(std::string_view name) = 0;
};

}  // namespace reprise
