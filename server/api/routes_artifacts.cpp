// Artifact upload, download and manifests.
#include "server/api/json_io.h"
#include "server/api/routes.h"

namespace reprise {

std::vector<Route> ArtifactRoutes(ApiContext&) { return {}; }

}  // namespace reprise
