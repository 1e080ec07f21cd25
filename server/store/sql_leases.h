// The lease queries of the store (deployment leases and named leases),
// written once in the common SQL of sql_db.h, so they run on SQLite and
// PostgreSQL alike. Each function runs inside the caller's write transaction
// (SqlDb::BeginWrite: no other writer interleaves), throws SqlError, and is
// what the Store's lease methods (deployment_store.h) do. Not used outside
// server/store/.
// Thread-safety: none; the store serialises access to its connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/store/deployment_store.h"
#include "server/store/sql_db.h"

namespace reprise::sql_leases {

std::vector<int64_t> Claim(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner,
                           int64_t now, int64_t lease_until);
std::vector<int64_t> Renew(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner,
                           int64_t lease_until);
void Release(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner);
std::vector<OrphanedDeployment> InterruptOrphaned(SqlDb& db, const std::string& owner, int64_t now,
                                                  const std::vector<int64_t>& running_here,
                                                  const std::string& error, OrphanScope scope);
bool TryTake(SqlDb& db, const std::string& name, const std::string& owner, int64_t now,
             int64_t until);
// Read-only.
std::vector<LeaseRecord> Live(SqlDb& db, const std::string& prefix, int64_t now);
// Read-only; nullopt when there is no deployment `id`.
std::optional<LeaseRecord> OfDeployment(SqlDb& db, int64_t id);

}  // namespace reprise::sql_leases
