// The malicious-archive corpus: archives that every reader of artifacts must
// refuse, generated here (nothing is stored in the repository). Shared by the
// deployer's corpus test (ScanArchive, the streaming scan, ExtractArchive),
// the artifact API test (every archive through PUT .../artifacts/{name}) and
// fuzz/write_archive_seeds, which writes them as seeds for the archive fuzzer.
// Header-only; throws std::runtime_error on failure (see archive_builder.h).
#pragma once

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/status.h"
#include "tests/agents/deployer/archive_builder.h"

namespace reprise::testing {

namespace fs = std::filesystem;

struct BadArchive {
  std::string name;  // unique in the corpus
  ArchiveKind kind;
  std::vector<RawEntry> entries;
  Code code;
  std::string names;  // a substring the message must contain (the entry)
  // Limits the archive is read with: the defaults, or tighter ones for the
  // archives that exceed a limit.
  ArchiveLimits limits = {};
  std::function<void(const fs::path&)> patch = nullptr;
};

inline std::string Zeros(size_t n) { return std::string(n, '\0'); }

inline std::string DeepPath(int depth) {
  std::string p;
  for (int i = 0; i < depth; ++i) p += "d/";
  return p + "f";
}

inline std::vector<BadArchive> MaliciousCorpus() {
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
      {"fifo in zip",
       Z,
       {File("pipe", "data from a pipe")},
       U,
       "'pipe'",
       {},
       [](const fs::path& p) { PatchZipUnixMode(p, "pipe", 010644); }},
      {"pax path with a NUL",
       T,
       {File("placeholder", "x")},
       U,
       "'evil\\x00/../../x'",
       {},
       [](const fs::path& p) {
         WriteTarWithSpecialName(p, 'x', std::string("evil") + '\0' + "/../../x", "x");
       }},
      {"Solaris pax path with a NUL",
       T,
       {File("placeholder", "x")},
       U,
       "'evil\\x00/../../x'",
       {},
       [](const fs::path& p) {
         WriteTarWithSpecialName(p, 'X', std::string("evil") + '\0' + "/../../x", "x");
       }},
      {"GNU long name with a NUL",
       T,
       {File("placeholder", "x")},
       U,
       "'evil\\x00/../../x'",
       {},
       [](const fs::path& p) {
         WriteTarWithSpecialName(p, 'L', std::string("evil") + '\0' + "/../../x", "x");
       }},
      {"name not UTF-8", T, {File("caf\xe9.txt", "x")}, U, "'caf\\xe9.txt'"},
      {"name not UTF-8 in zip",
       Z,
       {File("placeholder", "x")},
       U,
       "'caf\\xe9.txt'",
       {},
       [](const fs::path& p) {
         WriteRawZip(p, {{"caf\xe9.txt", "x"}}, false);
       }},
      {"name flagged UTF-8 in zip but not UTF-8",
       Z,
       {File("placeholder", "x")},
       U,
       "#1: name is not valid UTF-8",
       {},
       [](const fs::path& p) {
         WriteRawZip(p, {{"caf\xff\xfe.txt", "x"}}, true);
       }},
      {"symlink target not UTF-8", T, {Symlink("link", "caf\xe9")}, U, "'link'"},
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
      {"implied directories count as entries", T, {File("a/b/c/d", "")}, U, "entries", few_entries},
      {"zip bomb tar.gz", G, {File("bomb", Zeros(8 << 20))}, U, "'bomb'", small_ratio},
      {"zip bomb zip", Z, {File("bomb", Zeros(8 << 20))}, U, "'bomb'", small_ratio},
      {"too many entries",
       T,
       {File("1", ""), File("2", ""), File("3", ""), File("4", "")},
       U,
       "entries",
       few_entries},
      {"entry too large", T, {File("big", std::string(2000, 'x'))}, U, "'big'", small_entry},
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

// Writes `bad` to `path` (patched when the archive needs it).
inline void WriteBadArchive(const BadArchive& bad, const std::filesystem::path& path) {
  WriteArchive(path, bad.kind, bad.entries);
  if (bad.patch) bad.patch(path);
}

// Scans `archive` as an upload would: its bytes fed to an ArchiveStreamScanner
// in `chunk`-byte pieces.
inline Result<Manifest> ScanAsStream(const std::filesystem::path& archive,
                                     const ArchiveLimits& limits, size_t chunk) {
  const std::string bytes = ReadBytes(archive);
  auto scanner = ArchiveStreamScanner::Start(limits);
  if (!scanner.ok()) return scanner.status();
  for (size_t offset = 0; offset < bytes.size(); offset += chunk)
    (*scanner)->Feed(bytes.data() + offset, std::min(chunk, bytes.size() - offset));
  return (*scanner)->Finish(archive);
}

// A file name for corpus archive `index`: "bad07-symlink-up.tar".
inline std::string BadArchiveFileName(size_t index, const BadArchive& bad) {
  std::string slug;
  for (char c : bad.name) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (keep)
      slug += c;
    else if (!slug.empty() && slug.back() != '-')
      slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  std::string number = std::to_string(index);
  if (number.size() < 2) number = "0" + number;
  return "bad" + number + "-" + slug + "." + KindName(bad.kind);
}

}  // namespace reprise::testing
