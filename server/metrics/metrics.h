// Metrics: the server's metrics in the Prometheus text exposition format
// (GET /metrics). Counters and histograms of what happens in this process
// (HTTP requests, uploaded bytes, the scheduler's lateness) are observed as
// it happens; durable figures (deployments, stored bytes) and current ones
// (agents) come from sources read at each scrape. The only user of
// prometheus-cpp.
//
// Thread-safety: every method may be called from any thread at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/non_copyable.h"

namespace reprise {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One series of a family read at scrape time. For a histogram, `cumulative`
// holds the counts per upper bound of the family's `bounds`, `value` the sum
// of the observations and `count` their number.
struct MetricSeries {
  MetricLabels labels;
  double value = 0;
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
};

struct MetricFamilySnapshot {
  enum class Type { kCounter, kGauge, kHistogram };
  std::string name;
  std::string help;
  Type type = Type::kGauge;
  std::vector<double> bounds;  // histograms only
  std::vector<MetricSeries> series;
};

// Returns the families it knows of now; called at each scrape.
using MetricsSource = std::function<std::vector<MetricFamilySnapshot>()>;

class Metrics : NonCopyable {
 public:
  Metrics();
  ~Metrics();

  // One answered HTTP request: `route` is the route's pattern (never the
  // raw path, so the number of series stays bounded) or "unmatched".
  void ObserveHttp(std::string_view method, std::string_view route, int code, double seconds);
  // Bytes of an artifact upload that was stored.
  void AddUploadedBytes(uint64_t bytes);
  // How late a scheduled deployment fired (now - its time, seconds).
  void ObserveSchedulerLateness(double seconds);
  // Adds a source read at each scrape.
  void AddSource(MetricsSource source);

  // The text exposition format (version 0.0.4).
  std::string Render() const;

  // The upper bounds (seconds) of the deployment duration histogram.
  static const std::vector<double>& DeploymentDurationBounds();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
