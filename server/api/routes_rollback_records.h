// The rollback-record routes of the HTTP API (docs/rollback-records.md,
// docs/api.md). Every route is authenticated; creating and the transitions
// need the role deployer at least (RollbackRecords checks the rest).
// Thread-safety: the routes hold pointers to `records` and `store`, which
// must outlive them; they may be called from any thread.
#pragma once

#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "server/http/http_types.h"

namespace reprise {

class RollbackRecords;
class Store;

std::vector<Route> RollbackRecordRoutes(RollbackRecords& records, Store& store);

// What is deployed where (GET /applications/{app} "stages"): a target whose
// current deployment executed a rollback record gains
// current.rollback_record {id, deployment_id, reverted, components} and
// current.label "1.0 build 2 + rollback record #3 (2 of 7 components reverted)".
void AddRollbackRecordsToStages(Store& store, nlohmann::json& stages);

}  // namespace reprise
