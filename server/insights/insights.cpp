#include "server/insights/insights.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

namespace reprise {

namespace {

constexpr int64_t kDayMs = 24LL * 3600 * 1000;

bool RanToAnEnd(const InsightDeployment& d) {
  return d.finished_at > 0 &&
         (d.status == "succeeded" || d.status == "failed" || d.status == "interrupted");
}

bool IsRollback(const InsightDeployment& d) {
  return d.kind == "rollback" || d.kind == "selective-rollback";
}

// The succeeded deployments a rollback undid: for each rollback (one that was
// cancelled or expired undid nothing), the stage's last success before it was
// requested, when that ran another build and finished at most 24 h earlier.
std::set<int64_t> RolledBack(const std::vector<const InsightDeployment*>& ended_in_order,
                             const std::vector<const InsightDeployment*>& rollbacks) {
  std::set<int64_t> out;
  for (const InsightDeployment* r : rollbacks) {
    const InsightDeployment* before = nullptr;
    for (const InsightDeployment* d : ended_in_order) {
      if (d->finished_at > r->created_at) break;
      if (d->id != r->id && d->status == "succeeded") before = d;
    }
    if (before != nullptr && before->finished_at + kRollbackWindowMs >= r->created_at &&
        std::pair(before->release, before->build) != std::pair(r->release, r->build))
      out.insert(before->id);
  }
  return out;
}

// Per-bucket lists of durations (seconds) whose medians the series shows.
struct BucketSamples {
  std::vector<int64_t> lead_times;
  std::vector<int64_t> restores;
};

}  // namespace

std::optional<int64_t> MedianOf(std::vector<int64_t> values) {
  if (values.empty()) return std::nullopt;
  const size_t middle = (values.size() - 1) / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle),
                   values.end());
  return values[middle];
}

Insights ComputeInsights(const std::vector<InsightDeployment>& deployments,
                         const std::string& stage, int64_t now, int days) {
  Insights out;
  days = std::max(days, 1);
  out.to = now;
  const int64_t bucket_ms = days <= 31 ? kDayMs : 7 * kDayMs;
  out.bucket_seconds = bucket_ms / 1000;
  const int64_t buckets = (days * kDayMs + bucket_ms - 1) / bucket_ms;
  // Buckets end with the current UTC day, so the last one is "today".
  const int64_t end_of_today = (now / kDayMs + 1) * kDayMs;
  out.from = end_of_today - buckets * bucket_ms;
  out.series.resize(static_cast<size_t>(buckets));
  for (int64_t i = 0; i < buckets; ++i)
    out.series[static_cast<size_t>(i)].start = out.from + i * bucket_ms;
  std::vector<BucketSamples> samples(out.series.size());
  auto in_window = [&](int64_t at) { return at >= out.from && at <= out.to; };
  auto bucket_of = [&](int64_t at) {
    return static_cast<size_t>(std::min<int64_t>((at - out.from) / bucket_ms, buckets - 1));
  };

  std::vector<const InsightDeployment*> ended;
  std::vector<const InsightDeployment*> rollbacks;
  for (const auto& d : deployments) {
    if (d.stage != stage) continue;
    if (IsRollback(d) && d.status != "cancelled" && d.status != "expired") rollbacks.push_back(&d);
    if (RanToAnEnd(d)) ended.push_back(&d);
  }
  std::sort(ended.begin(), ended.end(), [](const auto* a, const auto* b) {
    return std::pair(a->finished_at, a->id) < std::pair(b->finished_at, b->id);
  });

  const std::set<int64_t> rolled_back = RolledBack(ended, rollbacks);
  std::map<std::pair<std::string, int64_t>, bool> seen_success;  // builds already succeeded
  int64_t incident_since = 0;  // 0: no failure waits for a restore
  std::vector<int64_t> lead_times, restores;
  for (const InsightDeployment* d : ended) {
    const bool failure =
        d->status == "failed" || d->status == "interrupted" || rolled_back.count(d->id) > 0;
    const bool succeeded = d->status == "succeeded";
    const bool counted = in_window(d->finished_at);
    InsightBucket* bucket = counted ? &out.series[bucket_of(d->finished_at)] : nullptr;
    BucketSamples* bucket_samples = counted ? &samples[bucket_of(d->finished_at)] : nullptr;
    if (counted) {
      ++out.deployments, ++bucket->deployments;
      if (succeeded) ++out.succeeded, ++bucket->succeeded;
      if (failure) ++out.failures, ++bucket->failures;
      if (IsRollback(*d)) ++bucket->rollbacks;
    }
    // Lead time: the build's first success on the stage.
    if (succeeded && !seen_success[{d->release, d->build}]) {
      seen_success[{d->release, d->build}] = true;
      if (counted && d->build_created_at > 0 && d->finished_at >= d->build_created_at) {
        const int64_t seconds = (d->finished_at - d->build_created_at) / 1000;
        lead_times.push_back(seconds);
        bucket_samples->lead_times.push_back(seconds);
      }
    }
    // Time to restore: a run of failures is one incident, ended by the next
    // success that is not itself a failure.
    if (failure) {
      if (incident_since == 0) incident_since = d->finished_at;
    } else if (succeeded && incident_since != 0) {
      if (counted) {
        const int64_t seconds = (d->finished_at - incident_since) / 1000;
        restores.push_back(seconds);
        bucket_samples->restores.push_back(seconds);
      }
      incident_since = 0;
    }
  }

  out.deployment_frequency_per_week = static_cast<double>(out.succeeded) * 7.0 / days;
  out.lead_time_p50_seconds = MedianOf(lead_times);
  out.time_to_restore_p50_seconds = MedianOf(restores);
  out.restores = static_cast<int64_t>(restores.size());
  if (out.deployments > 0)
    out.change_failure_rate = static_cast<double>(out.failures) / out.deployments;
  for (size_t i = 0; i < out.series.size(); ++i) {
    out.series[i].lead_time_p50_seconds = MedianOf(samples[i].lead_times);
    out.series[i].time_to_restore_p50_seconds = MedianOf(samples[i].restores);
  }
  return out;
}

}  // namespace reprise
