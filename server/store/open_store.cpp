// Opening a store by its location: SQLite in a data directory, or a
// PostgreSQL database (connection, migrations, then the one SqlStore).
#include "server/store/postgres_db.h"
#include "server/store/postgres_migrations.h"
#include "server/store/sql_store.h"
#include "server/store/store.h"

namespace reprise {

namespace {

constexpr std::string_view kSqlitePrefix = "sqlite:";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options) {
  const std::string where = RedactPostgresUrl(options.url);
  try {
    auto db = ConnectPostgres({options.url, options.busy_timeout_ms});
    auto migrated = MigratePostgres(*db);
    if (!migrated.ok()) return migrated.status().WithContext("store " + where);
    return MakeSqlStore(std::move(db));
  } catch (const SqlError& e) {
    return Unavailable(std::string("cannot open store ") + where + ": " + e.what());
  }
}

bool IsPostgresUrl(std::string_view location) {
  return StartsWith(location, "postgresql://") || StartsWith(location, "postgres://");
}

Status CheckStoreLocation(std::string_view location) {
  if (IsPostgresUrl(location)) return Status::Ok();
  if (StartsWith(location, kSqlitePrefix) && location.size() > kSqlitePrefix.size())
    return Status::Ok();
  return InvalidArgument("a store is postgresql://… or sqlite:DIR, not '" +
                         RedactStoreLocation(location) + "'");
}

std::string SqliteStoreLocation(const std::filesystem::path& dir) {
  return std::string(kSqlitePrefix) + dir.string();
}

std::string RedactStoreLocation(std::string_view location) { return RedactPostgresUrl(location); }

Result<std::unique_ptr<Store>> OpenStore(std::string_view location) {
  REPRISE_RETURN_IF_ERROR(CheckStoreLocation(location));
  if (IsPostgresUrl(location)) return OpenPostgresStore({std::string(location), 5000});
  const std::filesystem::path dir(location.substr(kSqlitePrefix.size()));
  return OpenSqliteStore({(dir / "reprise.db").string(), 5000});
}

}  // namespace reprise
