// Routes about one stage of an application that need its targets' agents:
// POST /api/v1/applications/{app}/stages/{stage}/test-connection (deployer;
// audited as `stage.test-connection`). Body: empty, {} or
// {"release": "1.0", "build": 2} to compare free space with that build's
// artifacts. Answers {ok, application, stage, targets: [{target, agent,
// connected, approved, version, latency_ms, writable, free_bytes,
// needed_bytes, problem}]}; a problem on a target is part of the answer
// (200, ok false), not an error.
//
// Thread-safety: the handlers may run on any thread; `hub`, `store` and
// `clock` must outlive the routes.
#pragma once

#include <vector>

#include "common/clock.h"
#include "server/http/http_types.h"

namespace reprise {

class AgentHub;
class Store;

std::vector<Route> StageRoutes(AgentHub& hub, Store& store, const Clock& clock);

}  // namespace reprise
