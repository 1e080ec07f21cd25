// SqlStore: counts for monitoring (StatsStore), each one query.
#include <cmath>

#include "server/store/sql_store_internal.h"

namespace reprise {

namespace {

// ", CAST(SUM(CASE WHEN d <= b THEN 1 ELSE 0 END) AS BIGINT), ..." for each
// bound, in ms; the bounds are the server's own numbers, never a request's.
std::string BucketColumns(const std::vector<double>& bounds_seconds) {
  std::string sql;
  for (double b : bounds_seconds)
    sql += ", CAST(SUM(CASE WHEN finished_at - started_at <= " +
           std::to_string(static_cast<int64_t>(std::llround(b * 1000))) +
           " THEN 1 ELSE 0 END) AS BIGINT)";
  return sql;
}

using Cnt = DeploymentCountRow;

DeploymentDurationRow ReadDurations(const SqlRow& row, size_t buckets) {
  DeploymentDurationRow out;
  int64_t sum_ms = 0;
  ReadColumns(row, out.application, out.stage, out.count, sum_ms);
  out.sum_seconds = static_cast<double>(sum_ms) / 1000.0;
  for (size_t i = 0; i < buckets; ++i) out.cumulative.push_back(row.Int64(static_cast<int>(4 + i)));
  return out;
}

}  // namespace

// SUM is cast to BIGINT: PostgreSQL sums integers as numeric.
Result<StoreStats> SqlStore::Stats(const std::vector<double>& bounds_seconds) {
  StoreStats stats;
  Status st = Read("stats", [&] {
    stats.deployments = AllRows(
        "SELECT application, stage, kind, status, COUNT(*) FROM deployments "
        "GROUP BY application, stage, kind, status ORDER BY application, stage, kind, status",
        ReadFields<&Cnt::application, &Cnt::stage, &Cnt::kind, &Cnt::status, &Cnt::count>);
    stats.durations = AllRows(
        "SELECT application, stage, COUNT(*), CAST(SUM(finished_at - started_at) AS BIGINT)" +
            BucketColumns(bounds_seconds) +
            " FROM deployments WHERE started_at IS NOT NULL AND started_at > 0 AND "
            "finished_at IS NOT NULL AND finished_at >= started_at "
            "GROUP BY application, stage ORDER BY application, stage",
        [&](const SqlRow& row) { return ReadDurations(row, bounds_seconds.size()); });
    stats.artifact_bytes_stored =
        FirstRow(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM (SELECT MAX(size) AS size FROM "
            "artifacts WHERE blob_removed_at = 0 GROUP BY sha256) AS blobs",
            ReadInt64)
            .value_or(0);
  });
  if (!st.ok()) return st;
  return stats;
}

}  // namespace reprise
