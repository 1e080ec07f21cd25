// bench_engine: the engine benchmark's helper (bench/run_engine.sh and
// bench/run_scale_out.sh run it). It writes scheduled deployments straight
// into a stopped server's store through the Store interface (creating 10,000
// over HTTP would measure the API, not the scheduler), and afterwards reads
// them back to report how late they fired and started.
//
//   bench_engine seed   (--db DATA/reprise.db | --store LOCATION) --apps K --count N
//                       (--start-ms T | --lead-ms L) --window-ms W
//   bench_engine report (--db DATA/reprise.db | --store LOCATION) --apps K
//   bench_engine settle (--db DATA/reprise.db | --store LOCATION) --apps K
//
// --store takes what reprise-server's --store takes (postgresql://…, sqlite:DIR).
//
// seed: N deployments of build 1 of release 1.0 of applications bench0..bench{K-1}
// (round robin) to their stage "Run", status scheduled, due evenly between T and
// T+W (Unix ms), forced (no gates), as the engine's Request() would have stored
// them. The applications, releases and builds must exist (the scripts create
// them over the API first). With --lead-ms instead of --start-ms, T is chosen
// so that the first falls due L ms after seeding ends: the first 200 are
// written far in the future to time the store, T is estimated from their rate,
// and they are moved to their times at the end. Prints "first due at T".
//
// report: per deployment, firing lateness = the time of the log line "scheduled
// time ... reached" (the scheduled -> waiting transition) minus scheduled_at, and
// start lateness = started_at - scheduled_at (includes waiting in the per-target
// queue behind earlier deployments); p50/p90/p99/max of each, the statuses, and
// how many deployments fired exactly once (one such log line), more than once
// or never.
//
// settle (servers stopped): cancels the deployments not yet final, so that
// what a benchmark runs next is not slowed by the rest of a burst.
//
// Single-threaded; not thread-safe (a command-line tool).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "common/clock.h"
#include "server/store/store.h"

namespace {

using reprise::DeploymentRecord;

struct Options {
  std::string command;
  std::string db;
  std::string store;
  int apps = 10;
  int64_t count = 10000;
  int64_t start_ms = 0;
  int64_t lead_ms = 0;
  int64_t window_ms = 2000;
};

int Usage() {
  std::fprintf(stderr,
               "usage: bench_engine seed (--db FILE | --store LOCATION) --apps K --count N\n"
               "                         (--start-ms T | --lead-ms L) --window-ms W\n"
               "       bench_engine report|settle (--db FILE | --store LOCATION) --apps K\n");
  return 2;
}

int64_t NowMs() { return reprise::ToUnixMillis(std::chrono::system_clock::now()); }

// A steady time point as Unix ms (for differences with NowMs()).
int64_t ToMs(std::chrono::steady_clock::time_point t) {
  return NowMs() -
         std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
             .count();
}

// Deployment `i` of `o`, due at its place in the window from `start_ms`.
DeploymentRecord Scheduled(const Options& o, int64_t i, int64_t start_ms) {
  DeploymentRecord d;
  d.application = "bench" + std::to_string(i % o.apps);
  d.release = "1.0";
  d.build = 1;
  d.stage = "Run";
  d.kind = "promote";
  d.status = "scheduled";
  d.scheduled_at = start_ms + (o.count > 1 ? i * o.window_ms / (o.count - 1) : 0);
  d.expires_after_ms = 3600000;
  d.forced = true;
  d.comment = "bench";
  d.context_choice = "current";
  d.requested_by = "bench";
  d.created_at = NowMs();
  d.targets_csv = "t" + std::to_string(i % o.apps);
  return d;
}

int Seed(reprise::Store& store, const Options& o) {
  auto t0 = std::chrono::steady_clock::now();
  const bool timed = o.lead_ms > 0;
  // With a lead: the first ones far ahead (a day) until the rate is known.
  int64_t start_ms = timed ? NowMs() + 86400000 : o.start_ms;
  const int64_t probe = timed ? std::min<int64_t>(200, o.count) : 0;
  std::vector<int64_t> probed;
  for (int64_t i = 0; i < o.count; ++i) {
    if (timed && i == probe) {
      double per_ms = static_cast<double>(NowMs() - ToMs(t0)) / static_cast<double>(probe);
      // The rest plus moving the probed ones, with a margin of a quarter.
      double rest_ms = per_ms * static_cast<double>(o.count - probe + probe) * 1.25;
      start_ms = NowMs() + static_cast<int64_t>(rest_ms) + o.lead_ms;
    }
    auto created = store.CreateDeployment(Scheduled(o, i, start_ms));
    if (!created.ok()) {
      std::fprintf(stderr, "bench_engine: %s\n", created.status().ToString().c_str());
      return 1;
    }
    if (i < probe) probed.push_back(created->id);
  }
  if (timed && probe == o.count) start_ms = NowMs() + o.lead_ms;  // all of them were probed
  for (int64_t i = 0; i < static_cast<int64_t>(probed.size()); ++i) {
    auto moved = store.RescheduleDeployment(probed[i], Scheduled(o, i, start_ms).scheduled_at);
    if (!moved.ok()) {
      std::fprintf(stderr, "bench_engine: %s\n", moved.status().ToString().c_str());
      return 1;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("seeded %lld scheduled deployments in %.1f s (%.0f/s)\n",
              static_cast<long long>(o.count), s, static_cast<double>(o.count) / s);
  if (timed) {
    std::printf("first due at %lld (in %lld ms)\n", static_cast<long long>(start_ms),
                static_cast<long long>(start_ms - NowMs()));
  }
  return 0;
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]);
}

void PrintDistribution(const char* name, const std::vector<int64_t>& ms) {
  std::printf("%-44s p50 %7.0f ms  p90 %7.0f ms  p99 %7.0f ms  max %7.0f ms  (n=%zu)\n", name,
              Percentile(ms, 50), Percentile(ms, 90), Percentile(ms, 99), Percentile(ms, 100),
              ms.size());
}

int Report(reprise::Store& store, const Options& o) {
  std::vector<DeploymentRecord> all;
  for (int a = 0; a < o.apps; ++a) {
    for (int64_t offset = 0;; offset += 1000) {
      auto page = store.ListDeployments({"bench" + std::to_string(a), "", {}}, {1000, offset});
      if (!page.ok()) {
        std::fprintf(stderr, "bench_engine: %s\n", page.status().ToString().c_str());
        return 1;
      }
      for (auto& d : *page)
        if (d.scheduled_at != 0) all.push_back(std::move(d));
      if (page->size() < 1000) break;
    }
  }
  std::map<std::string, int64_t> statuses;
  std::vector<int64_t> fired, started;
  int64_t fired_once = 0, fired_more = 0, fired_never = 0;
  int64_t first_due = INT64_MAX, last_finished = 0;
  for (const auto& d : all) {
    ++statuses[d.status];
    first_due = std::min(first_due, d.scheduled_at);
    last_finished = std::max(last_finished, d.finished_at);
    if (d.started_at) started.push_back(d.started_at - d.scheduled_at);
    auto log = store.ListDeploymentLog(d.id, 0, 50);
    if (!log.ok()) continue;
    int firings = 0;
    for (const auto& l : *log) {
      if (l.text.rfind("scheduled time ", 0) != 0) continue;
      if (firings++ == 0) fired.push_back(l.at - d.scheduled_at);
    }
    (firings == 1 ? fired_once : firings == 0 ? fired_never : fired_more) += 1;
  }
  std::string summary;
  for (const auto& [s, n] : statuses) summary += " " + s + " " + std::to_string(n);
  std::printf("deployments: %zu;%s\n", all.size(), summary.c_str());
  std::printf("fired exactly once: %lld; more than once: %lld; never: %lld\n",
              static_cast<long long>(fired_once), static_cast<long long>(fired_more),
              static_cast<long long>(fired_never));
  PrintDistribution("firing lateness (log 'scheduled time reached')", fired);
  PrintDistribution("start lateness (started_at - scheduled_at)", started);
  if (last_finished > 0)
    std::printf("all finished %.1f s after the first was due (window %.1f s)\n",
                static_cast<double>(last_finished - first_due) / 1000.0,
                static_cast<double>(o.window_ms) / 1000.0);
  return 0;
}

int Settle(reprise::Store& store, const Options& o) {
  const std::vector<std::string> open = {"scheduled", "waiting", "queued", "running"};
  size_t cancelled = 0;
  for (int a = 0; a < o.apps; ++a) {
    // Each pass cancels the first page; bounded by the pages there can be.
    for (int64_t pass = 0; pass <= o.count / 1000 + 1; ++pass) {
      auto page = store.ListDeployments({"bench" + std::to_string(a), "", open}, {1000, 0});
      if (!page.ok() || page->empty()) break;
      std::vector<int64_t> ids;
      for (const auto& d : *page) ids.push_back(d.id);
      auto moved = store.TransitionDeployments(ids, open, "cancelled");
      if (!moved.ok()) {
        std::fprintf(stderr, "bench_engine: %s\n", moved.status().ToString().c_str());
        return 1;
      }
      cancelled += moved->size();
    }
  }
  std::printf("cancelled %zu deployments not yet final\n", cancelled);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  Options o;
  o.command = argv[1];
  if (!reprise::bench::ParseFlags(argc, argv, 2,
                                  {{"--db", o.db},
                                   {"--store", o.store},
                                   {"--lead-ms", o.lead_ms},
                                   {"--apps", o.apps},
                                   {"--count", o.count},
                                   {"--start-ms", o.start_ms},
                                   {"--window-ms", o.window_ms}}))
    return Usage();
  if (o.db.empty() == o.store.empty() || o.apps < 1 || o.lead_ms < 0) return Usage();
  auto store =
      o.store.empty() ? reprise::OpenSqliteStore({o.db, 5000}) : reprise::OpenStore(o.store);
  if (!store.ok()) {
    std::fprintf(stderr, "bench_engine: %s\n", store.status().ToString().c_str());
    return 1;
  }
  if (o.command == "seed") return Seed(**store, o);
  if (o.command == "report") return Report(**store, o);
  if (o.command == "settle") return Settle(**store, o);
  return Usage();
}
