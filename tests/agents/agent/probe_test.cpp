// AgentRunner::Probe on temporary target roots: a writable root, one that can
// never be a directory, one outside the agent's root, and the release cache
// it reports.
#include "agents/agent/probe.h"

#include <doctest/doctest.h>

#include <filesystem>

#include "agents/agent/runner.h"
#include "common/fs.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

TEST_CASE("probe: a root that can be written, created as a deploy would create it") {
  TempDir dir;
  AgentRunner runner(RunnerOptions{dir.path(), false, {}, 2000});
  auto report = runner.Probe("web");
  REQUIRE(report.ok());
  CHECK(report->writable);
  CHECK(report->problem.empty());
  CHECK(report->free_bytes > 0);
  CHECK(report->cached_releases.empty());
  REQUIRE(fs::is_directory(dir.path() / "web"));
  CHECK(fs::is_empty(dir.path() / "web"));  // the probe's file is gone

  fs::create_directories(dir.path() / "web" / ".reprise" / "releases" / "1.0-1-abcdef012345");
  auto again = runner.Probe("web");
  REQUIRE(again.ok());
  CHECK(again->cached_releases == std::vector<std::string>{"1.0-1-abcdef012345"});
}

TEST_CASE("probe: a root below a regular file, or outside the agent's root, is not writable") {
  TempDir dir;
  REQUIRE(WriteFileAtomic(dir.path() / "blocker", "a file\n").ok());
  AgentRunner runner(RunnerOptions{dir.path(), false, {}, 2000});
  auto blocked = runner.Probe("blocker/web");
  REQUIRE(blocked.ok());
  CHECK_FALSE(blocked->writable);
  CHECK(blocked->problem.find("is not a directory") != std::string::npos);
  CHECK(fs::is_regular_file(dir.path() / "blocker"));

  auto outside = runner.Probe("/etc/reprise-probe-outside");
  REQUIRE(outside.ok());
  CHECK_FALSE(outside->writable);
  CHECK(outside->problem.find("outside this agent's root") != std::string::npos);
  CHECK_FALSE(fs::exists("/etc/reprise-probe-outside"));
}

TEST_CASE("probe reports travel as JSON and bad ones are refused") {
  ProbeReport r;
  r.writable = false;
  r.problem = "cannot create a file in /srv/web: Read-only file system";
  r.free_bytes = 12345;
  r.cached_releases = {"a", "b"};
  auto back = ProbeReportFromJson(ProbeReportToJson(r));
  REQUIRE(back.ok());
  CHECK(back->writable == r.writable);
  CHECK(back->problem == r.problem);
  CHECK(back->free_bytes == r.free_bytes);
  CHECK(back->cached_releases == r.cached_releases);
  CHECK_FALSE(ProbeReportFromJson("{}").ok());
  CHECK_FALSE(ProbeReportFromJson("not json").ok());
}

}  // namespace
}  // namespace reprise
