// GET /api/v1/deployments: the filters of the deployments history (each
// case-insensitive), as JSON or as a CSV download. Thread-safe as the Store.
// Includes nlohmann/json (through json_io.h): include only from server/api/*.cpp.
#pragma once

#include <functional>

#include "server/api/json_io.h"
#include "server/store/store.h"

namespace reprise {

// Answers a list request: `summary` turns each deployment into its JSON form.
HttpResponse ListDeploymentsResponse(Store& store, const HttpRequest& req,
                                     const std::function<Json(const DeploymentRecord&)>& summary);

}  // namespace reprise
