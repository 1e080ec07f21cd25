// Copying a SQLite installation's store into PostgreSQL (reprise-server
// --migrate-store): every table, in one transaction on the target.
//
// Thread-safety: none needed; each call opens its own connections.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"

namespace reprise {

struct StoreCopySummary {
  int64_t tables = 0;
  int64_t rows = 0;
};

// Copies every table of the SQLite store file `sqlite_file` (migrated to the
// latest schema first) into the PostgreSQL database at `postgres_url`
// (migrated first, and empty: a table with rows is kFailedPrecondition).
// One transaction: on any error nothing is left in the target. The identity
// sequences continue after the copied ids. The SQLite side is read in one
// read transaction (one consistent snapshot).
Result<StoreCopySummary> CopySqliteStoreToPostgres(const std::filesystem::path& sqlite_file,
                                                   const std::string& postgres_url);

}  // namespace reprise
