// PostgresDb: the SqlDb on one PostgreSQL connection through libpq, and the
// helpers it is built from (placeholder rewriting, redacting a URL's
// password, the advisory lock every writer takes). Not used outside
// server/store/ and its tests.
//
// Thread-safety: none (as SqlDb): one thread at a time per connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "server/store/sql_db.h"

namespace reprise {

// The transaction-scoped advisory lock every write transaction (and every
// migration) takes first, so that writers exclude each other across servers
// as SQLite's BEGIN IMMEDIATE does. One fixed key ("Reprise!" in ASCII).
inline constexpr int64_t kPostgresWriteLockKey = 0x5265707269736521;

struct PostgresConnectOptions {
  std::string url;  // postgresql://… (libpq's URI or key=value form)
  // How long a statement waits for a lock (the writers' advisory lock
  // included) before it fails as SqlError::kBusy; 0: forever.
  int busy_timeout_ms = 5000;
};

// Connects; throws SqlError (kOther) with a message that names the server
// but never the password.
std::unique_ptr<SqlDb> ConnectPostgres(const PostgresConnectOptions& options);

// The common placeholders `?` (numbered in order, as SQLite does: one more
// than the largest so far) and `?N` rewritten to PostgreSQL's `$N`; string
// literals, quoted identifiers and comments are left alone.
std::string RewritePlaceholders(std::string_view sql);

// `url` with its password (user:PASSWORD@ or password=…) replaced by "***",
// for messages and logs.
std::string RedactPostgresUrl(std::string_view url);

}  // namespace reprise
