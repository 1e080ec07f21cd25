// PgCluster: a throwaway PostgreSQL 15 cluster for the tests of one binary.
//
// Started on first use (initdb into a temporary directory, pg_ctl start), it
// listens on a Unix socket in that directory only (no TCP), with fsync off.
// As root, initdb and pg_ctl run as the `postgres` user on a directory it
// owns (initdb refuses root). The cluster is stopped and its directory
// removed when the binary exits; a watchdog process does the same if the
// binary dies without exiting (a crash, kill -9).
//
// Each test takes a fresh database: CreateDatabase(), or DatabaseFor(dir),
// which drops the databases of test directories that are gone.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <filesystem>
#include <string>

namespace reprise::testing {

// True when REPRISE_TEST_STORE=postgres: the store tests run on PostgreSQL.
bool TestStoreIsPostgres();

class PgCluster {
 public:
  // The cluster of this binary, started on the first call. Throws
  // std::runtime_error naming what failed (e.g. PostgreSQL not installed).
  static PgCluster& Shared();

  // A new, empty database (UTF-8, C collation, as the docs recommend); its URL.
  std::string CreateDatabase();
  // The database that belongs to `owner` (a test's temporary directory): the
  // same URL for the same directory, created on first use. Databases whose
  // directory no longer exists are dropped first, so a long suite does not
  // keep one per finished test.
  std::string DatabaseFor(const std::filesystem::path& owner);
  // Drops a database of this cluster (its connections are ended first).
  void DropDatabase(const std::string& name);

  // postgresql:///NAME?host=SOCKET_DIR&port=PORT&user=reprise
  std::string Url(const std::string& database) const;
  // Runs one SQL statement on `database` as the superuser; throws on failure.
  // For tests that inspect the database or end other sessions.
  void Execute(const std::string& database, const std::string& sql);

  const std::filesystem::path& socket_dir() const;
  int port() const;

  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

 private:
  PgCluster();
  struct Impl;
  Impl* impl_;
};

}  // namespace reprise::testing
