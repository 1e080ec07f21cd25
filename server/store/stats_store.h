// StatsStore: counts over the durable state for monitoring, read at each
// metrics scrape (GET /metrics). Counting from the store keeps the figures
// true across restarts and across the ways a deployment can end (run,
// cancelled, expired, interrupted).
//
// Thread-safety: as Store (every method from any thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace reprise {

// Deployments of one application, stage, kind and status.
struct DeploymentCountRow {
  std::string application;
  std::string stage;
  std::string kind;
  std::string status;
  int64_t count = 0;
};

// Run times (started -> finished) of the finished deployments of one
// application and stage: cumulative[i] counts those that took at most
// bounds_seconds[i].
struct DeploymentDurationRow {
  std::string application;
  std::string stage;
  std::vector<int64_t> cumulative;
  int64_t count = 0;
  double sum_seconds = 0;
};

struct StoreStats {
  std::vector<DeploymentCountRow> deployments;  // every status
  std::vector<DeploymentDurationRow> durations;
  int64_t artifact_bytes_stored = 0;  // distinct blobs still kept
};

class StatsStore {
 public:
  virtual ~StatsStore() = default;
  // `bounds_seconds`: the duration histogram's upper bounds, ascending.
  [[nodiscard]] virtual Result<StoreStats> Stats(const std::vector<double>& bounds_seconds) = 0;
};

}  // namespace reprise
