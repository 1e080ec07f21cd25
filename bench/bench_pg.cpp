// bench_pg: a throwaway PostgreSQL 15 cluster for one benchmark run, the
// tests' own (tests/support/pg_cluster.h: initdb in a temporary directory, a
// Unix socket there and no TCP, removed at the end; a watchdog removes it
// if this process dies).
//
//   bench_pg [--databases N] [--durable 1] [--max-seconds S]
//
// Prints one database URL per line (N fresh databases, UTF-8 with the C
// collation, as docs/scale-out.md asks), then "ready", and keeps the cluster
// until SIGTERM or SIGINT (or S seconds, default 3600), then stops it.
// With --durable 1 the cluster commits as a production one would (fsync,
// synchronous_commit and full_page_writes on) instead of the tests' fsync
// off. Put it on disk with REPRISE_TEST_TMPDIR=DIR (default /dev/shm).
//
// Single-threaded; not thread-safe (a command-line tool).
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <exception>
#include <string>

#include "bench/bench_flags.h"
#include "tests/support/pg_cluster.h"

namespace {

// Blocks until SIGTERM/SIGINT arrives or `max_seconds` passed.
void AwaitStop(int max_seconds) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  timespec limit{max_seconds, 0};
  (void)sigtimedwait(&stop, nullptr, &limit);
}

}  // namespace

int main(int argc, char** argv) {
  int databases = 1;
  int durable = 0;
  int max_seconds = 3600;
  if (!reprise::bench::ParseFlags(
          argc, argv, 1,
          {{"--databases", databases}, {"--durable", durable}, {"--max-seconds", max_seconds}}) ||
      databases < 1 || max_seconds < 1) {
    std::fprintf(stderr, "usage: bench_pg [--databases N] [--durable 1] [--max-seconds S]\n");
    return 2;
  }
  try {
    auto& cluster = reprise::testing::PgCluster::Shared();
    // Blocked once the cluster runs (its processes must not inherit the
    // mask): the signals then wait for sigtimedwait, and the cluster is
    // stopped by its destructor on the way out. One that comes earlier
    // kills this process, and the cluster's watchdog removes it.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    if (durable) {
      cluster.Execute("postgres", "ALTER SYSTEM SET fsync = on");
      cluster.Execute("postgres", "ALTER SYSTEM SET synchronous_commit = on");
      cluster.Execute("postgres", "ALTER SYSTEM SET full_page_writes = on");
      cluster.Execute("postgres", "SELECT pg_reload_conf()");
    }
    for (int i = 0; i < databases; ++i) std::printf("%s\n", cluster.CreateDatabase().c_str());
    std::printf("ready\n");
    std::fflush(stdout);
    AwaitStop(max_seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_pg: %s\n", e.what());
    return 1;
  }
  return 0;
}
