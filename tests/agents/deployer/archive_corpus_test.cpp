// The malicious-archive corpus: every archive here must be refused by both
// ScanArchive and ExtractArchive, naming the offending entry, without touching
// anything outside the destination.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "tests/agents/deployer/archive_builder.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace reprise::testing;

struct BadArchive {
  std::string name;
  ArchiveKind kind;
  std::vector<RawEntry> entries;
  Code code;
  std::string names;  // a substring the message must contain (the entry)
  ArchiveLimits limits = {};
  std::function<void(const fs::path&)> patch = nullptr;
};

std::string Zeros(size_t n) { return std::string(n, '\0'); }

std::string DeepPath(int depth) {
  std::string p;
  for (int i = 0; i < depth; ++i) p += "d/";
  return p + "f";
}

std::vector<BadArchive> Corpus() {
  ArchiveLimits small_ratio;
  small_ratio.ratio_check_min_bytes = 1 << 20;
  ArchiveLimits few_entries;
  few_entries.max_entries = 3;
  ArchiveLimits small_entry;
  small_entry.max_entry_bytes = 1000;
  ArchiveLimits small_total;
  small_total.max_total_bytes = 1500;

  const auto T = ArchiveKind::kTar;
  const auto G = ArchiveKind::kTarGz;
  const auto Z = ArchiveKind::kZip;
  const auto U = Code::kUnsafe;
  std::vector<BadArchive> c = {
      {"traversal", T, {File("../evil", "x")}, U, "'../evil'"},
      {"traversal in the middle", T, {File("a/../../evil", "x")}, U, "'a/../../evil'"},
      {"traversal gz", G, {File("ok", "1"), File("sub/../../../evil", "x")}, U, "../../../evil"},
      {"traversal zip", Z, {File("../evil", "x")}, U, "'../evil'"},
      {"dotdot directory", T, {Dir("..")}, U, "'..'"},
      {"absolute", T, {File("/tmp/reprise-evil", "x")}, U, "'/tmp/reprise-evil'"},
      {"absolute zip", Z, {File("/tmp/reprise-evil", "x")}, U, "'/tmp/reprise-evil'"},
      {"drive path", T, {File("C:/evil", "x")}, U, "'C:/evil'"},
      {"drive relative", Z, {File("c:evil", "x")}, U, "'c:evil'"},
      {"backslash", T, {File("a\\..\\..\\evil", "x")}, U, "evil"},
      {"symlink absolute", T, {Symlink("etc", "/etc")}, U, "'etc'"},
      {"symlink up", T, {Symlink("up", "../outside")}, U, "'up'"},
      {"symlink up from subdir", T, {Dir("a"), Symlink("a/link", "../../outside")}, U, "'a/link'"},
      {"symlink up zip", Z, {Symlink("up", "../outside")}, U, "'up'"},
      {"symlink chain through earlier symlink",
       T,
       {Symlink("here", "."), Symlink("out", "here/../outside")},
       U,
       "'out'"},
      {"symlink escapes through later symlink",
       T,
       {Symlink("out", "later/../outside"), Symlink("later", ".")},
       U,
       "'out'"},
      {"symlink loop", T, {Symlink("a", "b"), Symlink("b", "a")}, U, "loop"},
      {"symlink empty target", T, {Symlink("empty", "")}, U, "'empty'"},
      {"file through symlink inside",
       T,
       {Dir("sub"), Symlink("link", "sub"), File("link/evil", "x")},
       U,
       "'link/evil'"},
      {"file through symlink outside",
       T,
       {Symlink("link", "../outside"), File("link/victim.txt", "pwned")},
       U,
       "'link"},
      {"file through symlink gz",
       G,
       {Symlink("link", "."), File("link/x", "pwned")},
       U,
       "'link/x'"},
      {"directory then symlink", T, {Dir("a"), Symlink("a", "../outside")}, U, "'a'"},
      {"implied directory then symlink",
       T,
       {File("a/x", "1"), Symlink("a", "../outside")},
       U,
       "'a'"},
      {"symlink then directory", T, {Symlink("a", "b"), Dir("a")}, U, "'a'"},
      {"hardlink outside", T, {Hardlink("h", "../outside/victim.txt")}, U, "'h'"},
      {"hardlink absolute", T, {Hardlink("h", "/etc/passwd")}, U, "'h'"},
      {"hardlink to symlink", T, {File("f", "1"), Symlink("s", "f"), Hardlink("h", "s")}, U, "'h'"},
      {"hardlink to missing", T, {Hardlink("h", "nothing")}, U, "'h'"},
      {"hardlink to directory", T, {Dir("d"), Hardlink("h", "d")}, U, "'h'"},
      {"hardlink then write through",
       T,
       {File("f", "1"), Hardlink("h", "f"), File("h", "2")},
       U,
       "'h'"},
      {"character device", T, {Special("dev/null", RawType::kCharDevice)}, U, "'dev/null'"},
      {"block device", T, {Special("sda", RawType::kBlockDevice)}, U, "'sda'"},
      {"fifo", T, {Special("pipe", RawType::kFifo)}, U, "'pipe'"},
      {"socket in zip",
       Z,
       {File("sock", "")},
       U,
       "'sock'",
       {},
       [](const fs::path& p) { PatchZipUnixMode(p, "sock", 0140644); }},
      {"character device in zip",
       Z,
       {File("tty", "")},
       U,
       "'tty'",
       {},
       [](const fs::path& p) { PatchZipUnixMode(p, "tty", 020644); }},
      {"setuid file", T, {File("su", "x", 04755)}, U, "'su'"},
      {"setgid directory", T, {Dir("shared", 02775)}, U, "'shared"},
      {"sticky directory", T, {Dir("tmp", 01777)}, U, "'tmp"},
      {"setuid zip", Z, {File("su", "x", 04755)}, U, "'su'"},
      {"duplicate file", T, {File("a", "1"), File("a", "2")}, U, "'a'"},
      {"duplicate after normalising", T, {File("./a/b", "1"), File("a//b/", "2")}, U, "'a//b/'"},
      {"duplicate zip", Z, {File("a", "1"), File("./a", "2")}, U, "'./a'"},
      {"duplicate directory", T, {Dir("d"), Dir("./d/")}, U, "'./d/'"},
      {"file then directory", T, {File("x", "1"), Dir("x")}, U, "'x'"},
      {"file as parent", T, {File("f", "1"), File("f/g", "2")}, U, "'f/g'"},
      {"dot as file", T, {File(".", "x")}, U, "'.'"},
      {"component too long", T, {File(std::string(300, 'a'), "x")}, U, "aaaa"},
      {"path too deep", T, {File(DeepPath(300), "x")}, U, "too deep"},
      {"implied directories count as entries",
       T,
       {File("a/b/c/d", "")},
       U,
       "entries",
       few_entries},
      {"zip bomb tar.gz", G, {File("bomb", Zeros(8 << 20))}, U, "'bomb'", small_ratio},
      {"zip bomb zip", Z, {File("bomb", Zeros(8 << 20))}, U, "'bomb'", small_ratio},
      {"too many entries",
       T,
       {File("1", ""), File("2", ""), File("3", ""), File("4", "")},
       U,
       "entries",
       few_entries},
      {"entry too large",
       T,
       {File("big", std::string(2000, 'x'))},
       U,
       "'big'",
       small_entry},
      {"total too large",
       T,
       {File("a", std::string(1000, 'x')), File("b", std::string(1000, 'y'))},
       U,
       "'b'",
       small_total},
      {"tar size lie (bigger than the data)",
       T,
       {File("liar", "short"), File("after", "x")},
       Code::kInvalidArgument,
       "'liar'",
       {},
       [](const fs::path& p) { PatchTarSize(p, "liar", 1 << 20); }},
      {"zip size lie",
       Z,
       {File("liar", std::string(5000, 'q'))},
       U,
       "'liar'",
       {},
       [](const fs::path& p) { PatchZipUncompressedSize(p, "liar", 10); }},
  };
  return c;
}

// parent/outside/victim.txt, parent/outside/sub/, top.txt; dest is parent/dest.
struct Sandbox {
  TempDir tmp;
  fs::path parent = tmp.path() / "parent";
  fs::path outside = parent / "outside";
  fs::path dest = parent / "dest";
  fs::path archive_dir = tmp.path() / "archives";
  Sandbox() {
    fs::create_directories(outside / "sub");
    fs::create_directories(archive_dir);
    WriteBytes(outside / "victim.txt", "precious");
    WriteBytes(tmp.path() / "top.txt", "top");
  }
};

TEST_CASE("the malicious corpus has at least 30 archives") { CHECK(Corpus().size() >= 30); }

TEST_CASE("every malicious archive is refused by ScanArchive and ExtractArchive") {
  Sandbox box;
  int index = 0;
  for (const BadArchive& bad : Corpus()) {
    CAPTURE(bad.name);
    fs::path archive =
        box.archive_dir / ("bad" + std::to_string(index++) + "." + KindName(bad.kind));
    WriteArchive(archive, bad.kind, bad.entries);
    if (bad.patch) bad.patch(archive);
    const auto before = SnapshotTree(box.tmp.path());

    Result<Manifest> scanned = ScanArchive(archive, bad.limits);
    REQUIRE_FALSE(scanned.ok());
    CAPTURE(scanned.status().ToString());
    CHECK(scanned.status().code() == bad.code);
    CHECK(scanned.status().message().find(bad.names) != std::string::npos);

    // Into a destination the call creates: removed again.
    Result<Manifest> extracted = ExtractArchive(archive, box.dest, bad.limits);
    REQUIRE_FALSE(extracted.ok());
    CAPTURE(extracted.status().ToString());
    CHECK(extracted.status().code() == bad.code);
    CHECK(extracted.status().message().find(bad.names) != std::string::npos);
    CHECK_FALSE(fs::exists(fs::symlink_status(box.dest)));
    CHECK(SnapshotTree(box.tmp.path()) == before);

    // Into an existing empty destination: left empty.
    fs::create_directory(box.dest);
    Result<Manifest> again = ExtractArchive(archive, box.dest, bad.limits, {true, true});
    REQUIRE_FALSE(again.ok());
    CHECK(again.status().code() == bad.code);
    CHECK(fs::is_empty(box.dest));
    fs::remove(box.dest);
    CHECK(SnapshotTree(box.tmp.path()) == before);
    CHECK(ReadBytes(box.outside / "victim.txt") == "precious");
  }
}

// Plants symlinks inside dest while extraction runs (from the progress
// callback, between entries): O_NOFOLLOW / O_EXCL must stop every write.
TEST_CASE("symlinks planted inside dest during extraction cannot redirect writes") {
  Sandbox box;
  fs::path archive = box.archive_dir / "planted.tar";
  WriteArchive(archive, ArchiveKind::kTar,
               {Dir("a"), Dir("b"), File("a/x", "attack"), File("b/victim.txt", "attack")});
  const auto before = SnapshotTree(box.tmp.path());

  SUBCASE("a directory swapped for a symlink to outside") {
    ExtractProgress plant = [&](uint64_t entries, uint64_t) {
      if (entries == 2) {
        fs::rename(box.dest / "a", box.dest / "a.moved");
        fs::create_directory_symlink("../outside", box.dest / "a");
      }
      return true;
    };
    Result<Manifest> r = ExtractArchive(archive, box.dest, {}, {}, plant);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kIo);
  }
  SUBCASE("a file name taken by a symlink to a file outside") {
    ExtractProgress plant = [&](uint64_t entries, uint64_t) {
      if (entries == 3) fs::create_symlink("../../outside/victim.txt", box.dest / "b/victim.txt");
      return true;
    };
    Result<Manifest> r = ExtractArchive(archive, box.dest, {}, {}, plant);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kIo);
  }
  CHECK_FALSE(fs::exists(fs::symlink_status(box.dest)));
  CHECK(SnapshotTree(box.tmp.path()) == before);
  CHECK(ReadBytes(box.outside / "victim.txt") == "precious");
}

TEST_CASE("garbage and truncated archives are invalid arguments") {
  Sandbox box;
  fs::path garbage = box.archive_dir / "garbage.bin";
  WriteBytes(garbage, std::string(4096, 'G'));
  CHECK(ScanArchive(garbage).status().code() == Code::kInvalidArgument);
  CHECK(ExtractArchive(garbage, box.dest).status().code() == Code::kInvalidArgument);
  CHECK_FALSE(fs::exists(box.dest));

  // A plain gzip of something that is not a tar: no "raw" format.
  fs::path tgz = box.archive_dir / "good.tar.gz";
  WriteArchive(tgz, ArchiveKind::kTarGz, {File("a", std::string(100000, 'a'))});
  std::string bytes = ReadBytes(tgz);
  fs::path truncated = box.archive_dir / "truncated.tar.gz";
  WriteBytes(truncated, bytes.substr(0, bytes.size() / 2));
  Result<Manifest> r = ScanArchive(truncated);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(ExtractArchive(truncated, box.dest).status().code() == Code::kInvalidArgument);
  CHECK_FALSE(fs::exists(box.dest));

  CHECK(ScanArchive(box.archive_dir / "missing.tar").status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace reprise
