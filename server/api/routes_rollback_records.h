// The rollback-record routes of the HTTP API (docs/rollback-records.md,
// docs/api.md). Every route is authenticated; creating and the transitions
// need the role deployer at least (RollbackRecords checks the rest).
// Thread-safety: the routes hold pointers to `records` and `store`, which
// must outlive them; they may be called from any thread.
#pragma once

#include <vector>

#include "server/http/http_types.h"

namespace reprise {

class RollbackRecords;
class Store;

std::vector<Route> RollbackRecordRoutes(RollbackRecords& records, Store& store);

}  // namespace reprise
