// The HTTP API's routes (DESIGN.md "Interfaces"). Each group of routes lives
// in its own file; this header assembles them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "server/http/http_types.h"

namespace reprise {

class Store;
class Catalog;
class BlobStore;
class DeploymentEngine;
class Metrics;
class AgentPort;
struct MetricFamilySnapshot;
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
  // GET /metrics and the upload byte counter (null: no /metrics route).
  Metrics* metrics = nullptr;
  bool metrics_public = false;  // GET /metrics without a token
};

std::vector<Route> AdminRoutes(ApiContext& ctx);
std::vector<Route> CatalogRoutes(ApiContext& ctx);
std::vector<Route> ArtifactRoutes(ApiContext& ctx);
std::vector<Route> DeploymentRoutes(ApiContext& ctx);
std::vector<Route> RetentionRoutes(ApiContext& ctx);
std::vector<Route> MetricsRoutes(ApiContext& ctx);

// What GET /metrics reads from the store (deployments, stored bytes) and
// from the agents at each scrape.
std::function<std::vector<MetricFamilySnapshot>()> StoreMetricsSource(Store& store);
std::function<std::vector<MetricFamilySnapshot>()> AgentMetricsSource(AgentPort& agents);
// reprise_server_info{server_id="…"} 1: which server of several answered the scrape.
std::function<std::vector<MetricFamilySnapshot>()> ServerInfoMetricsSource(std::string server_id);
std::vector<Route> PeopleRoutes(ApiContext& ctx);
std::vector<Route> VariableRoutes(ApiContext& ctx);
// GET /dashboard and GET /insights.
std::vector<Route> InsightsRoutes(ApiContext& ctx);

// Every route of the API.
std::vector<Route> ApiRoutes(ApiContext& ctx);

}  // namespace reprise
