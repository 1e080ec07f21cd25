// The insights computation on fixed inputs (no store, no clock).
#include "server/insights/insights.h"

#include <doctest/doctest.h>

namespace reprise {
namespace {

constexpr int64_t kHour = 3600LL * 1000;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNow = 1'799'971'200'000 + 15 * kHour;  // 2027-01-15 15:00 UTC (unix ms)

InsightDeployment Dep(int64_t id, const std::string& status, int64_t finished_at,
                      const std::string& kind = "promote", int64_t build = 1,
                      const std::string& stage = "Production") {
  InsightDeployment d;
  d.id = id;
  d.stage = stage;
  d.release = "1.0";
  d.build = build;
  d.kind = kind;
  d.status = status;
  d.created_at = finished_at - 60'000;
  d.finished_at = finished_at;
  d.build_created_at = finished_at - 2 * kHour;
  return d;
}

TEST_CASE("no deployments: zero frequency, no rates, a daily series over 30 days") {
  auto in = ComputeInsights({}, "Production", kNow, 30);
  CHECK(in.deployments == 0);
  CHECK(in.deployment_frequency_per_week == 0);
  CHECK_FALSE(in.change_failure_rate.has_value());
  CHECK_FALSE(in.lead_time_p50_seconds.has_value());
  CHECK_FALSE(in.time_to_restore_p50_seconds.has_value());
  CHECK(in.bucket_seconds == 86400);
  REQUIRE(in.series.size() == 30);
  // Whole UTC days, the last one today.
  CHECK(in.series.back().start == kNow - 15 * kHour);
  CHECK(in.series.front().start == kNow - 15 * kHour - 29 * kDay);
  CHECK(in.from == in.series.front().start);
}

TEST_CASE("90 and 365 days are weekly buckets") {
  CHECK(ComputeInsights({}, "P", kNow, 90).series.size() == 13);
  CHECK(ComputeInsights({}, "P", kNow, 365).series.size() == 53);
  CHECK(ComputeInsights({}, "P", kNow, 365).bucket_seconds == 7 * 86400);
}

TEST_CASE("frequency counts succeeded deployments of the stage inside the window") {
  std::vector<InsightDeployment> deps = {
      Dep(1, "succeeded", kNow - 1 * kDay, "promote", 1),
      Dep(2, "succeeded", kNow - 2 * kDay, "promote", 2),
      Dep(3, "succeeded", kNow - 3 * kDay, "promote", 3),
      Dep(4, "succeeded", kNow - 40 * kDay, "promote", 4),                // before the window
      Dep(5, "succeeded", kNow - 1 * kDay, "promote", 5, "Integration"),  // another stage
      Dep(6, "cancelled", kNow - 1 * kDay, "promote", 6),                 // never ran
  };
  auto in = ComputeInsights(deps, "Production", kNow, 28);
  CHECK(in.deployments == 3);
  CHECK(in.succeeded == 3);
  CHECK(in.deployment_frequency_per_week == doctest::Approx(0.75));
  CHECK(in.change_failure_rate == doctest::Approx(0.0));
  int64_t in_series = 0;
  for (const auto& b : in.series) in_series += b.deployments;
  CHECK(in_series == 3);
  CHECK(in.series[in.series.size() - 2].deployments == 1);  // finished yesterday
}

TEST_CASE("lead time is the median from build creation to its first success on the stage") {
  auto a = Dep(1, "succeeded", kNow - 5 * kDay, "promote", 1);
  a.build_created_at = a.finished_at - 1 * kHour;
  auto b = Dep(2, "succeeded", kNow - 4 * kDay, "promote", 2);
  b.build_created_at = b.finished_at - 3 * kHour;
  auto c = Dep(3, "succeeded", kNow - 3 * kDay, "promote", 3);
  c.build_created_at = c.finished_at - 10 * kHour;
  // A later re-deploy of build 1 is not a new lead time.
  auto again = Dep(4, "succeeded", kNow - 1 * kDay, "redeploy", 1);
  again.build_created_at = a.build_created_at;
  auto in = ComputeInsights({a, b, c, again}, "Production", kNow, 30);
  REQUIRE(in.lead_time_p50_seconds.has_value());
  CHECK(*in.lead_time_p50_seconds == 3 * 3600);
}

TEST_CASE("change failure rate: failed, interrupted, and rolled back within 24 hours") {
  auto ok = Dep(1, "succeeded", kNow - 10 * kDay, "promote", 1);
  auto failed = Dep(2, "failed", kNow - 9 * kDay, "promote", 2);
  auto interrupted = Dep(3, "interrupted", kNow - 8 * kDay, "promote", 3);
  auto rolled_back = Dep(4, "succeeded", kNow - 7 * kDay, "promote", 4);
  auto rollback = Dep(5, "succeeded", rolled_back.finished_at + 3 * kHour, "rollback", 1);
  rollback.created_at = rolled_back.finished_at + 2 * kHour;
  auto late = Dep(6, "succeeded", kNow - 5 * kDay, "promote", 6);
  auto late_rollback = Dep(7, "succeeded", late.finished_at + 26 * kHour, "rollback", 1);
  late_rollback.created_at = late.finished_at + 25 * kHour;  // after 24 h: not a failure
  auto cancelled = Dep(8, "succeeded", kNow - 2 * kDay, "promote", 8);
  auto cancelled_rollback = Dep(9, "cancelled", 0, "rollback", 1);
  cancelled_rollback.created_at = cancelled.finished_at + kHour;  // undid nothing
  auto in = ComputeInsights({ok, failed, interrupted, rolled_back, rollback, late, late_rollback,
                             cancelled, cancelled_rollback},
                            "Production", kNow, 30);
  CHECK(in.deployments == 8);  // the cancelled rollback never ran
  CHECK(in.failures == 3);
  REQUIRE(in.change_failure_rate.has_value());
  CHECK(*in.change_failure_rate == doctest::Approx(3.0 / 8.0));
}

TEST_CASE("a rollback undoes only the stage's last success, not earlier ones") {
  auto good = Dep(1, "succeeded", kNow - 3 * kDay, "promote", 1);
  auto bad = Dep(2, "succeeded", good.finished_at + 1 * kHour, "promote", 2);
  auto rollback = Dep(3, "succeeded", bad.finished_at + 2 * kHour, "rollback", 1);
  rollback.created_at = bad.finished_at + 1 * kHour;
  auto in = ComputeInsights({good, bad, rollback}, "Production", kNow, 30);
  CHECK(in.deployments == 3);
  CHECK(in.failures == 1);  // build 2 only: the rollback brought build 1 back
}

TEST_CASE("time to restore: a run of failures is one incident, ended by the next good success") {
  auto f1 = Dep(1, "failed", kNow - 10 * kDay);
  auto f2 = Dep(2, "failed", f1.finished_at + 1 * kHour);
  auto fixed = Dep(3, "succeeded", f1.finished_at + 4 * kHour, "promote", 3);
  auto bad = Dep(4, "succeeded", kNow - 5 * kDay, "promote", 4);
  auto rollback = Dep(5, "succeeded", bad.finished_at + 2 * kHour, "rollback", 3);
  rollback.created_at = bad.finished_at + 1 * kHour;
  auto f3 = Dep(6, "failed", kNow - 2 * kDay);  // not restored yet
  auto in = ComputeInsights({rollback, f3, fixed, f1, bad, f2}, "Production", kNow, 30);
  CHECK(in.restores == 2);
  REQUIRE(in.time_to_restore_p50_seconds.has_value());
  CHECK(*in.time_to_restore_p50_seconds == 2 * 3600);  // median of 4 h and 2 h (lower middle)
  // The series places each restore at the success that ended it.
  int64_t with_restore = 0;
  for (const auto& b : in.series) with_restore += b.time_to_restore_p50_seconds ? 1 : 0;
  CHECK(with_restore == 2);
}

TEST_CASE("an incident that began before the window and ended inside it counts") {
  auto f = Dep(1, "failed", kNow - 31 * kDay);
  auto fixed = Dep(2, "succeeded", kNow - 29 * kDay, "promote", 2);
  auto in = ComputeInsights({f, fixed}, "Production", kNow, 30);
  CHECK(in.deployments == 1);
  CHECK(in.failures == 0);
  REQUIRE(in.time_to_restore_p50_seconds.has_value());
  CHECK(*in.time_to_restore_p50_seconds == 2 * 86400);
}

TEST_CASE("MedianOf takes the lower middle") {
  CHECK_FALSE(MedianOf({}).has_value());
  CHECK(*MedianOf({5}) == 5);
  CHECK(*MedianOf({9, 1, 5}) == 5);
  CHECK(*MedianOf({4, 1, 3, 2}) == 2);
}

}  // namespace
}  // namespace reprise
