// The PostgreSQL migrations: they run once even when two servers start
// together, refuse a newer database, and leave the same tables, columns (in
// order) and indexes as the SQLite migrations, so the two schemas cannot
// drift apart.
#include "server/store/postgres_migrations.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "server/store/postgres_db.h"
#include "server/store/store.h"
#include "tests/support/pg_cluster.h"
#include "tests/temp_dir.h"

namespace reprise {

namespace {

using testing::PgCluster;
using Columns = std::map<std::string, std::vector<std::string>>;  // table -> columns in order

Columns SqliteColumns(SQLite::Database& db) {
  Columns columns;
  SQLite::Statement tables(db,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                           "'sqlite_%' ORDER BY name");
  while (tables.executeStep()) {
    const std::string table = tables.getColumn(0).getString();
    SQLite::Statement info(db, "SELECT name FROM pragma_table_info(?) ORDER BY cid");
    info.bind(1, table);
    while (info.executeStep()) columns[table].push_back(info.getColumn(0).getString());
  }
  return columns;
}

std::set<std::string> SqliteIndexes(SQLite::Database& db) {
  std::set<std::string> names;
  SQLite::Statement q(db,
                      "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE "
                      "'sqlite_autoindex_%'");
  while (q.executeStep()) names.insert(q.getColumn(0).getString());
  return names;
}

Columns PostgresColumns(SqlDb& db) {
  Columns columns;
  db.Run(
      "SELECT table_name, column_name FROM information_schema.columns "
      "WHERE table_schema = current_schema() AND table_name <> 'schema_version' "
      "ORDER BY table_name, ordinal_position",
      {}, [&](const SqlRow& row) { columns[row.Text(0)].push_back(row.Text(1)); });
  return columns;
}

// Indexes made by CREATE INDEX (not those behind PRIMARY KEY / UNIQUE).
std::set<std::string> PostgresIndexes(SqlDb& db) {
  std::set<std::string> names;
  db.Run(
      "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = current_schema() "
      "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
      {}, [&](const SqlRow& row) { names.insert(row.Text(0)); });
  return names;
}

}  // namespace

TEST_CASE("the PostgreSQL schema has the SQLite schema's tables, columns and indexes") {
  TempDir dir;
  const std::string path = (dir.path() / "r.db").string();
  REQUIRE(OpenSqliteStore({path, 5000}).ok());  // migrated as the server does
  SQLite::Database sqlite(path);

  auto pg = ConnectPostgres({PgCluster::Shared().CreateDatabase(), 5000});
  auto migrated = MigratePostgres(*pg);
  REQUIRE_MESSAGE(migrated.ok(), migrated.status().ToString());

  const Columns expected = SqliteColumns(sqlite);
  const Columns actual = PostgresColumns(*pg);
  for (const auto& [table, columns] : expected) {
    CAPTURE(table);
    REQUIRE(actual.count(table) == 1);
    CHECK(actual.at(table) == columns);
  }
  for (const auto& [table, columns] : actual) {
    CAPTURE(table);
    CHECK(expected.count(table) == 1);
  }
  CHECK(PostgresIndexes(*pg) == SqliteIndexes(sqlite));
}

TEST_CASE("migrations run once, also when two servers start together") {
  const std::string url = PgCluster::Shared().CreateDatabase();
  const auto latest = static_cast<int64_t>(PostgresMigrations().size());
  std::vector<Result<int64_t>> results(2, Result<int64_t>(int64_t{0}));
  {
    std::vector<std::thread> servers;
    for (int i = 0; i < 2; ++i) {
      servers.emplace_back([&, i] {
        auto db = ConnectPostgres({url, 30000});
        results[static_cast<size_t>(i)] = MigratePostgres(*db);
      });
    }
    for (auto& t : servers) t.join();
  }
  for (const auto& r : results) {
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK(*r == latest);
  }
  auto db = ConnectPostgres({url, 5000});
  CHECK(PostgresSchemaVersion(*db) == latest);
  int64_t rows = 0;
  db->Run("SELECT COUNT(*) FROM schema_version", {},
          [&](const SqlRow& row) { rows = row.Int64(0); });
  CHECK(rows == 1);
  auto again = MigratePostgres(*db);
  REQUIRE(again.ok());
  CHECK(*again == latest);
}

TEST_CASE("a PostgreSQL database newer than the server is refused") {
  auto db = ConnectPostgres({PgCluster::Shared().CreateDatabase(), 5000});
  CHECK(PostgresSchemaVersion(*db) == 0);
  REQUIRE(MigratePostgres(*db).ok());
  db->Run("UPDATE schema_version SET version = 999", {}, nullptr);
  auto refused = MigratePostgres(*db);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kFailedPrecondition);
  CHECK(refused.status().message().find("999") != std::string::npos);
}

TEST_CASE("the stage_builds triggers keep the newest success of each build") {
  auto db = ConnectPostgres({PgCluster::Shared().CreateDatabase(), 5000});
  REQUIRE(MigratePostgres(*db).ok());
  db->Script(
      "INSERT INTO applications VALUES ('shop', 1, '{}', '', 1, 't', '{}');"
      "INSERT INTO releases(application, number, spec_version, snapshot_json, created_at, "
      "created_by) VALUES ('shop', '1.0', 1, '{}', 1, 't');"
      "INSERT INTO builds(application, release, number, created_at, created_by) "
      "VALUES ('shop', '1.0', 1, 1, 't')");
  auto deploy = [&](const std::string& status, int64_t finished) {
    int64_t id = 0;
    db->Run(
        "INSERT INTO deployments(application, release, build, stage, kind, status, requested_by, "
        "created_at, finished_at) VALUES ('shop', '1.0', 1, 'Prod', 'promote', ?, 'alice', 1, ?) "
        "RETURNING id",
        {status, finished}, [&](const SqlRow& row) { id = row.Int64(0); });
    return id;
  };
  const int64_t first = deploy("succeeded", 10);
  const int64_t running = deploy("running", 0);
  auto newest = [&] {
    int64_t id = 0;
    db->Run("SELECT deployment_id FROM stage_builds WHERE stage = 'Prod'", {},
            [&](const SqlRow& row) { id = row.Int64(0); });
    return id;
  };
  CHECK(newest() == first);
  db->Run("UPDATE deployments SET status = 'succeeded', finished_at = 20 WHERE id = ?", {running},
          nullptr);
  CHECK(newest() == running);
  deploy("succeeded", 5);  // older: does not replace the newest
  CHECK(newest() == running);
}

}  // namespace reprise
