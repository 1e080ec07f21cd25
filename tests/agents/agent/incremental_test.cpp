// Incremental release directories on a real target root: an update deploy
// hard-links the unchanged files of the live release, the result equals a
// fresh deploy, and a change made through one release is caught when another
// release holding the same file is re-deployed; Reprise's own writes and
// pruning keep the stamps of untouched releases true.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "agents/agent/runner.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "tests/agents/agent/fake_blob_source.h"
#include "tests/agents/agent/write_in_place.h"
#include "tests/agents/deployer/archive_builder.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

using Files = std::map<std::string, std::string>;

using Source = testing::FakeBlobSource;
using testing::SnapshotTree;
using testing::WriteInPlace;

struct Target {
  TempDir tmp;
  fs::path root = tmp.path() / "target";
  Source source{tmp.path() / "src"};
  AgentRunner runner{RunnerOptions{tmp.path(), false, {}, 100}};
  std::vector<std::string> lines;
  CancelToken cancel;
  Target() { fs::create_directories(root); }

  OperationOutcome Run(const ResolvedOperation& op, const std::string& build = "") {
    RunnerLog log = [this](LogLevel, std::string_view text) { lines.emplace_back(text); };
    return runner.Run(root.string(), op, DeployLabel{"1.0", build}, source, log, cancel);
  }
  void Deploy(const std::string& sha, const std::string& build, int keep = 3) {
    lines.clear();
    auto out = Run(DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, keep}, build);
    REQUIRE_MESSAGE(out.succeeded(), out.message);
  }
  bool Logged(const std::string& part) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
  fs::path Release(const std::string& build, const std::string& sha) const {
    return root / ".reprise/releases" / ("1.0-" + build + "-" + sha.substr(0, 12));
  }
};

ino_t Inode(const fs::path& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_ino;
}

const Files kBuild1 = {{"u/one.txt", "unchanged one\n"},         {"u/two.txt", "unchanged two\n"},
                       {"bin/run", "#!/bin/sh\necho 1\n"},       {"changed.txt", "version 1\n"},
                       {"deleted.txt", "only in build 1\n"},     {"mode.txt", "same bytes\n"},
                       {"type/was-file", "a file, then a dir\n"}};
const Files kBuild2 = {{"u/one.txt", "unchanged one\n"},      {"u/two.txt", "unchanged two\n"},
                       {"bin/run", "#!/bin/sh\necho 1\n"},    {"changed.txt", "version 2\n"},
                       {"added.txt", "only in build 2\n"},    {"mode.txt", "same bytes\n"},
                       {"type/was-file/now", "a directory\n"}};
const std::map<std::string, unsigned> kModes1 = {{"bin/run", 0755}, {"mode.txt", 0644}};
const std::map<std::string, unsigned> kModes2 = {{"bin/run", 0755}, {"mode.txt", 0600}};

struct TwoBuilds : Target {
  std::string b1 = source.Add(kBuild1, kModes1, {{"latest", "changed.txt"}});
  std::string b2 = source.Add(kBuild2, kModes2, {{"latest", "added.txt"}});
  fs::path r1 = Release("1", b1);
  fs::path r2 = Release("2", b2);

  // Re-deploys build `b` (release `n`) after a change on the target: the
  // change must be noticed and the live tree be what a fresh deploy of that
  // build makes (on `fresh`, another target).
  void RedeployCatchesChange(TwoBuilds& fresh, const std::string& b, const std::string& n) {
    Deploy(b, n);
    CHECK(Logged("was changed on the target after it was extracted"));
    fresh.Deploy(b == b1 ? fresh.b1 : fresh.b2, n);
    CHECK(SnapshotTree(root / "current/") == SnapshotTree(fresh.root / "current/"));
  }
};

TEST_CASE("an update deploy links the unchanged files of the live release and equals a fresh one") {
  TwoBuilds t;
  t.Deploy(t.b1, "1");
  t.Deploy(t.b2, "2");
  CHECK(t.Logged("3 unchanged"));
  CHECK(t.Logged("linked from 1.0-1-"));
  for (const char* same : {"u/one.txt", "u/two.txt", "bin/run"})
    CHECK(Inode(t.r2 / same) == Inode(t.r1 / same));
  for (const char* own : {"changed.txt", "mode.txt"}) CHECK(Inode(t.r2 / own) != Inode(t.r1 / own));

  // The same build deployed fresh to another target: the same tree.
  TwoBuilds fresh;
  fresh.Deploy(fresh.b2, "2");
  CHECK_FALSE(fresh.Logged("linked from"));
  CHECK(SnapshotTree(t.root / "current/") == SnapshotTree(fresh.root / "current/"));
  // Build 1's release is as it was extracted, so the rollback is only the
  // switch, and so is going forward again.
  t.Deploy(t.b1, "1");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  CHECK(ReadFile(t.root / "current/changed.txt") == "version 1\n");
  t.Deploy(t.b2, "2");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
}

// Changes a shared file through build 2's release the way `change` says,
// then re-deploys build 1 and build 2: both must come back exactly.
void ChangeThroughTheOtherRelease(const std::function<void(const fs::path&)>& change) {
  TwoBuilds t;
  t.Deploy(t.b1, "1");
  t.Deploy(t.b2, "2");
  const fs::path shared = t.root / "current/u/one.txt";
  REQUIRE(Inode(shared) == Inode(t.r1 / "u/one.txt"));
  change(shared);

  TwoBuilds fresh;
  t.RedeployCatchesChange(fresh, t.b1, "1");
  CHECK_FALSE(t.Logged("switching only"));
  t.RedeployCatchesChange(fresh, t.b2, "2");
}

TEST_CASE("a file written in place through one release is caught when re-deploying the other") {
  ChangeThroughTheOtherRelease([](const fs::path& p) {
    struct stat before;
    REQUIRE(::lstat(p.c_str(), &before) == 0);
    int fd = ::open(p.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, "X", 1, 0) == 1);  // same size
    // The modification time put back: only the ctime tells.
    timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::futimens(fd, times) == 0);
    ::close(fd);
  });
}

TEST_CASE("a file chmod-ed through one release is caught when re-deploying the other") {
  ChangeThroughTheOtherRelease(
      [](const fs::path& p) { fs::permissions(p, fs::perms(0600), fs::perm_options::replace); });
}

TEST_CASE(
    "write-file and delete through current replace shared files, never change them in place") {
  TwoBuilds t;
  t.Deploy(t.b1, "1");
  t.Deploy(t.b2, "2");
  WriteFileOp write{"current/u/one.txt", "configured\n", 0644};
  REQUIRE(t.Run(write).succeeded());
  REQUIRE(t.Run(DeleteOp{"current/u/two.txt"}).succeeded());
  CHECK(ReadFile(t.root / "current/u/one.txt") == "configured\n");
  // Build 1's files are untouched, and its stamp says so: only the switch.
  CHECK(ReadFile(t.r1 / "u/one.txt") == "unchanged one\n");
  CHECK(ReadFile(t.r1 / "u/two.txt") == "unchanged two\n");
  t.Deploy(t.b1, "1");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  // Build 2's release was changed by the steps: extracted again, exactly.
  t.Deploy(t.b2, "2");
  CHECK(t.Logged("was changed on the target after it was extracted"));
  CHECK(ReadFile(t.root / "current/u/one.txt") == "unchanged one\n");
  CHECK(ReadFile(t.root / "current/u/two.txt") == "unchanged two\n");
}

TEST_CASE("pruning a release that shares files leaves the kept ones switch-only") {
  TwoBuilds t;
  Files build3 = kBuild2;
  build3["changed.txt"] = "version 3\n";
  const std::string b3 = t.source.Add(build3, kModes2);
  t.Deploy(t.b1, "1", 2);
  t.Deploy(t.b2, "2", 2);
  t.Deploy(b3, "3", 2);
  CHECK(t.Logged("removed old release 1.0-1-"));
  CHECK_FALSE(fs::exists(t.r1));
  const fs::path manifests = t.root / ".reprise/meta/manifests";
  CHECK_FALSE(fs::exists(manifests / (t.r1.filename().string() + ".json")));
  CHECK(fs::exists(manifests / (t.r2.filename().string() + ".json")));
  CHECK(Inode(t.Release("3", b3) / "u/one.txt") == Inode(t.r2 / "u/one.txt"));
  t.Deploy(t.b2, "2", 2);
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  t.Deploy(b3, "3", 2);
  CHECK(t.Logged("unchanged since it was verified: switching only"));
}

TEST_CASE("a release changed on the target is not a source of reused files") {
  TwoBuilds t;
  t.Deploy(t.b1, "1");
  // Edited in place (an inode of its own: nothing shares it yet).
  std::ofstream(t.root / "current/u/one.txt", std::ios::binary | std::ios::trunc) << "edited\n";
  t.Deploy(t.b2, "2");
  CHECK_FALSE(t.Logged("linked from"));
  CHECK(ReadFile(t.root / "current/u/one.txt") == "unchanged one\n");
}

bool Watched(AgentRunner& runner, const fs::path& root, const fs::path& release) {
  return runner.WatchedUnchanged(root.string(), release.filename().string());
}

TEST_CASE("watched releases: re-deploys skip the walk until a change through a shared link") {
  TwoBuilds t;
  t.Deploy(t.b1, "1");
  t.Deploy(t.b2, "2");
  // Both armed once the update is over (linking moved build 1's ctimes).
  REQUIRE(testing::WaitUntil([&] { return Watched(t.runner, t.root, t.r1); }));
  REQUIRE(testing::WaitUntil([&] { return Watched(t.runner, t.root, t.r2); }));
  t.Deploy(t.b1, "1");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  REQUIRE(testing::WaitUntil([&] { return Watched(t.runner, t.root, t.r2); }));

  // Written through build 1's (live) path: build 2's release holds the inode.
  WriteInPlace(t.root / "current/u/one.txt");
  CHECK_FALSE(Watched(t.runner, t.root, t.r2));
  TwoBuilds fresh;
  t.RedeployCatchesChange(fresh, t.b2, "2");
  t.RedeployCatchesChange(fresh, t.b1, "1");
}

TEST_CASE("a change made while the agent was down is caught by the next re-deploy") {
  TwoBuilds t;
  {
    // The agent before its restart: both releases verified and watched.
    AgentRunner before{RunnerOptions{t.tmp.path(), false, {}, 100}};
    RunnerLog quiet = [](LogLevel, std::string_view) {};
    for (const auto& [sha, build] : {std::pair{t.b1, "1"}, std::pair{t.b2, "2"}})
      REQUIRE(before
                  .Run(t.root.string(), DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, 3},
                       DeployLabel{"1.0", build}, t.source, quiet, t.cancel)
                  .succeeded());
    REQUIRE(testing::WaitUntil([&] { return Watched(before, t.root, t.r1); }));
  }
  // Nobody watches now: written through build 2's release, shared with 1.
  WriteInPlace(t.r2 / "u/two.txt");
  CHECK_FALSE(Watched(t.runner, t.root, t.r1));  // the restarted agent trusts nothing yet
  t.Deploy(t.b1, "1");
  CHECK(t.Logged("was changed on the target after it was extracted"));
  TwoBuilds fresh;
  fresh.Deploy(fresh.b1, "1");
  CHECK(SnapshotTree(t.root / "current/") == SnapshotTree(fresh.root / "current/"));
}

// A runner that leaves a deploy's stamps pending until the next operation on
// the root (none in the background), on `t`'s target.
struct Held {
  TwoBuilds& t;
  AgentRunner runner{RunnerOptions{t.tmp.path(), false, {}, 100, true, false}};
  void Deploy(const std::string& sha, const char* build) {
    t.lines.clear();
    RunnerLog log = [this](LogLevel, std::string_view text) { t.lines.emplace_back(text); };
    auto out = runner.Run(t.root.string(), DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, 3},
                          DeployLabel{"1.0", build}, t.source, log, t.cancel);
    REQUIRE_MESSAGE(out.succeeded(), out.message);
  }
};

TEST_CASE("stamps taken after the deploy reported: the releases it touched stay switch-only") {
  TwoBuilds t;
  Held held{t};
  held.Deploy(t.b1, "1");
  held.Deploy(t.b2, "2");
  held.Deploy(t.b1, "1");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  held.Deploy(t.b2, "2");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
}

TEST_CASE("a change after the switch, before the stamps were taken, is caught") {
  SUBCASE("written in place through the live release, shared with the previous one") {
    TwoBuilds t;
    Held held{t};
    held.Deploy(t.b1, "1");
    held.Deploy(t.b2, "2");
    WriteInPlace(t.root / "current/u/one.txt");
    held.Deploy(t.b1, "1");
    CHECK(t.Logged("was changed on the target after it was extracted"));
    held.Deploy(t.b2, "2");
    CHECK(t.Logged("was changed on the target after it was extracted"));
    TwoBuilds fresh;
    fresh.Deploy(fresh.b2, "2");
    CHECK(SnapshotTree(t.root / "current/") == SnapshotTree(fresh.root / "current/"));
  }
  SUBCASE("a file removed right below the new release, the other release untouched") {
    TwoBuilds t;
    Held held{t};
    held.Deploy(t.b1, "1");
    held.Deploy(t.b2, "2");
    fs::remove(t.r2 / "added.txt");
    held.Deploy(t.b1, "1");
    CHECK(t.Logged("unchanged since it was verified: switching only"));
    held.Deploy(t.b2, "2");
    CHECK(t.Logged("was changed on the target after it was extracted"));
    CHECK(ReadFile(t.root / "current/added.txt") == "only in build 2\n");
  }
  SUBCASE("settled in the background: caught whichever comes first, the stamps or the change") {
    TwoBuilds t;
    t.Deploy(t.b1, "1");
    t.Deploy(t.b2, "2");
    WriteInPlace(t.root / "current/changed.txt");  // build 2's own file
    t.Deploy(t.b1, "1");
    CHECK(t.Logged("unchanged since it was verified: switching only"));
    t.Deploy(t.b2, "2");
    CHECK(t.Logged("was changed on the target after it was extracted"));
    CHECK(ReadFile(t.root / "current/changed.txt") == "version 2\n");
  }
}

TEST_CASE("an agent stopped before a deploy's stamps were taken extracts again, never trusts") {
  TwoBuilds t;
  {
    Held crashed{t};
    crashed.Deploy(t.b1, "1");
    crashed.Deploy(t.b2, "2");
  }  // its pending stamps are lost, as in a crash
  for (const auto& [sha, build] : {std::pair{t.b1, "1"}, std::pair{t.b2, "2"}}) {
    t.Deploy(sha, build);
    CHECK(t.Logged("was changed on the target after it was extracted"));
  }
  TwoBuilds fresh;
  fresh.Deploy(fresh.b2, "2");
  CHECK(SnapshotTree(t.root / "current/") == SnapshotTree(fresh.root / "current/"));
}

TEST_CASE("with the watch off, re-deploys walk the tree and still catch changes") {
  TwoBuilds t;
  AgentRunner unwatched{RunnerOptions{t.tmp.path(), false, {}, 100, false}};
  RunnerLog log = [&](LogLevel, std::string_view text) { t.lines.emplace_back(text); };
  auto deploy = [&](const std::string& sha, const char* build) {
    t.lines.clear();
    REQUIRE(unwatched
                .Run(t.root.string(), DeployArtifactOp{"web", sha, "", DeployMode::kAtomic, 3},
                     DeployLabel{"1.0", build}, t.source, log, t.cancel)
                .succeeded());
  };
  deploy(t.b1, "1");
  deploy(t.b2, "2");
  CHECK_FALSE(Watched(unwatched, t.root, t.r1));
  deploy(t.b1, "1");
  CHECK(t.Logged("unchanged since it was verified: switching only"));
  WriteInPlace(t.root / "current/u/one.txt");
  deploy(t.b2, "2");
  CHECK(t.Logged("was changed on the target after it was extracted"));
}

}  // namespace
}  // namespace reprise
