// Building the Store on a SqlDb connection: MakeSqlStore for any engine's
// connection once its schema is migrated, and the SQLite connection itself.
// For the openers in server/store/ and the tests; the rest of the server
// opens a store through store.h.
//
// Thread-safety: the functions share nothing; the Store they return is
// thread-safe.
#pragma once

#include <memory>

#include "common/status.h"
#include "server/store/sql_db.h"
#include "server/store/store.h"

namespace reprise {

// The Store over `db`, whose schema must already be at its latest version.
std::unique_ptr<Store> MakeSqlStore(std::unique_ptr<SqlDb> db);

// The SQLite connection to `options.path` (created when missing), with WAL,
// synchronous=FULL, foreign keys and the busy timeout, migrated to the
// latest schema (FailedPrecondition when the file is newer than this server).
Result<std::unique_ptr<SqlDb>> OpenSqliteDb(const SqliteStoreOptions& options);

}  // namespace reprise
