// Good archives: round trips, manifests, modes, links, ValidateTree, and the
// entry rules on their own.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "agents/deployer/archive.h"
#include "agents/deployer/entry_rules.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "tests/agents/deployer/archive_corpus.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace reprise::testing;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

unsigned ModeOf(const fs::path& p) {
  struct stat st;
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

const ManifestEntry* Find(const Manifest& m, const std::string& path) {
  for (const ManifestEntry& e : m.entries)
    if (e.path == path) return &e;
  return nullptr;
}

std::vector<RawEntry> GoodEntries() {
  return {
      Dir("./"),
      Dir("./bin", 0755),
      File("./bin/tool", "#!/bin/sh\necho hi\n", 0755),
      File("./bin/secret.conf", "password=1", 0600),
      File("lib/libx.so", RandomBytes(300000, 7), 0644),  // implies lib/
      File("empty", "", 0644),
      File("readonly.txt", "ro", 0444),
      Dir("share/doc/", 0750),
      File("share/doc/README", std::string(70000, 'r')),
      Symlink("current", "bin"),
      Symlink("share/tool", "../bin/tool"),
      Symlink("share/dangling", "nowhere"),
      Symlink("share/self", "."),
      Symlink("share/via", "self/doc/README"),
  };
}

// The streaming scan (in `chunk`-byte pieces) refuses `archive` with `code`
// and the message ScanArchive gives for the complete file.
void CheckStreamRefusedLikeFile(const std::filesystem::path& archive, const ArchiveLimits& limits,
                                size_t chunk, Code code) {
  CAPTURE(archive.filename().string());
  Result<Manifest> scanned = ScanArchive(archive, limits);
  Result<Manifest> streamed = ScanAsStream(archive, limits, chunk);
  REQUIRE_FALSE(scanned.ok());
  REQUIRE_FALSE(streamed.ok());
  CHECK(streamed.status().code() == code);
  CHECK(streamed.status().message() == scanned.status().message());
}

TEST_CASE("good archives round-trip: tar, tar.gz, gnutar, zip") {
  for (ArchiveKind kind :
       {ArchiveKind::kTar, ArchiveKind::kTarGz, ArchiveKind::kGnuTar, ArchiveKind::kZip}) {
    CAPTURE(KindName(kind));
    TempDir tmp;
    fs::path archive = tmp.path() / (std::string("good.") + KindName(kind));
    std::vector<RawEntry> entries = GoodEntries();
    if (kind != ArchiveKind::kZip) entries.push_back(Hardlink("lib/libx.so.1", "lib/libx.so"));
    WriteArchive(archive, kind, entries);

    Result<Manifest> scanned = ScanArchive(archive);
    REQUIRE_MESSAGE(scanned.ok(), scanned.status().ToString());
    fs::path dest = tmp.path() / "dest";
    Result<Manifest> extracted = ExtractArchive(archive, dest, {}, {true, true});
    REQUIRE_MESSAGE(extracted.ok(), extracted.status().ToString());
    CHECK(*scanned == *extracted);
    CHECK(scanned->manifest_hash.size() == 64);

    // Entries, sorted, with implied lib/ and no entry for "./".
    std::vector<std::string> paths;
    for (const ManifestEntry& e : scanned->entries) paths.push_back(e.path);
    CHECK(std::is_sorted(paths.begin(), paths.end()));
    CHECK(Find(*scanned, "") == nullptr);
    REQUIRE(Find(*scanned, "lib") != nullptr);
    CHECK(Find(*scanned, "lib")->type == EntryType::kDirectory);
    CHECK(Find(*scanned, "lib")->mode == 0755);

    // Content and modes.
    for (const RawEntry& r : entries) {
      if (r.type != RawType::kFile) continue;
      Result<std::string> normal = NormaliseEntryPath(r.path);
      REQUIRE(normal.ok());
      CAPTURE(*normal);
      CHECK(ReadBytes(dest / *normal) == r.data);
      CHECK(ModeOf(dest / *normal) == r.mode);
      const ManifestEntry* e = Find(*scanned, *normal);
      REQUIRE(e != nullptr);
      CHECK(e->sha256 == Sha256Hex(r.data));
      CHECK(e->size == r.data.size());
      CHECK(e->mode == r.mode);
    }
    CHECK(ModeOf(dest / "share/doc") == 0750);
    CHECK(fs::read_symlink(dest / "current") == "bin");
    CHECK(fs::read_symlink(dest / "share/tool") == "../bin/tool");
    CHECK(ReadBytes(dest / "share/via") == std::string(70000, 'r'));
    CHECK(fs::is_symlink(dest / "share/dangling"));
    CHECK(scanned->file_count == (kind == ArchiveKind::kZip ? 6u : 7u));
    if (kind != ArchiveKind::kZip) {
      CHECK(fs::equivalent(dest / "lib/libx.so", dest / "lib/libx.so.1"));
      const ManifestEntry* h = Find(*scanned, "lib/libx.so.1");
      REQUIRE(h != nullptr);
      CHECK(h->type == EntryType::kHardlink);
      CHECK(h->link_target == "lib/libx.so");
      CHECK(h->sha256 == Sha256Hex(RandomBytes(300000, 7)));
    }
    Result<ValidationReport> report = ValidateTree(dest, *extracted);
    REQUIRE(report.ok());
    CHECK(report->ok());
  }
}

TEST_CASE("the same content gives the same manifest hash whatever the format") {
  TempDir tmp;
  std::vector<RawEntry> entries = {Dir("d"), File("d/a", "alpha"), File("b", "beta", 0600),
                                   Symlink("l", "d/a")};
  std::string hashes[3];
  int i = 0;
  for (ArchiveKind kind : {ArchiveKind::kTar, ArchiveKind::kTarGz, ArchiveKind::kZip}) {
    fs::path archive = tmp.path() / (std::string("x.") + KindName(kind));
    WriteArchive(archive, kind, entries);
    Result<Manifest> m = ScanArchive(archive);
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    hashes[i++] = m->manifest_hash;
  }
  CHECK(hashes[0] == hashes[1]);
  CHECK(hashes[0] == hashes[2]);
}

TEST_CASE("archives made by bsdtar from a real tree") {
  if (std::system("command -v bsdtar >/dev/null 2>&1") != 0) return;
  TempDir tmp;
  fs::path src = tmp.path() / "src";
  fs::create_directories(src / "app/static");
  WriteBytes(src / "app/index.html", "<html></html>");
  WriteBytes(src / "app/static/site.css", std::string(5000, 'c'));
  fs::create_symlink("app", src / "current");
  fs::create_hard_link(src / "app/index.html", src / "app/index2.html");
  for (const char* flags : {"-cf", "-czf", "-cjf", "-cJf", "--format zip -cf"}) {
    CAPTURE(flags);
    fs::path archive = tmp.path() / "a.bin";
    std::string cmd = "cd '" + src.string() + "' && bsdtar " + flags + " '" + archive.string() +
                      "' . 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    fs::path dest = tmp.path() / "dest";
    Result<Manifest> m = ExtractArchive(archive, dest);
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    CHECK(ReadBytes(dest / "app/static/site.css") == std::string(5000, 'c'));
    CHECK(ReadBytes(dest / "current/index.html") == "<html></html>");
    CHECK(ReadBytes(dest / "app/index2.html") == "<html></html>");
    Result<Manifest> s = ScanArchive(archive);
    REQUIRE(s.ok());
    CHECK(*s == *m);
    fs::remove_all(dest);
    fs::remove(archive);
  }
}

TEST_CASE("non-ASCII names survive in tar and zip") {
  for (ArchiveKind kind : {ArchiveKind::kTar, ArchiveKind::kZip}) {
    CAPTURE(KindName(kind));
    TempDir tmp;
    fs::path archive = tmp.path() / "utf8.bin";
    const std::string name = "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt";
    WriteArchive(archive, kind, {File(name, "x")});
    Result<Manifest> m = ExtractArchive(archive, tmp.path() / "d");
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    CHECK(m->entries.back().path == name);
    CHECK(ReadBytes(tmp.path() / "d" / name) == "x");
  }
}

TEST_CASE("UTF-8 names marked as UTF-8 (zip flag, pax path) are read whatever the locale") {
  const std::string name = "caf\xc3\xa9.txt";
  TempDir tmp;
  fs::path zip = tmp.path() / "flagged.zip";
  WriteRawZip(zip, {{name, "x"}}, /*utf8_flag=*/true);
  fs::path pax = tmp.path() / "pax.tar";
  WriteTarWithSpecialName(pax, 'x', name, "x");
  int n = 0;
  for (const fs::path& archive : {zip, pax}) {
    CAPTURE(archive.filename().string());
    Result<Manifest> scanned = ScanArchive(archive);
    REQUIRE_MESSAGE(scanned.ok(), scanned.status().ToString());
    CHECK(scanned->entries.back().path == name);
    Result<Manifest> buffered = ScanArchiveBuffer(ReadBytes(archive));
    REQUIRE_MESSAGE(buffered.ok(), buffered.status().ToString());
    Result<Manifest> streamed = ScanAsStream(archive, {}, 7);
    REQUIRE_MESSAGE(streamed.ok(), streamed.status().ToString());
    CHECK(streamed->manifest_hash == scanned->manifest_hash);
    fs::path dest = tmp.path() / ("d" + std::to_string(n++));
    Result<Manifest> m = ExtractArchive(archive, dest);
    REQUIRE_MESSAGE(m.ok(), m.status().ToString());
    CHECK(ReadBytes(dest / name) == "x");
  }
}

TEST_CASE("zip names marked as UTF-8 arrive in normalisation form C") {
  TempDir tmp;
  fs::path zip = tmp.path() / "nfd.zip";
  WriteRawZip(zip, {{"cafe\xcc\x81.txt", "x"}}, /*utf8_flag=*/true);  // e + combining acute
  Result<Manifest> m = ScanArchive(zip);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->entries.back().path == "caf\xc3\xa9.txt");
}

TEST_CASE("a name that is not UTF-8 is named with its bytes escaped") {
  CHECK(QuoteEntryName("caf\xc3\xa9") == "'caf\xc3\xa9'");
  CHECK(QuoteEntryName("caf\xe9") == "'caf\\xe9'");
  CHECK(QuoteEntryName(std::string("a\0b", 3)) == "'a\\x00b'");
  CHECK(QuoteEntryName("\xed\xa0\x80") == "'\\xed\\xa0\\x80'");  // a surrogate
  CHECK(QuoteEntryName("\xc0\xaf") == "'\\xc0\\xaf'");           // overlong '/'
  CHECK(IsValidUtf8("\xf0\x9f\x98\x80"));
  CHECK_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  auto st = NormaliseEntryPath("dir/caf\xe9.txt").status();
  CHECK(st.code() == Code::kUnsafe);
  CHECK(st.message() == "unsafe archive entry 'dir/caf\\xe9.txt': name is not valid UTF-8");
}

TEST_CASE("GNU tar sparse files extract with their holes as zeros") {
  if (std::system("tar --version 2>/dev/null | grep -q GNU") != 0) return;
  TempDir tmp;
  fs::path src = tmp.path() / "src";
  fs::create_directory(src);
  {
    std::ofstream f(src / "sparse.img", std::ios::binary);
    f << "head";
    f.seekp(3 << 20);
    f << "middle";
    f.seekp(8 << 20);
    f << "tail";
  }
  // And one that ends in a hole.
  REQUIRE(std::system(("truncate -s 5M '" + (src / "trailing.img").string() + "'").c_str()) == 0);
  fs::path archive = tmp.path() / "sparse.tar";
  REQUIRE(std::system(("tar --sparse -C '" + src.string() + "' -cf '" + archive.string() +
                       "' sparse.img trailing.img")
                          .c_str()) == 0);
  Result<Manifest> m = ExtractArchive(archive, tmp.path() / "d");
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(ReadBytes(tmp.path() / "d/sparse.img") == ReadBytes(src / "sparse.img"));
  CHECK(ReadBytes(tmp.path() / "d/trailing.img") == std::string(5 << 20, '\0'));
  CHECK(ValidateTree(tmp.path() / "d", *m)->ok());
  CHECK(*ScanArchive(archive) == *m);
}

TEST_CASE("ExtractArchive needs an empty or missing destination with an existing parent") {
  TempDir tmp;
  fs::path archive = tmp.path() / "a.tar";
  WriteArchive(archive, ArchiveKind::kTar, {File("a", "1")});
  fs::path full = tmp.path() / "full";
  fs::create_directory(full);
  WriteBytes(full / "keep", "mine");
  CHECK(ExtractArchive(archive, full).status().code() == Code::kFailedPrecondition);
  CHECK(ReadBytes(full / "keep") == "mine");
  CHECK(ExtractArchive(archive, tmp.path() / "no/such/parent").status().code() == Code::kNotFound);
  WriteBytes(tmp.path() / "plain-file", "x");
  CHECK(ExtractArchive(archive, tmp.path() / "plain-file").status().code() ==
        Code::kFailedPrecondition);
  CHECK(ReadBytes(tmp.path() / "plain-file") == "x");
  fs::path empty = tmp.path() / "empty";
  fs::create_directory(empty);
  CHECK(ExtractArchive(archive, empty).ok());
  CHECK(ReadBytes(empty / "a") == "1");
}

TEST_CASE("extraction reports progress and can be cancelled") {
  TempDir tmp;
  fs::path archive = tmp.path() / "p.tar.gz";
  std::vector<RawEntry> entries;
  for (int i = 0; i < 10; ++i)
    entries.push_back(File("f" + std::to_string(i), RandomBytes(3 << 20, i)));
  WriteArchive(archive, ArchiveKind::kTarGz, entries);
  uint64_t last_entries = 0, last_bytes = 0, calls = 0;
  ExtractProgress progress = [&](uint64_t e, uint64_t b) {
    CHECK(e >= last_entries);
    CHECK(b >= last_bytes);
    last_entries = e;
    last_bytes = b;
    ++calls;
    return true;
  };
  REQUIRE(ExtractArchive(archive, tmp.path() / "all", {}, {}, progress).ok());
  CHECK(last_entries == 10);
  CHECK(last_bytes == 30u << 20);
  CHECK(calls > 10);  // per entry and per 8 MiB

  progress = [](uint64_t, uint64_t bytes) { return bytes < (10u << 20); };
  Result<Manifest> cancelled = ExtractArchive(archive, tmp.path() / "cancelled", {}, {}, progress);
  CHECK(cancelled.status().code() == Code::kCancelled);
  CHECK_FALSE(fs::exists(tmp.path() / "cancelled"));
}

TEST_CASE("an empty tar is an empty manifest") {
  TempDir tmp;
  fs::path archive = tmp.path() / "empty.tar";
  WriteArchive(archive, ArchiveKind::kTar, {});
  Result<Manifest> m = ScanArchive(archive);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->entries.empty());
  CHECK(m->file_count == 0);
}

TEST_CASE("ScanArchiveBuffer agrees with ScanArchive") {
  TempDir tmp;
  fs::path archive = tmp.path() / "x.tar.gz";
  WriteArchive(archive, ArchiveKind::kTarGz, GoodEntries());
  Result<Manifest> from_file = ScanArchive(archive);
  Result<Manifest> from_memory = ScanArchiveBuffer(ReadBytes(archive));
  REQUIRE(from_file.ok());
  REQUIRE(from_memory.ok());
  CHECK(*from_file == *from_memory);
}

// Uploads scan while they receive (ArchiveStreamScanner): for every archive the
// result must be exactly ScanArchive's.
TEST_CASE("the streaming scan agrees with ScanArchive") {
  TempDir tmp;
  std::vector<fs::path> archives;
  for (ArchiveKind kind :
       {ArchiveKind::kTar, ArchiveKind::kTarGz, ArchiveKind::kGnuTar, ArchiveKind::kZip}) {
    archives.push_back(tmp.path() / (std::string("good.") + KindName(kind)));
    WriteArchive(archives.back(), kind, GoodEntries());
  }
  archives.push_back(tmp.path() / "empty.tar");
  WriteArchive(archives.back(), ArchiveKind::kTar, {});
  // Larger than the scanner's buffer, so Feed has to wait for it.
  archives.push_back(tmp.path() / "big.tar.gz");
  WriteArchive(archives.back(), ArchiveKind::kTarGz,
               {File("random.bin", RandomBytes(6 << 20, 3)),
                File("zeros", std::string(9 << 20, '\0')), File("small", "s")});
  // Bytes after the end of the tar are not read, by either.
  archives.push_back(tmp.path() / "trailing.tar");
  WriteArchive(archives.back(), ArchiveKind::kTar, {File("a", "1")});
  WriteBytes(archives.back(), ReadBytes(archives.back()) + std::string(10000, 'T'));
  if (std::system("command -v bsdtar >/dev/null 2>&1") == 0) {
    fs::path src = tmp.path() / "src";
    fs::create_directories(src / "app");
    WriteBytes(src / "app/index.html", "<html></html>");
    fs::create_hard_link(src / "app/index.html", src / "app/index2.html");
    fs::create_symlink("app", src / "current");
    const char* flags[] = {"-cjf", "-cJf", "--format zip -cf", "--format pax -czf"};
    for (size_t i = 0; i < std::size(flags); ++i) {
      fs::path archive = tmp.path() / ("bsdtar" + std::to_string(i));
      std::string cmd = "cd '" + src.string() + "' && bsdtar " + flags[i] + " '" +
                        archive.string() + "' . 2>/dev/null";
      if (std::system(cmd.c_str()) == 0) archives.push_back(archive);
    }
  }
  if (std::system("tar --version 2>/dev/null | grep -q GNU") == 0) {
    fs::path sparse = tmp.path() / "sparse.img";
    REQUIRE(std::system(("truncate -s 3M '" + sparse.string() + "' && printf x >> '" +
                         sparse.string() + "'")
                            .c_str()) == 0);
    archives.push_back(tmp.path() / "sparse.tar");
    REQUIRE(std::system(("tar --sparse -C '" + tmp.path().string() + "' -cf '" +
                         archives.back().string() + "' sparse.img")
                            .c_str()) == 0);
  }
  for (const fs::path& archive : archives) {
    CAPTURE(archive.filename().string());
    Result<Manifest> scanned = ScanArchive(archive);
    REQUIRE_MESSAGE(scanned.ok(), scanned.status().ToString());
    for (size_t chunk : {size_t{1}, size_t{511}, size_t{16384}, size_t{3 << 20}}) {
      if (chunk == 1 && fs::file_size(archive) > (1 << 20)) continue;
      CAPTURE(chunk);
      Result<Manifest> streamed = ScanAsStream(archive, {}, chunk);
      REQUIRE_MESSAGE(streamed.ok(), streamed.status().ToString());
      CHECK(*streamed == *scanned);
    }
  }
}

// The stream checks the ratio against the bytes received so far; an archive
// whose beginning compresses far better than the whole is still accepted,
// because the complete file then decides.
TEST_CASE("the streaming scan leaves a ratio refusal to the complete file") {
  TempDir tmp;
  ArchiveLimits limits;
  limits.ratio_check_min_bytes = 1 << 20;
  limits.max_compression_ratio = 4;
  fs::path archive = tmp.path() / "zeros-first.tar.gz";
  WriteArchive(
      archive, ArchiveKind::kTarGz,
      {File("zeros", std::string(8 << 20, '\0')), File("random", RandomBytes(6 << 20, 9))});
  Result<Manifest> scanned = ScanArchive(archive, limits);
  REQUIRE_MESSAGE(scanned.ok(), scanned.status().ToString());
  Result<Manifest> streamed = ScanAsStream(archive, limits, 65536);
  REQUIRE_MESSAGE(streamed.ok(), streamed.status().ToString());
  CHECK(*streamed == *scanned);

  // A real bomb is refused either way, with the same message.
  fs::path bomb = tmp.path() / "bomb.tar.gz";
  WriteArchive(bomb, ArchiveKind::kTarGz, {File("bomb", std::string(16 << 20, '\0'))});
  CheckStreamRefusedLikeFile(bomb, limits, 65536, Code::kUnsafe);
}

TEST_CASE("a streaming scan abandoned midway stops; garbage is refused like ScanArchive does") {
  TempDir tmp;
  fs::path archive = tmp.path() / "big.tar.gz";
  WriteArchive(archive, ArchiveKind::kTarGz, {File("random.bin", RandomBytes(8 << 20, 5))});
  const std::string bytes = ReadBytes(archive);
  {
    auto scanner = ArchiveStreamScanner::Start({});
    REQUIRE(scanner.ok());
    (*scanner)->Feed(bytes.data(), bytes.size() / 2);
    // Destroyed without Finish: the upload was cut off.
  }
  fs::path garbage = tmp.path() / "garbage.bin";
  WriteBytes(garbage, std::string(5000, 'G'));
  CheckStreamRefusedLikeFile(garbage, {}, 4096, Code::kInvalidArgument);

  fs::path truncated = tmp.path() / "truncated.tar.gz";
  WriteBytes(truncated, bytes.substr(0, bytes.size() / 3));
  CheckStreamRefusedLikeFile(truncated, {}, 65536, Code::kInvalidArgument);
}

TEST_CASE("ValidateTree reports missing, changed and extra paths") {
  TempDir tmp;
  fs::path archive = tmp.path() / "a.tar";
  WriteArchive(archive, ArchiveKind::kTar,
               {File("a", "alpha"), File("b", "beta"), File("c", "gamma", 0755), Dir("d"),
                File("d/e", "epsilon"), Symlink("l", "a"), File("f", "phi")});
  fs::path dest = tmp.path() / "dest";
  Result<Manifest> m = ExtractArchive(archive, dest);
  REQUIRE(m.ok());
  REQUIRE(ValidateTree(dest, *m)->ok());

  fs::remove(dest / "a");                        // missing
  WriteBytes(dest / "b", "BETA");                // same size, changed
  fs::permissions(dest / "c", fs::perms(0644));  // mode changed
  fs::remove(dest / "l");                        // symlink retargeted
  fs::create_symlink("b", dest / "l");
  WriteBytes(dest / "d/new", "n");  // extra
  fs::remove(dest / "f");           // file became a dir
  fs::create_directory(dest / "f");

  Result<ValidationReport> r = ValidateTree(dest, *m);
  REQUIRE(r.ok());
  CHECK_FALSE(r->ok());
  CHECK(r->missing == std::vector<std::string>{"a"});
  CHECK(r->extra == std::vector<std::string>{"d/new"});
  std::vector<std::string> changed;
  for (const PathProblem& p : r->changed) changed.push_back(p.path);
  CHECK(changed == std::vector<std::string>{"b", "c", "f", "l"});
  CHECK(r->changed[0].detail == "content differs");
  CHECK(r->changed[1].detail == "mode 0644, expected 0755");

  CHECK(ValidateTree(tmp.path() / "nope", *m).status().code() == Code::kNotFound);

  // A planted symlink to a directory is reported, never walked into.
  fs::create_directory_symlink(tmp.path(), dest / "d/escape");
  Result<ValidationReport> planted = ValidateTree(dest, *m);
  REQUIRE(planted.ok());
  CHECK(planted->extra == std::vector<std::string>{"d/escape", "d/new"});
}

TEST_CASE("TreeStamp changes with any change below the directory, never by reading") {
  TempDir tmp;
  fs::path archive = tmp.path() / "a.tar";
  WriteArchive(archive, ArchiveKind::kTar,
               {File("a", "alpha"), Dir("d"), File("d/e", "epsilon"), Symlink("l", "a")});
  fs::path dest = tmp.path() / "dest";
  REQUIRE(ExtractArchive(archive, dest).ok());
  Result<std::string> first = TreeStamp(dest);
  REQUIRE(first.ok());
  CHECK(first->size() == 64);
  // Reading and validating leave it alone; renaming the directory itself too.
  REQUIRE(ValidateTree(dest, *ScanArchive(archive)).ok());
  CHECK(*ReadFileToString(dest / "d/e") == "epsilon");
  fs::rename(dest, tmp.path() / "moved");
  dest = tmp.path() / "moved";
  CHECK(*TreeStamp(dest) == *first);

  std::string before = *first;
  auto changed = [&](const char* what) {
    CAPTURE(what);
    Result<std::string> now = TreeStamp(dest);
    REQUIRE(now.ok());
    CHECK(*now != before);
    before = *now;
  };
  WriteBytes(dest / "a", "ALPHA");  // same size, new content
  changed("rewritten");
  fs::permissions(dest / "d/e", fs::perms(0600));
  changed("chmod");
  WriteBytes(dest / "d/new", "n");
  changed("added");
  fs::remove(dest / "d/new");
  changed("removed");
  fs::remove(dest / "l");
  fs::create_symlink("d/e", dest / "l");
  changed("symlink retargeted");
  CHECK(TreeStamp(tmp.path() / "nope").status().code() != Code::kOk);
}

// The filesystem's time now, once a later change is sure to get a later
// ctime (a probe file changed until its ctime moves past it).
timespec FilesystemNow(const fs::path& dir) {
  const fs::path probe = dir / "probe";
  WriteBytes(probe, "p");
  struct stat st;
  REQUIRE(::lstat(probe.c_str(), &st) == 0);
  const timespec now = st.st_ctim;
  for (int i = 0; i < 10'000; ++i) {
    fs::permissions(probe, i % 2 ? fs::perms(0600) : fs::perms(0400));
    REQUIRE(::lstat(probe.c_str(), &st) == 0);
    if (st.st_ctim.tv_sec != now.tv_sec || st.st_ctim.tv_nsec != now.tv_nsec) break;
  }
  fs::remove(probe);
  return now;
}

TEST_CASE("TreeStampUnchangedSince: the stamp, unless anything changed after the bound") {
  TempDir tmp;
  fs::path archive = tmp.path() / "a.tar";
  WriteArchive(archive, ArchiveKind::kTar, {File("a", "alpha"), Dir("d"), File("d/e", "epsilon")});
  fs::path dest = tmp.path() / "dest";
  REQUIRE(ExtractArchive(archive, dest).ok());
  auto after = [&](const char* what, const std::function<void()>& change) {
    CAPTURE(what);
    const timespec bound = FilesystemNow(tmp.path());
    Result<std::string> unchanged = TreeStampUnchangedSince(dest, bound);
    REQUIRE(unchanged.ok());
    CHECK(*unchanged == *TreeStamp(dest));
    change();
    CHECK(TreeStampUnchangedSince(dest, bound).status().code() == Code::kFailedPrecondition);
  };
  after("rewritten", [&] { WriteBytes(dest / "d/e", "EPSILON"); });
  after("chmod", [&] { fs::permissions(dest / "a", fs::perms(0600)); });
  after("added", [&] { WriteBytes(dest / "d/new", "n"); });
  // Only `dest` itself records a name removed right below it.
  after("removed at the top", [&] { fs::remove(dest / "a"); });
  CHECK(TreeStampUnchangedSince(tmp.path() / "nope", FilesystemNow(tmp.path())).status().code() !=
        Code::kOk);
}

TEST_CASE("manifest JSON round-trips and is checked") {
  TempDir tmp;
  fs::path archive = tmp.path() / "x.tar";
  std::vector<RawEntry> entries = GoodEntries();
  entries.push_back(Hardlink("lib/libx.so.1", "lib/libx.so"));
  WriteArchive(archive, ArchiveKind::kTar, entries);
  Result<Manifest> m = ScanArchive(archive);
  REQUIRE(m.ok());
  std::string json = ManifestToJson(*m);
  Result<Manifest> back = ManifestFromJson(json);
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(*back == *m);

  std::string tampered = json;
  size_t at = tampered.find("\"0600\"");
  REQUIRE(at != std::string::npos);
  tampered.replace(at, 6, "\"0644\"");
  CHECK(ManifestFromJson(tampered).status().code() == Code::kInvalidArgument);
  CHECK(ManifestFromJson("{").status().code() == Code::kInvalidArgument);
  CHECK(ManifestFromJson(R"({"version":1,"entries":[{"path":"../x","type":"dir","mode":"0755"}]})")
            .status()
            .code() != Code::kOk);
  CHECK(ManifestFromJson(R"({"version":1,"entries":[{"path":"a","type":"file","mode":"0644",)"
                         R"("size":1,"sha256":"zz"}]})")
            .status()
            .code() == Code::kInvalidArgument);
}

TEST_CASE("NormaliseEntryPath") {
  CHECK(*NormaliseEntryPath("./a//b/") == "a/b");
  CHECK(*NormaliseEntryPath("./") == "");
  CHECK(*NormaliseEntryPath("a/./b") == "a/b");
  CHECK(*NormaliseEntryPath("..foo/bar..") == "..foo/bar..");
  for (const char* bad : {"..", "a/..", "/a", "C:/a", "c:", "a\\b", "a/../b"}) {
    CAPTURE(bad);
    CHECK(NormaliseEntryPath(bad).status().code() == Code::kUnsafe);
  }
  CHECK(NormaliseEntryPath(std::string("a\0b", 3)).status().code() == Code::kUnsafe);
}

TEST_CASE("many entries, deep trees and symlink chains stay fast to check") {
  TempDir tmp;
  std::vector<RawEntry> entries;
  for (int i = 0; i < 20000; ++i) {
    std::string dir = "d" + std::to_string(i % 100) + "/e" + std::to_string(i % 7) + "/";
    entries.push_back(File(dir + "f" + std::to_string(i), ""));
  }
  for (int i = 0; i < 2000; ++i)
    entries.push_back(Symlink("links/l" + std::to_string(i), "l" + std::to_string(i + 1)));
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "n/";
  for (int i = 0; i < 200; ++i) entries.push_back(File(deep + "f" + std::to_string(i), ""));
  fs::path archive = tmp.path() / "many.tar";
  WriteArchive(archive, ArchiveKind::kTar, entries);
  auto start = std::chrono::steady_clock::now();
  Result<Manifest> m = ScanArchive(archive);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The chain l0 -> l1 -> ... is longer than 40 levels: refused as a loop.
  CHECK(m.status().code() == Code::kUnsafe);
  CHECK(m.status().message().find("too many levels") != std::string::npos);
  MESSAGE("scan of 22,200 entries took ", seconds, " s");
  CHECK(seconds < 20);
}

TEST_CASE("ResolveSymlinkTarget follows earlier links like the kernel") {
  std::unordered_map<std::string, std::string> links = {
      {"here", "."}, {"deep", "a/b/c"}, {"up", "deep/.."}};
  CHECK(*ResolveSymlinkTarget("x", "a/b", links) == "a/b");
  CHECK(*ResolveSymlinkTarget("a/x", "../b", links) == "b");
  CHECK(*ResolveSymlinkTarget("x", "deep/..", links) == "a/b");
  CHECK(*ResolveSymlinkTarget("x", "up/../..", links) == "");
  CHECK_FALSE(ResolveSymlinkTarget("x", "here/..", links).ok());
  CHECK_FALSE(ResolveSymlinkTarget("x", "up/../../..", links).ok());
  CHECK_FALSE(ResolveSymlinkTarget("a/x", "../../y", links).ok());
  CHECK_FALSE(ResolveSymlinkTarget("x", "/abs", links).ok());
}

}  // namespace
}  // namespace reprise
