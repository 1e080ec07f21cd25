// The schema of the PostgreSQL store as an ordered list of migrations, and
// the runner that applies them. Migration 1 is the end state of SQLite's
// migrations 1-14 (same tables, columns in the same order, defaults, keys and
// indexes); later migrations mirror later SQLite ones. Append only.
//
// The runner keeps the version in schema_version(version) and applies each
// missing migration in its own transaction under the writers' advisory lock,
// so two servers starting together migrate once.
//
// Thread-safety: none; the runner uses the one connection it is given.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/sql_db.h"

namespace reprise {

const std::vector<std::string_view>& PostgresMigrations();

// Brings `db` to the latest version; its version afterwards. A database newer
// than this server is kFailedPrecondition. Errors of the database are Status
// values (kInternal, or kUnavailable when it is busy).
Result<int64_t> MigratePostgres(SqlDb& db);

// The version recorded in schema_version (0 when the table is missing).
// Throws SqlError.
int64_t PostgresSchemaVersion(SqlDb& db);

}  // namespace reprise
