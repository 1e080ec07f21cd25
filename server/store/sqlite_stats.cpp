// SqliteStore: counts for monitoring (StatsStore), each one query.
#include <cmath>

#include "server/store/sqlite_store_internal.h"

namespace reprise {

namespace {

// "SUM(CASE WHEN d <= b THEN 1 ELSE 0 END), ..." for each bound, in ms; the
// bounds are the server's own numbers, never a request's.
std::string BucketColumns(const std::vector<double>& bounds_seconds) {
  std::string sql;
  for (double b : bounds_seconds)
    sql += ", SUM(CASE WHEN finished_at - started_at <= " +
           std::to_string(static_cast<int64_t>(std::llround(b * 1000))) + " THEN 1 ELSE 0 END)";
  return sql;
}

}  // namespace

Result<StoreStats> SqliteStore::Stats(const std::vector<double>& bounds_seconds) {
  StoreStats stats;
  Status st = Read("stats", [&] {
    SQLite::Statement counts(*db_,
                             "SELECT application, stage, kind, status, COUNT(*) FROM deployments "
                             "GROUP BY application, stage, kind, status");
    while (counts.executeStep())
      stats.deployments.push_back({counts.getColumn(0).getString(), counts.getColumn(1).getString(),
                                   counts.getColumn(2).getString(), counts.getColumn(3).getString(),
                                   counts.getColumn(4).getInt64()});
    SQLite::Statement durations(
        *db_, "SELECT application, stage, COUNT(*), SUM(finished_at - started_at)" +
                  BucketColumns(bounds_seconds) +
                  " FROM deployments WHERE started_at IS NOT NULL AND started_at > 0 AND "
                  "finished_at IS NOT NULL AND finished_at >= started_at "
                  "GROUP BY application, stage");
    while (durations.executeStep()) {
      DeploymentDurationRow row;
      row.application = durations.getColumn(0).getString();
      row.stage = durations.getColumn(1).getString();
      row.count = durations.getColumn(2).getInt64();
      row.sum_seconds = static_cast<double>(durations.getColumn(3).getInt64()) / 1000.0;
      for (size_t i = 0; i < bounds_seconds.size(); ++i)
        row.cumulative.push_back(durations.getColumn(static_cast<int>(4 + i)).getInt64());
      stats.durations.push_back(std::move(row));
    }
    SQLite::Statement bytes(*db_,
                            "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM "
                            "artifacts WHERE blob_removed_at = 0 GROUP BY sha256)");
    if (bytes.executeStep()) stats.artifact_bytes_stored = bytes.getColumn(0).getInt64();
  });
  if (!st.ok()) return st;
  return stats;
}

}  // namespace reprise
