// GET /metrics: the Prometheus text exposition (server/metrics/metrics.h),
// for a viewer's token (or anyone with --metrics-public), and the sources it
// reads at each scrape: deployments and stored bytes from the store, agents
// from the hub, and which server this is (its server id).
#include <map>

#include "server/api/routes.h"
#include "server/engine/agent_port.h"
#include "server/metrics/metrics.h"
#include "server/store/store.h"

namespace reprise {

namespace {

// Statuses a deployment ends in: counted by deployments_total; the others
// are where deployments are now (the queue, the schedule).
bool IsFinal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "interrupted" || status == "expired";
}

MetricSeries Series(MetricLabels labels, double value) {
  MetricSeries s;
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

std::vector<MetricFamilySnapshot> StoreFamilies(const StoreStats& stats) {
  using Type = MetricFamilySnapshot::Type;
  MetricFamilySnapshot ended{"reprise_deployments_total",
                             "Deployments that ended, by application, stage, kind and status",
                             Type::kCounter,
                             {},
                             {}};
  std::map<std::string, double> now_by_status = {
      {"scheduled", 0}, {"waiting", 0}, {"queued", 0}, {"running", 0}};
  for (const auto& row : stats.deployments) {
    if (IsFinal(row.status)) {
      ended.series.push_back(Series({{"application", row.application},
                                     {"stage", row.stage},
                                     {"kind", row.kind},
                                     {"status", row.status}},
                                    static_cast<double>(row.count)));
    } else {
      now_by_status[row.status] += static_cast<double>(row.count);
    }
  }
  MetricFamilySnapshot open{"reprise_deployments",
                            "Deployments not yet ended, by status (queued: the queue's depth; "
                            "scheduled: pending scheduled deployments)",
                            Type::kGauge,
                            {},
                            {}};
  for (const auto& [status, count] : now_by_status)
    open.series.push_back(Series({{"status", status}}, count));
  MetricFamilySnapshot durations{"reprise_deployment_duration_seconds",
                                 "Run time of deployments, from start to end",
                                 Type::kHistogram,
                                 Metrics::DeploymentDurationBounds(),
                                 {}};
  for (const auto& row : stats.durations) {
    MetricSeries s =
        Series({{"application", row.application}, {"stage", row.stage}}, row.sum_seconds);
    s.count = static_cast<uint64_t>(row.count);
    for (int64_t c : row.cumulative) s.cumulative.push_back(static_cast<uint64_t>(c));
    durations.series.push_back(std::move(s));
  }
  MetricFamilySnapshot bytes{"reprise_artifact_stored_bytes",
                             "Bytes of the artifact blobs kept (each blob once)",
                             Type::kGauge,
                             {},
                             {Series({}, static_cast<double>(stats.artifact_bytes_stored))}};
  return {std::move(ended), std::move(open), std::move(durations), std::move(bytes)};
}

}  // namespace

MetricsSource StoreMetricsSource(Store& store) {
  return [&store]() -> std::vector<MetricFamilySnapshot> {
    auto stats = store.Stats(Metrics::DeploymentDurationBounds());
    if (!stats.ok()) return {};  // the scrape still shows the process's own metrics
    return StoreFamilies(*stats);
  };
}

MetricsSource AgentMetricsSource(AgentPort& agents) {
  return [&agents]() -> std::vector<MetricFamilySnapshot> {
    std::map<std::string, double> by_status = {
        {"online", 0}, {"offline", 0}, {"pending", 0}, {"refused", 0}};
    for (const auto& a : agents.Agents()) by_status[a.status] += 1;
    MetricFamilySnapshot f{"reprise_agents",
                           "Agents known to the server, by status",
                           MetricFamilySnapshot::Type::kGauge,
                           {},
                           {}};
    for (const auto& [status, count] : by_status)
      f.series.push_back(Series({{"status", status}}, count));
    return {std::move(f)};
  };
}

MetricsSource ServerInfoMetricsSource(std::string server_id) {
  return [id = std::move(server_id)]() -> std::vector<MetricFamilySnapshot> {
    return {{"reprise_server_info",
             "This server (one of several sharing a store), by its server id",
             MetricFamilySnapshot::Type::kGauge,
             {},
             {Series({{"server_id", id}}, 1)}}};
  };
}

std::vector<Route> MetricsRoutes(ApiContext& ctx) {
  if (ctx.metrics == nullptr) return {};
  Metrics* metrics = ctx.metrics;
  Route r{
      "GET",
      "/metrics",
      Role::kViewer,
      ctx.metrics_public,
      [metrics](HttpRequest&) {
        HttpResponse res;
        res.content_type = "text/plain; version=0.0.4; charset=utf-8";
        res.body = metrics->Render();
        return res;
      },
      nullptr,
      {.summary = "Prometheus metrics",
       .tag = "Meta",
       .description = "Text exposition format. Public when the server runs with --metrics-public.",
       .success = "the metrics",
       .success_type = "text/plain"}};
  return {std::move(r)};
}

}  // namespace reprise
