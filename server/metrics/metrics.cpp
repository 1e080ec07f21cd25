#include "server/metrics/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>
#include <mutex>

namespace reprise {

namespace {

prometheus::MetricType TypeOf(MetricFamilySnapshot::Type t) {
  switch (t) {
    case MetricFamilySnapshot::Type::kCounter:
      return prometheus::MetricType::Counter;
    case MetricFamilySnapshot::Type::kHistogram:
      return prometheus::MetricType::Histogram;
    case MetricFamilySnapshot::Type::kGauge:
      break;
  }
  return prometheus::MetricType::Gauge;
}

prometheus::MetricFamily ToFamily(const MetricFamilySnapshot& s) {
  prometheus::MetricFamily f;
  f.name = s.name;
  f.help = s.help;
  f.type = TypeOf(s.type);
  for (const auto& series : s.series) {
    prometheus::ClientMetric m;
    for (const auto& [name, value] : series.labels) m.label.push_back({name, value});
    std::sort(m.label.begin(), m.label.end());  // as the library orders its own labels
    switch (s.type) {
      case MetricFamilySnapshot::Type::kCounter:
        m.counter.value = series.value;
        break;
      case MetricFamilySnapshot::Type::kGauge:
        m.gauge.value = series.value;
        break;
      case MetricFamilySnapshot::Type::kHistogram:
        m.histogram.sample_count = series.count;
        m.histogram.sample_sum = series.value;
        for (size_t i = 0; i < s.bounds.size() && i < series.cumulative.size(); ++i)
          m.histogram.bucket.push_back({series.cumulative[i], s.bounds[i]});
        m.histogram.bucket.push_back({series.count, std::numeric_limits<double>::infinity()});
        break;
    }
    f.metric.push_back(std::move(m));
  }
  return f;
}

const prometheus::Histogram::BucketBoundaries kHttpBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10};
const prometheus::Histogram::BucketBoundaries kLatenessBounds = {0.01, 0.05, 0.1, 0.25, 0.5, 1,
                                                                 2.5,  5,    10,  30,   60};

}  // namespace

struct Metrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("reprise_http_requests_total")
          .Help("HTTP requests answered, by method, route and status code")
          .Register(registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("reprise_http_request_duration_seconds")
          .Help("Time from a request's headers to its answer, by route")
          .Register(registry);
  prometheus::Counter& uploaded = prometheus::BuildCounter()
                                      .Name("reprise_artifact_uploaded_bytes_total")
                                      .Help("Bytes of artifacts uploaded and stored")
                                      .Register(registry)
                                      .Add({});
  prometheus::Histogram& lateness =
      prometheus::BuildHistogram()
          .Name("reprise_scheduler_lateness_seconds")
          .Help("How late scheduled deployments fired after their time")
          .Register(registry)
          .Add({}, kLatenessBounds);

  mutable std::mutex sources_mu;
  std::vector<MetricsSource> sources;
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::ObserveHttp(std::string_view method, std::string_view route, int code,
                          double seconds) {
  impl_->requests
      .Add({{"method", std::string(method)},
            {"route", std::string(route)},
            {"code", std::to_string(code)}})
      .Increment();
  impl_->latency.Add({{"route", std::string(route)}}, kHttpBounds).Observe(seconds);
}

void Metrics::AddUploadedBytes(uint64_t bytes) {
  impl_->uploaded.Increment(static_cast<double>(bytes));
}

void Metrics::ObserveSchedulerLateness(double seconds) {
  impl_->lateness.Observe(seconds < 0 ? 0 : seconds);
}

void Metrics::AddSource(MetricsSource source) {
  std::lock_guard lock(impl_->sources_mu);
  impl_->sources.push_back(std::move(source));
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry.Collect();
  std::vector<MetricsSource> sources;
  {
    std::lock_guard lock(impl_->sources_mu);
    sources = impl_->sources;
  }
  for (const auto& source : sources)
    for (const auto& snapshot : source()) families.push_back(ToFamily(snapshot));
  return prometheus::TextSerializer().Serialize(families);
}

const std::vector<double>& Metrics::DeploymentDurationBounds() {
  static const std::vector<double> bounds = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600};
  return bounds;
}

}  // namespace reprise
