// The schema of the SQLite store as an ordered list of migrations.
// Migration i (1-based) moves `PRAGMA user_version` from i-1 to i; each runs
// in its own transaction. Append only: never edit a migration that shipped.
#pragma once

#include <string_view>
#include <vector>

namespace reprise {

const std::vector<std::string_view>& SqliteMigrations();

}  // namespace reprise
