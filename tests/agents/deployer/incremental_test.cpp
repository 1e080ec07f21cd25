// Incremental extraction (ExtractOptions::reuse): files unchanged since a
// tree on disk are hard-linked from it, and the result is exactly what a
// fresh extraction writes.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "tests/agents/deployer/archive_builder.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace reprise::testing;

struct stat Lstat(const fs::path& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

// False too when `b` does not exist.
bool SameInode(const fs::path& a, const fs::path& b) {
  struct stat other;
  if (::lstat(b.c_str(), &other) != 0) return false;
  return Lstat(a).st_ino == other.st_ino && Lstat(a).st_dev == other.st_dev;
}

// Build 1 and build 2 of a tree: unchanged, changed, deleted, added,
// mode-changed, symlink, type-changed (file <-> dir, file <-> symlink) and
// hardlinked entries, and one file larger than what is held in memory.
std::vector<RawEntry> Build1() {
  return {Dir("bin", 0755),
          File("bin/tool", "#!/bin/sh\necho tool\n", 0755),
          File("bin/mode", "same bytes, new mode\n", 0644),
          Dir("conf"),
          File("conf/app.ini", "port=8080\n"),
          File("conf/changed.ini", "version=1\n"),
          File("conf/deleted.ini", "gone in build 2\n"),
          File("index.html", "<h1>hello</h1>\n"),
          File("same-size.txt", "aaaa"),
          File("to-dir", "a file in build 1\n"),
          File("to-link", "a file in build 1\n"),
          Symlink("latest", "index.html"),
          Dir("was-dir"),
          File("was-dir/inner", "inner\n"),
          File("big.bin", std::string((9 << 20) + 17, 'x')),
          File("data/one", "shared content\n"),
          Hardlink("data/two", "data/one")};
}

std::vector<RawEntry> Build2() {
  return {Dir("bin", 0755),
          File("bin/tool", "#!/bin/sh\necho tool\n", 0755),
          File("bin/mode", "same bytes, new mode\n", 0755),
          Dir("conf"),
          File("conf/app.ini", "port=8080\n"),
          File("conf/changed.ini", "version=2\n"),
          File("conf/added.ini", "new in build 2\n"),
          File("index.html", "<h1>hello</h1>\n"),
          File("same-size.txt", "bbbb"),
          Dir("to-dir"),
          File("to-dir/child", "now a directory\n"),
          Symlink("to-link", "index.html"),
          Symlink("latest", "conf/app.ini"),
          File("was-dir", "now a file\n"),
          File("big.bin", std::string((9 << 20) + 17, 'x')),
          File("data/one", "shared content\n"),
          Hardlink("data/two", "data/one"),
          File("data/copy", "shared content\n")};
}

struct Trees {
  TempDir tmp;
  fs::path a1 = tmp.path() / "b1.tar.gz";
  fs::path a2 = tmp.path() / "b2.tar.gz";
  fs::path r1 = tmp.path() / "r1";
  Manifest m1;
  Trees() {
    WriteArchive(a1, ArchiveKind::kTarGz, Build1());
    WriteArchive(a2, ArchiveKind::kTarGz, Build2());
    auto m = ExtractArchive(a1, r1);
    REQUIRE_MESSAGE(m.ok(), m.status().message());
    m1 = *m;
  }
};

TEST_CASE("an incremental extraction has the manifest and bytes of a fresh one") {
  Trees t;
  const fs::path fresh = t.tmp.path() / "fresh";
  const fs::path inc = t.tmp.path() / "inc";
  auto want = ExtractArchive(t.a2, fresh);
  REQUIRE_MESSAGE(want.ok(), want.status().message());
  ReuseSource source = ReuseSource::FromManifest(t.r1, t.m1);
  ExtractStats stats;
  auto got = ExtractArchive(t.a2, inc, {}, {false, true, &source, &stats});
  REQUIRE_MESSAGE(got.ok(), got.status().message());

  CHECK(*got == *want);
  CHECK(SnapshotTree(inc) == SnapshotTree(fresh));
  auto report = ValidateTree(inc, *want);
  REQUIRE(report.ok());
  CHECK(report->ok());

  // Unchanged files are links to build 1's; everything else is its own.
  for (const char* same : {"bin/tool", "conf/app.ini", "index.html", "data/one", "data/two"}) {
    INFO(std::string(same));
    CHECK(SameInode(inc / same, t.r1 / same));
  }
  // data/copy has the content of data/one but another path: written.
  for (const char* own : {"bin/mode", "conf/changed.ini", "conf/added.ini", "same-size.txt",
                          "was-dir", "data/copy", "big.bin"}) {
    INFO(std::string(own));
    CHECK_FALSE(SameInode(inc / own, t.r1 / own));
  }
  CHECK(SameInode(inc / "data/one", inc / "data/two"));
  CHECK(stats.linked_files == 4);  // data/two is the archive's own hardlink to data/one
  CHECK(stats.linked_bytes == 20 + 10 + 15 + 15);
  // Build 1's tree is untouched, modes included.
  CHECK((Lstat(t.r1 / "bin/mode").st_mode & 07777) == 0644);
  CHECK(ReadFile(t.r1 / "conf/changed.ini") == "version=1\n");
}

TEST_CASE(
    "a file under the reused tree that is not what its manifest says is written, not linked") {
  Trees t;
  // A symlink where build 1 had index.html, and bin/tool with another mode:
  // neither may end up in the new tree.
  fs::remove(t.r1 / "index.html");
  fs::create_symlink("conf/app.ini", t.r1 / "index.html");
  fs::permissions(t.r1 / "bin/tool", fs::perms(0700));
  ReuseSource source = ReuseSource::FromManifest(t.r1, t.m1);
  ExtractStats stats;
  const fs::path inc = t.tmp.path() / "inc";
  auto got = ExtractArchive(t.a2, inc, {}, {false, true, &source, &stats});
  REQUIRE_MESSAGE(got.ok(), got.status().message());
  const fs::path fresh = t.tmp.path() / "fresh";
  REQUIRE(ExtractArchive(t.a2, fresh).ok());
  CHECK(SnapshotTree(inc) == SnapshotTree(fresh));
  CHECK_FALSE(SameInode(inc / "index.html", t.r1 / "index.html"));
  CHECK_FALSE(SameInode(inc / "bin/tool", t.r1 / "bin/tool"));
  CHECK(stats.linked_files == 2);  // conf/app.ini, data/one
}

TEST_CASE("an incremental extraction that fails leaves nothing and the reused tree intact") {
  Trees t;
  auto entries = Build2();
  entries.push_back(File("../escape", "no"));
  const fs::path bad = t.tmp.path() / "bad.tar.gz";
  WriteArchive(bad, ArchiveKind::kTarGz, entries);
  ReuseSource source = ReuseSource::FromManifest(t.r1, t.m1);
  const fs::path inc = t.tmp.path() / "inc";
  auto before = SnapshotTree(t.r1);
  auto got = ExtractArchive(bad, inc, {}, {false, true, &source, nullptr});
  CHECK(got.status().code() == Code::kUnsafe);
  CHECK_FALSE(fs::exists(inc));
  CHECK(SnapshotTree(t.r1) == before);
  CHECK(Lstat(t.r1 / "index.html").st_nlink == 1);
}

TEST_CASE("a reuse directory that does not exist only means nothing is reused") {
  Trees t;
  ReuseSource source = ReuseSource::FromManifest(t.tmp.path() / "gone", t.m1);
  ExtractStats stats;
  const fs::path inc = t.tmp.path() / "inc";
  auto got = ExtractArchive(t.a2, inc, {}, {false, true, &source, &stats});
  REQUIRE_MESSAGE(got.ok(), got.status().message());
  CHECK(stats.linked_files == 0);
  const fs::path fresh = t.tmp.path() / "fresh";
  REQUIRE(ExtractArchive(t.a2, fresh).ok());
  CHECK(SnapshotTree(inc) == SnapshotTree(fresh));
}

}  // namespace
}  // namespace reprise
