// The HTTP API's routes (DESIGN.md "Interfaces"). Each group of routes lives
// in its own file; this header assembles them.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "server/http/http_types.h"

namespace reprise {

class Store;
class Catalog;
class BlobStore;
class DeploymentEngine;
struct ArchiveLimits;
struct RetentionPolicy;

struct ApiContext {
  Store* store = nullptr;
  Catalog* catalog = nullptr;
  BlobStore* blobs = nullptr;
  const Clock* clock = nullptr;
  const ArchiveLimits* archive_limits = nullptr;
  uint64_t max_artifact_bytes = 0;  // 0: unlimited
  DeploymentEngine* engine = nullptr;
  int max_log_streams = 4096;  // concurrent live-log (SSE) clients (they hold no thread)
  // POST /admin/retention: the policy for fields a request leaves out (null: built-in defaults).
  const RetentionPolicy* retention_defaults = nullptr;
};

std::vector<Route> AdminRoutes(ApiContext& ctx);
std::vector<Route> CatalogRoutes(ApiContext& ctx);
std::vector<Route> ArtifactRoutes(ApiContext& ctx);
std::vector<Route> DeploymentRoutes(ApiContext& ctx);
std::vector<Route> RetentionRoutes(ApiContext& ctx);
// GET /dashboard and GET /insights.
std::vector<Route> InsightsRoutes(ApiContext& ctx);

// Every route of the API.
std::vector<Route> ApiRoutes(ApiContext& ctx);

}  // namespace reprise
