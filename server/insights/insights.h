// Delivery insights of one application's stage over a time window: the four
// keys of the DORA research (deployment frequency, lead time, change failure
// rate, time to restore), computed from the deployments the store recorded.
// Pure: no store, no clock; the caller passes the deployments and "now".
// Thread-safety: plain functions over values; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace reprise {

// What the computation needs of one deployment (times in unix ms; 0: never).
struct InsightDeployment {
  int64_t id = 0;
  std::string stage;
  std::string release;
  int64_t build = 0;
  std::string kind;    // promote | redeploy | rollback | selective-rollback
  std::string status;  // final or not; only succeeded, failed and interrupted ran to an end
  int64_t created_at = 0;
  int64_t finished_at = 0;
  int64_t build_created_at = 0;  // when its build was created (lead time)
};

// One bucket of the series (a day or a week), starting at `start`.
struct InsightBucket {
  int64_t start = 0;        // unix ms
  int64_t deployments = 0;  // ran to an end: succeeded, failed or interrupted
  int64_t succeeded = 0;
  int64_t failures = 0;   // failed, interrupted, or rolled back within 24 h
  int64_t rollbacks = 0;  // deployments of kind rollback or selective-rollback
  std::optional<int64_t> lead_time_p50_seconds;
  std::optional<int64_t> time_to_restore_p50_seconds;
};

struct Insights {
  int64_t from = 0;  // unix ms, the window's start (inclusive): the first bucket's start
  int64_t to = 0;    // unix ms, the window's end ("now")
  int64_t bucket_seconds = 0;
  int64_t deployments = 0;
  int64_t succeeded = 0;
  int64_t failures = 0;
  double deployment_frequency_per_week = 0;
  std::optional<int64_t> lead_time_p50_seconds;
  std::optional<double> change_failure_rate;  // none without deployments
  std::optional<int64_t> time_to_restore_p50_seconds;
  int64_t restores = 0;  // failures that were restored within the window
  std::vector<InsightBucket> series;
};

inline constexpr int64_t kRollbackWindowMs = 24LL * 3600 * 1000;

// Computes the insights of `stage` over the `days` days before `now` (unix
// ms). `deployments` may hold any stages and times, in any order: only those
// of `stage` count. Buckets are UTC days for windows up to 31 days, else
// weeks; the last bucket ends with the current UTC day, the first begins the
// window (so a window of 90 days is 13 weeks: 91 days up to now).
// - a deployment counts when it finished in the window and ran to an end;
// - frequency: succeeded deployments per 7 days of the window;
// - lead time: for each build whose first success on the stage lies in the
//   window, that success minus the build's creation; the median;
// - change failure rate: failures / deployments, where a failure failed, was
//   interrupted, or succeeded and was undone by a rollback: a rollback to
//   another build requested within 24 h after it finished, while it was the
//   stage's last success;
// - time to restore: from a failure (the first of a run of them) to the next
//   succeeded deployment that is not itself a failure; the median of those
//   restored in the window.
Insights ComputeInsights(const std::vector<InsightDeployment>& deployments,
                         const std::string& stage, int64_t now, int days);

// The median of `values` (the lower middle for an even count); none when empty.
std::optional<int64_t> MedianOf(std::vector<int64_t> values);

}  // namespace reprise
