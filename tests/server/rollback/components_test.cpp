// Selective rollback components and the composed manifest, on hand-made
// manifests.
#include "server/rollback/components.h"

#include <doctest/doctest.h>

#include <algorithm>

namespace reprise {
namespace {

ManifestEntry File(std::string path, std::string sha, unsigned mode = 0644) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = EntryType::kFile;
  e.mode = mode;
  e.size = sha.size();
  e.sha256 = std::string(64 - sha.size(), '0') + sha;
  return e;
}
ManifestEntry Dir(std::string path, unsigned mode = 0755) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = EntryType::kDirectory;
  e.mode = mode;
  return e;
}
ManifestEntry Link(std::string path, std::string target) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = EntryType::kSymlink;
  e.mode = 0777;
  e.link_target = std::move(target);
  return e;
}

Manifest Make(std::vector<ManifestEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  Manifest m;
  m.entries = std::move(entries);
  for (const auto& e : m.entries)
    if (e.type == EntryType::kFile) {
      ++m.file_count;
      m.total_bytes += e.size;
    }
  m.manifest_hash = ComputeManifestHash(m.entries);
  return m;
}

std::vector<std::string> Paths(const Manifest& m) {
  std::vector<std::string> out;
  for (const auto& e : m.entries) out.push_back(e.path);
  return out;
}

// A ran 1.0 (app.conf, bin/tool, old.txt, link -> bin/tool); D deployed 2.0:
// app.conf changed, old.txt deleted, new/ added with a file, mode of bin/tool changed.
Manifest Before() {
  return Make({File("app.conf", "a1"), Dir("bin"), File("bin/tool", "t1", 0755),
               File("old.txt", "o1"), Link("link", "bin/tool")});
}
Manifest After() {
  return Make({File("app.conf", "a2"), Dir("bin"), File("bin/tool", "t1", 0700), Dir("new"),
               Dir("new/sub"), File("new/sub/n.txt", "n1"), Link("link", "bin/tool")});
}

TEST_CASE("components: delete what D added, override what it changed, restore what it deleted") {
  Manifest a = Before(), d = After();
  auto comps = ComputeComponents(&a, d);
  REQUIRE(comps.size() == 4);
  CHECK(comps[0].path == "app.conf");
  CHECK(comps[0].type == "override");
  CHECK(comps[1].path == "bin/tool");
  CHECK(comps[1].type == "override");  // the mode alone differs
  CHECK(comps[2].path == "new/sub/n.txt");
  CHECK(comps[2].type == "delete");
  CHECK_FALSE(comps[2].source.has_value());
  CHECK(comps[3].path == "old.txt");
  CHECK(comps[3].type == "restore");
  CHECK_FALSE(comps[3].base.has_value());
  for (const auto& c : comps) CHECK(c.selected);
}

TEST_CASE("components: nothing before D means every file is a delete") {
  Manifest d = After();
  auto comps = ComputeComponents(nullptr, d);
  REQUIRE(comps.size() == 4);
  for (const auto& c : comps) CHECK(c.type == "delete");
}

TEST_CASE("composed manifest: everything selected is A's tree again") {
  Manifest a = Before(), d = After();
  auto comps = ComputeComponents(&a, d);
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  CHECK(composed->entries == a.entries);
  CHECK(composed->manifest_hash == a.manifest_hash);
  CHECK(composed->file_count == a.file_count);
  CHECK(composed->total_bytes == a.total_bytes);
}

TEST_CASE("composed manifest: nothing selected is D's tree") {
  Manifest a = Before(), d = After();
  auto comps = ComputeComponents(&a, d);
  for (auto& c : comps) c.selected = false;
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  CHECK(composed->manifest_hash == d.manifest_hash);
}

TEST_CASE("composed manifest: a partial selection keeps the rest exactly D's") {
  Manifest a = Before(), d = After();
  auto comps = ComputeComponents(&a, d);
  auto matched = ApplySelection(comps, {"app.conf", "new/"}, {});
  CHECK(matched == std::set<std::string>{"app.conf", "new/"});
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  // new/ and new/sub were only D's and are empty now: removed.
  CHECK(Paths(*composed) == std::vector<std::string>{"app.conf", "bin", "bin/tool", "link"});
  CHECK(composed->entries[0] == a.entries[0]);  // A's app.conf
  CHECK(composed->entries[2] == d.entries[2]);  // D's bin/tool (mode 0700)
  CHECK(composed->manifest_hash == ComputeManifestHash(composed->entries));
}

TEST_CASE("composed manifest: a directory only D has stays while it holds kept files") {
  Manifest a = Before();
  Manifest d =
      Make({File("app.conf", "a1"), Dir("bin"), File("bin/tool", "t1", 0755), File("old.txt", "o1"),
            Link("link", "bin/tool"), Dir("new"), File("new/x", "x1"), File("new/y", "y1")});
  auto comps = ComputeComponents(&a, d);
  ApplySelection(comps, {"new/x"}, {});
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  auto paths = Paths(*composed);
  CHECK(std::count(paths.begin(), paths.end(), "new") == 1);
  CHECK(std::count(paths.begin(), paths.end(), "new/y") == 1);
  CHECK(std::count(paths.begin(), paths.end(), "new/x") == 0);
}

TEST_CASE("composed manifest: a restore re-creates its directory with A's mode") {
  Manifest a = Make({Dir("etc", 0750), File("etc/a.conf", "e1"), File("keep", "k1")});
  Manifest d = Make({File("keep", "k1")});
  auto comps = ComputeComponents(&a, d);
  REQUIRE(comps.size() == 1);
  CHECK(comps[0].type == "restore");
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  CHECK(composed->entries == a.entries);
  CHECK(composed->entries[0].mode == 0750);
}

TEST_CASE("composed manifest: a file that became a directory") {
  Manifest a = Make({File("x", "f1")});
  Manifest d = Make({Dir("x"), File("x/inner", "i1")});
  auto comps = ComputeComponents(&a, d);
  REQUIRE(comps.size() == 2);
  CHECK(comps[0].path == "x");
  CHECK(comps[0].type == "restore");
  CHECK(comps[1].path == "x/inner");
  CHECK(comps[1].type == "delete");
  auto all = ComposeManifest(&a, d, comps);
  REQUIRE(all.ok());
  CHECK(all->entries == a.entries);
  ApplySelection(comps, {"x"}, {"x/inner"});
  auto refused = ComposeManifest(&a, d, comps);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Code::kFailedPrecondition);
  CHECK(refused.status().message().find("x") != std::string::npos);
}

TEST_CASE("selection: directories, excludes, and selectors that name nothing") {
  Manifest a = Before(), d = After();
  auto comps = ComputeComponents(&a, d);
  auto matched = ApplySelection(comps, {}, {"new", "nothing/here"});
  CHECK(matched == std::set<std::string>{"new"});
  CHECK(CountComponents(comps).selected == 3);
  CHECK(CountComponents(comps).total == 4);
  CHECK(SelectorMatches("bin", "bin/tool"));
  CHECK(SelectorMatches("bin/", "bin/tool"));
  CHECK_FALSE(SelectorMatches("bi", "bin/tool"));
  CHECK_FALSE(SelectorMatches("bin-x", "bin/tool"));
  CHECK(SelectorMatches(".", "bin/tool"));
}

TEST_CASE("selection paths from outside are checked") {
  CHECK(CheckSelector("bin/tool", "components").ok());
  CHECK(CheckSelector("/etc/passwd", "components").code() == Code::kInvalidArgument);
  auto dots = CheckSelector("bin/../../x", "exclude");
  CHECK(dots.code() == Code::kInvalidArgument);
  CHECK(dots.message().find("exclude") != std::string::npos);
}

TEST_CASE("directory sort order: dir-x sorts between dir and dir/...") {
  Manifest a = Make({File("keep", "k")});
  Manifest d = Make({File("keep", "k"), Dir("dir"), File("dir-x", "dx"), File("dir/f", "df")});
  auto comps = ComputeComponents(&a, d);
  ApplySelection(comps, {"dir-x"}, {});
  auto composed = ComposeManifest(&a, d, comps);
  REQUIRE(composed.ok());
  CHECK(Paths(*composed) == std::vector<std::string>{"dir", "dir/f", "keep"});
}

}  // namespace
}  // namespace reprise
