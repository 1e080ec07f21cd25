// CopySqliteStoreToPostgres: the tables and their columns come from the
// migrated PostgreSQL schema (which a test keeps equal to SQLite's); rows are
// read from SQLite and inserted in batches, parents before children, with the
// user triggers of the target off so that rows they would derive (e.g.
// stage_builds) are copied as they are instead of being made twice.
#include "server/store/store_copy.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "server/store/postgres_db.h"
#include "server/store/postgres_migrations.h"
#include "server/store/sql_store.h"

namespace reprise {

namespace {

struct Column {
  std::string name;
  bool integer = false;
  bool identity = false;
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::set<std::string> parents;  // tables its foreign keys refer to
  bool has_triggers = false;
};

std::string Quoted(const std::string& identifier) {
  std::string out = "\"";
  for (char c : identifier) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::map<std::string, Table> TargetTables(SqlDb& pg) {
  std::map<std::string, Table> tables;
  pg.Run(
      "SELECT c.table_name, c.column_name, c.data_type, c.is_identity "
      "FROM information_schema.columns c JOIN information_schema.tables t "
      "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
      "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
      "AND c.table_name <> 'schema_version' ORDER BY c.table_name, c.ordinal_position",
      {}, [&](const SqlRow& row) {
        Table& table = tables[row.Text(0)];
        table.name = row.Text(0);
        const std::string type = row.Text(2);
        table.columns.push_back({row.Text(1),
                                 type == "bigint" || type == "integer" || type == "smallint",
                                 row.Text(3) == "YES"});
      });
  pg.Run(
      "SELECT t.relname, r.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
      "JOIN pg_class r ON r.oid = c.confrelid "
      "WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
      {}, [&](const SqlRow& row) {
        if (row.Text(0) != row.Text(1)) tables[row.Text(0)].parents.insert(row.Text(1));
      });
  pg.Run(
      "SELECT DISTINCT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
      "WHERE NOT g.tgisinternal AND c.relnamespace = current_schema()::regnamespace",
      {}, [&](const SqlRow& row) { tables[row.Text(0)].has_triggers = true; });
  return tables;
}

// Parents before children (by name among equals, so the order is stable).
std::vector<const Table*> CopyOrder(const std::map<std::string, Table>& tables) {
  std::vector<const Table*> order;
  std::set<std::string> placed;
  while (order.size() < tables.size()) {
    const size_t before = order.size();
    for (const auto& [name, table] : tables) {
      if (placed.count(name)) continue;
      bool ready = std::all_of(table.parents.begin(), table.parents.end(),
                               [&](const std::string& p) { return placed.count(p) != 0; });
      if (!ready) continue;
      order.push_back(&table);
      placed.insert(name);
    }
    if (order.size() == before)
      throw SqlError(SqlError::Kind::kOther, "the schema's foreign keys form a cycle");
  }
  return order;
}

std::string ColumnList(const Table& table) {
  std::string out;
  for (const auto& c : table.columns) out += (out.empty() ? "" : ", ") + Quoted(c.name);
  return out;
}

int64_t CopyRows(SqlDb& from, SqlDb& to, const Table& table) {
  const std::string columns = ColumnList(table);
  std::string row_placeholders = "(";
  for (size_t i = 0; i < table.columns.size(); ++i) row_placeholders += i ? ",?" : "?";
  row_placeholders += ")";
  // PostgreSQL takes at most 65535 parameters in one statement.
  const size_t batch_rows = std::max<size_t>(1, 20000 / table.columns.size());
  std::vector<SqlValue> params;
  size_t pending = 0;
  int64_t copied = 0;
  auto flush = [&] {
    if (pending == 0) return;
    std::string sql = "INSERT INTO " + Quoted(table.name) + " (" + columns + ") VALUES ";
    for (size_t i = 0; i < pending; ++i) sql += (i ? "," : "") + row_placeholders;
    to.Run(sql, params, nullptr);
    params.clear();
    pending = 0;
  };
  from.Run("SELECT " + columns + " FROM " + Quoted(table.name), {}, [&](const SqlRow& row) {
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const int c = static_cast<int>(i);
      if (row.IsNull(c))
        params.emplace_back(std::monostate{});
      else if (table.columns[i].integer)
        params.emplace_back(row.Int64(c));
      else
        params.emplace_back(row.Text(c));
    }
    ++copied;
    if (++pending == batch_rows) flush();
  });
  flush();
  return copied;
}

// New ids continue after the copied ones, and after ids SQLite handed out
// for rows deleted since (AUTOINCREMENT never reuses them).
void ContinueIdentities(SqlDb& from, SqlDb& to, const Table& table) {
  for (const auto& column : table.columns) {
    if (!column.identity) continue;
    int64_t handed_out = 0;
    from.Run("SELECT seq FROM sqlite_sequence WHERE name = ?", {table.name},
             [&](const SqlRow& row) { handed_out = row.Int64(0); });
    to.Run("SELECT setval(pg_get_serial_sequence(?, ?), GREATEST(COALESCE((SELECT MAX(" +
               Quoted(column.name) + ") FROM " + Quoted(table.name) + "), 0), ?) + 1, false)",
           {table.name, column.name, handed_out}, nullptr);
  }
}

// The first table of the target that holds a row ("" when none does).
std::string FirstNonEmpty(SqlDb& to, const std::vector<const Table*>& order) {
  for (const Table* table : order) {
    bool rows = false;
    to.Run("SELECT EXISTS (SELECT 1 FROM " + Quoted(table->name) + ")", {},
           [&](const SqlRow& row) { rows = row.Int64(0) != 0; });
    if (rows) return table->name;
  }
  return "";
}

// Ends both transactions unless committed.
struct Transactions {
  SqlDb& from;
  SqlDb& to;
  bool done = false;
  ~Transactions() {
    if (done) return;
    for (SqlDb* db : {&to, &from}) {
      try {
        db->Rollback();
      } catch (const SqlError&) {
        // A connection that failed has no transaction left to end.
      }
    }
  }
};

Result<StoreCopySummary> Copy(SqlDb& from, SqlDb& to) {
  const auto tables = TargetTables(to);
  const auto order = CopyOrder(tables);
  to.BeginWrite();
  Transactions transactions{from, to};
  from.Script("BEGIN");  // one snapshot of the source
  if (std::string table = FirstNonEmpty(to, order); !table.empty())
    return FailedPrecondition("the PostgreSQL database is not empty (table " + table +
                              " has rows): the store is copied into an empty database only");
  StoreCopySummary summary;
  for (const Table* table : order) {
    if (table->has_triggers)
      to.Script("ALTER TABLE " + Quoted(table->name) + " DISABLE TRIGGER USER");
    try {
      summary.rows += CopyRows(from, to, *table);
      ContinueIdentities(from, to, *table);
    } catch (const SqlError& e) {
      throw SqlError(e.kind(), "table " + table->name + ": " + e.what());
    }
    if (table->has_triggers)
      to.Script("ALTER TABLE " + Quoted(table->name) + " ENABLE TRIGGER USER");
    ++summary.tables;
  }
  to.Commit();
  from.Script("COMMIT");
  transactions.done = true;
  return summary;
}

}  // namespace

Result<StoreCopySummary> CopySqliteStoreToPostgres(const std::filesystem::path& sqlite_file,
                                                   const std::string& postgres_url) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(sqlite_file, ec))
    return NotFound("no SQLite store at " + sqlite_file.string());
  auto from = OpenSqliteDb({sqlite_file.string(), 5000});
  if (!from.ok()) return from.status();
  const std::string where = RedactPostgresUrl(postgres_url);
  try {
    auto to = ConnectPostgres({postgres_url, 5000});
    auto migrated = MigratePostgres(*to);
    if (!migrated.ok()) return migrated.status().WithContext(where);
    return Copy(**from, *to);
  } catch (const SqlError& e) {
    return Internal("copying the store into " + where + ": " + e.what());
  }
}

}  // namespace reprise
