// PostgresDb against a real PostgreSQL 15 (the binary's throwaway cluster):
// placeholders, types, error kinds, the writers' lock, savepoints,
// reconnection, and that a password never reaches a message.
#include "server/store/postgres_db.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <vector>

#include "tests/support/pg_cluster.h"

namespace reprise {

namespace {

using testing::PgCluster;

std::unique_ptr<SqlDb> Connect(const std::string& url, int busy_timeout_ms = 5000) {
  return ConnectPostgres({url, busy_timeout_ms});
}

// The rows of `sql` as text, columns joined by '|'.
std::vector<std::string> Rows(SqlDb& db, const std::string& sql,
                              const std::vector<SqlValue>& params = {}) {
  std::vector<std::string> rows;
  db.Run(sql, params, [&](const SqlRow& row) {
    std::string line = row.Text(0);
    for (int c = 1;; ++c) {
      try {
        line += "|" + row.Text(c);
      } catch (const SqlError&) {
        break;
      }
    }
    rows.push_back(line);
  });
  return rows;
}

int64_t Int(SqlDb& db, const std::string& sql, const std::vector<SqlValue>& params = {}) {
  int64_t value = -999;
  db.Run(sql, params, [&](const SqlRow& row) { value = row.Int64(0); });
  return value;
}

SqlError::Kind KindOf(const std::function<void()>& body) {
  try {
    body();
  } catch (const SqlError& e) {
    return e.kind();
  }
  FAIL("no SqlError");
  return SqlError::Kind::kOther;
}

// The database name in a "postgresql:///NAME?…" URL of the test cluster.
std::string DatabaseOf(const std::string& url) {
  const size_t start = std::string("postgresql:///").size();
  return url.substr(start, url.find('?') - start);
}

}  // namespace

TEST_CASE("placeholders ? and ?N become $N, quoted text and comments stay") {
  CHECK(RewritePlaceholders("a=? AND b=?") == "a=$1 AND b=$2");
  CHECK(RewritePlaceholders("?2 = x OR ?1 = y OR ?2 = z") == "$2 = x OR $1 = y OR $2 = z");
  // A bare ? after numbered ones takes one more than the largest, as in SQLite.
  CHECK(RewritePlaceholders("?3, ?") == "$3, $4");
  CHECK(RewritePlaceholders("'?' = ? AND \"odd?name\" = ?") == "'?' = $1 AND \"odd?name\" = $2");
  CHECK(RewritePlaceholders("'it''s ?' || ?") == "'it''s ?' || $1");
  CHECK(RewritePlaceholders("-- why?\nx = ? /* or ? */ AND ?") ==
        "-- why?\nx = $1 /* or ? */ AND $2");
}

TEST_CASE("a URL's password is redacted in every form") {
  CHECK(RedactPostgresUrl("postgresql://u:s3cret@db.example:5432/reprise") ==
        "postgresql://u:***@db.example:5432/reprise");
  CHECK(RedactPostgresUrl("postgresql:///reprise?host=/run/pg&password=s3cret&port=5") ==
        "postgresql:///reprise?host=/run/pg&password=***&port=5");
  CHECK(RedactPostgresUrl("host=db password=s3cret dbname=r") == "host=db password=*** dbname=r");
  CHECK(RedactPostgresUrl("postgresql://u@db/r") == "postgresql://u@db/r");
}

TEST_CASE("a failed connection names the server but not the password") {
  try {
    Connect("postgresql://reprise:s3cret-pw@/nowhere?host=/nonexistent-reprise-dir&port=1");
    FAIL("connected");
  } catch (const SqlError& e) {
    std::string message = e.what();
    CAPTURE(message);
    CHECK(message.find("s3cret-pw") == std::string::npos);
    CHECK(message.find("cannot connect to PostgreSQL") != std::string::npos);
    CHECK(message.find("nonexistent-reprise-dir") != std::string::npos);
  }
}

TEST_CASE("parameters are typed and results read back as the store expects") {
  auto db = Connect(PgCluster::Shared().CreateDatabase());
  CHECK(db->Dialect() == SqlDialect::kPostgres);
  db->Script("CREATE TABLE t (id BIGINT, name TEXT, note TEXT)");
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t small = std::numeric_limits<int64_t>::min();
  CHECK(db->Run("INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)",
                {big, std::string("zürich ✓"), std::monostate{}, small, std::string(""),
                 std::string("it's")},
                nullptr) == 2);
  CHECK(Int(*db, "SELECT id FROM t WHERE name = ?", {std::string("zürich ✓")}) == big);
  CHECK(Int(*db, "SELECT id FROM t WHERE name = ?1 AND ?1 = ''", {std::string("")}) == small);
  db->Run("SELECT note, id FROM t WHERE id = ?", {big}, [&](const SqlRow& row) {
    CHECK(row.IsNull(0));
    CHECK(row.Text(0).empty());
    CHECK_FALSE(row.IsNull(1));
  });
  // numeric (SUM, AVG, casts) truncates; booleans are 0/1; NULL is 0.
  CHECK(Int(*db, "SELECT '12.000'::numeric") == 12);
  CHECK(Int(*db, "SELECT '-7.9'::numeric") == -7);
  CHECK(Int(*db, "SELECT SUM(x) FROM (VALUES (5::bigint), (6::bigint)) v(x)") == 11);
  CHECK(Int(*db, "SELECT AVG(x) FROM (VALUES (5::bigint), (6::bigint)) v(x)") == 5);
  CHECK(Int(*db, "SELECT EXISTS (SELECT 1 FROM t)") == 1);
  CHECK(Int(*db, "SELECT NULL::bigint") == 0);
  CHECK(KindOf([&] { Int(*db, "SELECT 'abc'"); }) == SqlError::Kind::kOther);
  CHECK(db->Run("UPDATE t SET note = 'x'", {}, nullptr) == 2);
  CHECK(db->Run("DELETE FROM t WHERE id = ?", {big}, nullptr) == 1);
  CHECK(Rows(*db, "SELECT name, note FROM t") == std::vector<std::string>{"|x"});
}

TEST_CASE("errors are classified: constraint, busy, other") {
  const std::string url = PgCluster::Shared().CreateDatabase();
  auto db = Connect(url);
  db->Script(
      "CREATE TABLE p (name TEXT PRIMARY KEY);"
      "CREATE TABLE c (p TEXT NOT NULL REFERENCES p(name), n BIGINT CHECK (n > 0))");
  db->Run("INSERT INTO p VALUES (?)", {std::string("a")}, nullptr);
  CHECK(KindOf([&] { db->Run("INSERT INTO p VALUES (?)", {std::string("a")}, nullptr); }) ==
        SqlError::Kind::kConstraint);
  CHECK(KindOf([&] {
          db->Run("INSERT INTO c VALUES (?, ?)", {std::string("zz"), int64_t{1}}, nullptr);
        }) == SqlError::Kind::kConstraint);
  CHECK(KindOf([&] {
          db->Run("INSERT INTO c VALUES (?, ?)", {std::string("a"), int64_t{0}}, nullptr);
        }) == SqlError::Kind::kConstraint);
  CHECK(KindOf([&] { db->Run("SELEC 1", {}, nullptr); }) == SqlError::Kind::kOther);

  // A writer waiting past its timeout for another's write lock is busy.
  auto other = Connect(url, 200);
  db->BeginWrite();
  CHECK(KindOf([&] { other->BeginWrite(); }) == SqlError::Kind::kBusy);
  db->Commit();
  other->BeginWrite();  // free again
  other->Rollback();
}

TEST_CASE("write transactions exclude each other and savepoints undo alone") {
  const std::string url = PgCluster::Shared().CreateDatabase();
  auto db = Connect(url);
  db->Script("CREATE TABLE t (name TEXT PRIMARY KEY)");
  db->BeginWrite();
  db->Run("INSERT INTO t VALUES ('a')", {}, nullptr);
  db->Savepoint("nested_write");
  CHECK(KindOf([&] { db->Run("INSERT INTO t VALUES ('a')", {}, nullptr); }) ==
        SqlError::Kind::kConstraint);
  db->RollbackToSavepoint("nested_write");
  db->ReleaseSavepoint("nested_write");
  db->Run("INSERT INTO t VALUES ('b')", {}, nullptr);
  db->Commit();
  CHECK(Rows(*db, "SELECT name FROM t ORDER BY name") == std::vector<std::string>{"a", "b"});

  // A transaction whose statement failed cannot be committed as if whole.
  db->BeginWrite();
  db->Run("INSERT INTO t VALUES ('c')", {}, nullptr);
  CHECK(KindOf([&] { db->Run("INSERT INTO t VALUES ('a')", {}, nullptr); }) ==
        SqlError::Kind::kConstraint);
  CHECK(KindOf([&] { db->Commit(); }) == SqlError::Kind::kOther);
  CHECK(Rows(*db, "SELECT name FROM t ORDER BY name") == std::vector<std::string>{"a", "b"});
  CHECK(KindOf([&] { db->Savepoint("x; DROP TABLE t"); }) == SqlError::Kind::kOther);
}

TEST_CASE("a connection the server ended is opened again for the next transaction") {
  auto& cluster = PgCluster::Shared();
  const std::string url = cluster.CreateDatabase();
  const std::string name = DatabaseOf(url);
  auto db = Connect(url);
  db->Script("CREATE TABLE t (n BIGINT)");
  cluster.Execute(
      "postgres",
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'");
  db->BeginWrite();  // reconnects
  db->Run("INSERT INTO t VALUES (1)", {}, nullptr);
  db->Commit();
  CHECK(Int(*db, "SELECT COUNT(*) FROM t") == 1);
}

TEST_CASE("statements are prepared once per connection, and again when that no longer holds") {
  auto& cluster = PgCluster::Shared();
  const std::string url = cluster.CreateDatabase();
  const std::string name = DatabaseOf(url);
  auto db = Connect(url);
  db->Script("CREATE TABLE t (n BIGINT)");
  auto prepared = [&] {
    return Int(*db,
               "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prep%'");
  };
  for (int64_t n = 1; n <= 3; ++n) db->Run("INSERT INTO t VALUES (?)", {n}, nullptr);
  CHECK(prepared() == 1);
  // The same text with other parameter types is a statement of its own.
  CHECK(Rows(*db, "SELECT ?1 FROM t WHERE n = 1", {int64_t{7}}) == std::vector<std::string>{"7"});
  CHECK(Rows(*db, "SELECT ?1 FROM t WHERE n = 1", {std::string("x")}) ==
        std::vector<std::string>{"x"});
  CHECK(prepared() == 3);

  // A new session (the server ended the old one) prepares them again.
  cluster.Execute(
      "postgres",
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'");
  db->BeginWrite();  // reconnects
  db->Run("INSERT INTO t VALUES (?)", {int64_t{4}}, nullptr);
  db->Commit();
  CHECK(Int(*db, "SELECT COUNT(*) FROM t") == 4);

  // Another server changed the table under a prepared SELECT *: the statement
  // may fail once, then it is prepared anew.
  CHECK(Rows(*db, "SELECT * FROM t WHERE n = ?", {int64_t{1}}) == std::vector<std::string>{"1"});
  Connect(url)->Script("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'new'");
  try {
    Rows(*db, "SELECT * FROM t WHERE n = ?", {int64_t{1}});
  } catch (const SqlError&) {
    // "cached plan must not change result type"
  }
  CHECK(Rows(*db, "SELECT * FROM t WHERE n = ?", {int64_t{1}}) ==
        std::vector<std::string>{"1|new"});
}

}  // namespace reprise
