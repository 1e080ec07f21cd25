// The malicious-archive corpus (archive_corpus.h): every archive must be
// refused by ScanArchive, by the streaming scan uploads use and by
// ExtractArchive, naming the offending entry, without touching anything
// outside the destination.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "tests/agents/deployer/archive_corpus.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace reprise::testing;

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

TEST_CASE("the malicious corpus has at least 30 archives") {
  CHECK(MaliciousCorpus().size() >= 30);
}

TEST_CASE(
    "every malicious archive is refused by ScanArchive, the streaming scan and ExtractArchive") {
  Sandbox box;
  size_t index = 0;
  for (const BadArchive& bad : MaliciousCorpus()) {
    CAPTURE(bad.name);
    fs::path archive = box.archive_dir / BadArchiveFileName(index++, bad);
    WriteBadArchive(bad, archive);
    const auto before = SnapshotTree(box.tmp.path());

    Result<Manifest> scanned = ScanArchive(archive, bad.limits);
    REQUIRE_FALSE(scanned.ok());
    CAPTURE(scanned.status().ToString());
    CHECK(scanned.status().code() == bad.code);
    CHECK(scanned.status().message().find(bad.names) != std::string::npos);

    // As an upload reads it, in small and odd-sized pieces: the same answer.
    for (size_t chunk : {size_t{1000}, size_t{4096}, size_t{65537}}) {
      CAPTURE(chunk);
      Result<Manifest> streamed = ScanAsStream(archive, bad.limits, chunk);
      REQUIRE_FALSE(streamed.ok());
      CHECK(streamed.status().code() == scanned.status().code());
      CHECK(streamed.status().message() == scanned.status().message());
    }

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
