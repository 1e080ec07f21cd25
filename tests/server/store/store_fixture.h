// Store test fixtures: a fresh store in a temporary directory, the
// application "shop" with release "1.0" and its builds, and promotion
// deployments, all written through the Store interface as the server does.
// The store is SQLite, or PostgreSQL (a database of the binary's throwaway
// cluster) when REPRISE_TEST_STORE=postgres: ctest runs the store suites on
// both, the same cases.
//
// Thread-safety: the functions share nothing; the store they return is the
// thread-safe SqlStore.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "server/store/store.h"
#include "tests/support/pg_cluster.h"
#include "tests/temp_dir.h"

namespace reprise {

// The store's file inside `dir`.
inline std::string TestStorePath(const TempDir& dir) { return (dir.path() / "r.db").string(); }

// The store of `dir` (the same one when opened again), created and migrated
// on first use, as the server opens it.
inline std::unique_ptr<Store> OpenTestStore(const TempDir& dir) {
  auto s = testing::TestStoreIsPostgres()
               ? OpenPostgresStore({testing::PgCluster::Shared().DatabaseFor(dir.path()), 5000})
               : OpenSqliteStore({TestStorePath(dir), 5000});
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(s).value();
}

// For test cases about the SQLite file itself (its pragmas, migrating old
// files): `TEST_CASE("…" * SqliteOnly())` skips them on PostgreSQL.
inline doctest::skip SqliteOnly() { return doctest::skip(testing::TestStoreIsPostgres()); }

// Application "shop" with release "1.0" and `builds` builds in it (numbered
// from 1), created at 1 by "t".
inline void SeedShop(Store& s, int builds = 0) {
  REQUIRE(s.PutApplication({"shop", 0, "{}", "", 1, "t", "{}"}).ok());
  REQUIRE(s.CreateRelease({"shop", "1.0", 1, "{}", "{}", 1, "t"}).ok());
  for (int i = 0; i < builds; ++i) REQUIRE(s.CreateBuild({"shop", "1.0", 0, "{}", 1, "t"}).ok());
}

// What a test says about a promotion; the rest keeps DeploymentRecord's defaults.
struct PromotionFields {
  std::string application = "shop";
  std::string release = "1.0";
  int64_t build = 1;
  std::string stage = "Production";
  std::string status = "running";
  int64_t scheduled_at = 0;
  std::string requested_by = "alice";
  int64_t created_at = 1;
  std::string targets_csv = "";
};

inline DeploymentRecord Promotion(const PromotionFields& f) {
  DeploymentRecord d;
  d.application = f.application;
  d.release = f.release;
  d.build = f.build;
  d.stage = f.stage;
  d.kind = "promote";
  d.status = f.status;
  d.scheduled_at = f.scheduled_at;
  d.requested_by = f.requested_by;
  d.created_at = f.created_at;
  d.targets_csv = f.targets_csv;
  return d;
}

// The promotion stored in `s` (with its id).
inline DeploymentRecord CreatePromotion(Store& s, const PromotionFields& f) {
  auto created = s.CreateDeployment(Promotion(f));
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  return std::move(created).value();
}

}  // namespace reprise
