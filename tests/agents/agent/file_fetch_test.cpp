// An update fetches only the files the target lacks: a real hub with a
// file index, a real reprise-agent on loopback. The release directory is
// exactly the build (types, modes, contents, link targets, as a fresh
// extraction makes it); a missing or broken index, or a stored file whose
// content is not its name's, falls back to the whole archive, which stays
// the truth.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "tests/agents/agent/files_test_support.h"
#include "tests/agents/deployer/archive_builder.h"
#include "tests/server/hub/hub_test_support.h"

namespace reprise::testing {
namespace {

// Build 1, and build 2 with one file changed, one deleted, one added, one
// whose mode changed, one whose content another unchanged file has.
std::map<std::string, std::string> Build(int n) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 40; ++i)
    files["lib/mod-" + std::to_string(i) + ".js"] = "module " + std::to_string(i);
  files["index.html"] = "build " + std::to_string(n);
  files["empty"] = "";
  if (n == 1) files["gone.txt"] = "deleted in build 2";
  if (n == 2) files["new/added.txt"] = "module 3";  // the content of lib/mod-3.js
  if (n == 2) files["new/twice.txt"] = "build 2";   // the content of index.html
  return files;
}

struct FilesFixture {
  std::unique_ptr<FileIndex> files;
  HubFixture f{false, false, [this](AgentHubOptions& o) { KeepFileIndexes(o, files); }};
  fs::path root = f.tmp.path() / "t";
  TargetInfo t{"t", "files", root.string(), {}};
  std::unique_ptr<AgentProcess> agent = f.StartOnlineAgent("files", "t", root);
  Manifest m2;
  fs::path tree2;

  FilesFixture() {
    // Build 1: a tree with an executable and a symlink.
    fs::path tree1 = f.NewTreeDir();
    Write(tree1, Build(1));
    fs::permissions(tree1 / "lib/mod-7.js", static_cast<fs::perms>(0755));
    fs::create_symlink("index.html", tree1 / "home.html");
    Manifest m1;
    std::string b1 = f.AddTreeArtifact(tree1, &m1);
    auto first = RunOn(*f.hub, t, Op(b1, m1), "1");
    REQUIRE_MESSAGE(first.succeeded(), first.message);
    tree2 = f.NewTreeDir();
    Write(tree2, Build(2));
    fs::permissions(tree2 / "lib/mod-8.js", static_cast<fs::perms>(0700));  // mode changed
    fs::create_symlink("lib/mod-1.js", tree2 / "home.html");                // target changed
    fs::create_directories(tree2 / "empty-dir");
  }
  ~FilesFixture() {
    agent.reset();
    f.hub.reset();
    files.reset();
  }
  static void Write(const fs::path& tree, const std::map<std::string, std::string>& files) {
    for (const auto& [p, c] : files) {
      fs::create_directories((tree / p).parent_path());
      std::ofstream(tree / p, std::ios::binary) << c;
    }
  }
  static DeployArtifactOp Op(const std::string& sha, const Manifest& m) {
    return {"web", sha, "", DeployMode::kAtomic, 3, m.manifest_hash};
  }
  // The release `current` is, compared with a fresh extraction of `sha`.
  void CheckExactly(const std::string& sha) {
    fs::path fresh = f.tmp.path() / ("fresh-" + RandomHex(3));
    auto blob = f.blobs->Path(sha);
    REQUIRE(blob.ok());
    REQUIRE(ExtractArchive(*blob, fresh).ok());
    CHECK(SnapshotTree(fs::canonical(root / "current")) == SnapshotTree(fresh));
    auto v = f.hub->Validate("t", m2);
    REQUIRE(v.ok());
    CHECK(v->ok());
  }
  // Deploys build `b2` as an update; it must end exactly the build through
  // the whole archive, after a warning that says `why`.
  void UpdateFallsBack(const std::string& b2, const std::string& why) {
    LogCollector logs;
    auto out = RunOn(*f.hub, t, Op(b2, m2), "2", &logs);
    REQUIRE_MESSAGE(out.succeeded(), out.message);
    CHECK(logs.Contains(why));
    CHECK(logs.Contains("fetching the whole archive"));
    CheckExactly(b2);
  }
};

TEST_CASE("an update fetches only the changed files; the release is exactly the build") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  LogCollector logs;
  auto out = RunOn(*s.f.hub, s.t, FilesFixture::Op(b2, s.m2), "2", &logs);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  // Four contents: index.html and new/twice.txt ("build 2", fetched once),
  // new/added.txt (build 1 had it at another path: only the same path is
  // reused), lib/mod-7.js and lib/mod-8.js (their modes changed).
  CHECK_MESSAGE(logs.Contains("fetching 4 changed files"), s.agent->Log());
  CHECK(logs.Contains("built "));
  CHECK(logs.Contains("39 unchanged ("));
  CHECK_FALSE(logs.Contains("fetching the whole archive"));
  s.CheckExactly(b2);
  CHECK(ReadFile(s.root / "current/new/twice.txt") == "build 2");
  // Two entries with one content are two files, as an extraction makes them.
  struct stat a, b;
  REQUIRE(::stat((s.root / "current/index.html").c_str(), &a) == 0);
  REQUIRE(::stat((s.root / "current/new/twice.txt").c_str(), &b) == 0);
  CHECK(a.st_ino != b.st_ino);
  auto state = s.f.hub->GetTargetState("t");
  REQUIRE(state.ok());
  CHECK(state->build == "2");
}

TEST_CASE("without a file index the update fetches the whole archive, and the index follows") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  s.UpdateFallsBack(b2, "no file index for this artifact yet");
  // The miss started the derivation for the next deploy of this build.
  CHECK(WaitUntil([&] { return s.files->Index(b2).ok(); }));
}

TEST_CASE("a stored file whose content is not its sha256 is never used and leaves the cache") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  auto stored = s.files->File(Sha256Hex("build 2"));
  REQUIRE(stored.ok());
  fs::permissions(*stored, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(*stored, std::ios::binary | std::ios::trunc) << "build X";  // same size
  s.UpdateFallsBack(b2, "of the file index is corrupt");
  CHECK(ReadFile(s.root / "current/index.html") == "build 2");
  // Dropped, and derived again from the blob.
  CHECK(WaitUntil([&] {
    auto again = s.files->File(Sha256Hex("build 2"));
    return again.ok() && ReadFile(*again) == "build 2" && s.files->Index(b2).ok();
  }));
}

TEST_CASE("an index that is not the build's manifest is refused; the archive is fetched") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  // Another build's index in its place: a valid manifest, not this build's.
  Manifest other;
  std::string b3 = s.f.AddArtifact({{"index.html", "an impostor"}}, &other);
  REQUIRE(s.files->Derive(b3).ok());
  const fs::path index = s.files->root() / "index" / (b2 + ".json");
  fs::permissions(index, fs::perms::owner_write, fs::perm_options::add);
  fs::copy_file(s.files->root() / "index" / (b3 + ".json"), index,
                fs::copy_options::overwrite_existing);
  s.UpdateFallsBack(b2, "is not the build's manifest");
}

TEST_CASE("a deploy without a build manifest hash, or a first deploy, fetches the archive") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  LogCollector logs;
  // No manifest hash to check an index against: the archive.
  auto out =
      RunOn(*s.f.hub, s.t, DeployArtifactOp{"web", b2, "", DeployMode::kAtomic, 3}, "2", &logs);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  CHECK_FALSE(logs.Contains("by sha256"));
  CHECK(logs.Contains("extracting it as it arrives"));
  s.CheckExactly(b2);
}

// Build 1's release as the agent keeps it (`current` before the update).
fs::path Release1(FilesFixture& s) { return fs::canonical(s.root / "current"); }

// Sets the stamp in release `dir`'s metadata to what the tree is now, once
// the agent has settled it: the release counts as intact whatever changed.
void RestampAsIntact(FilesFixture& s, const fs::path& dir) {
  const fs::path meta = s.root / ".reprise/meta" / (dir.filename().string() + ".json");
  // The agent writes it once, after the deploy's result ("unstamped" until
  // then, a stamp that matches nothing).
  auto stamped = [&] {
    auto j = nlohmann::json::parse(ReadFile(meta), nullptr, false);
    const std::string stamp = j.is_object() ? j.value("tree_stamp", std::string()) : "";
    return !stamp.empty() && stamp != "unstamped";
  };
  REQUIRE(WaitUntil(stamped));
  auto j = nlohmann::json::parse(ReadFile(meta));
  auto stamp = TreeStamp(dir);
  REQUIRE(stamp.ok());
  j["tree_stamp"] = *stamp;
  REQUIRE(WriteFileAtomic(meta, j.dump(), 0644).ok());
}

TEST_CASE("a file its link check refuses is fetched, also when every change fits one request") {
  FilesFixture s;
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  // Two unchanged files of build 1's release lost their mode, and the
  // release still counts as intact: only the link check can tell (as when a
  // file changes between the stamp check and the link). lib/mod-3.js has
  // the content of new/added.txt, which the first request brings.
  const fs::path release1 = Release1(s);
  for (const char* p : {"lib/mod-3.js", "lib/mod-5.js"})
    fs::permissions(release1 / p, static_cast<fs::perms>(0600));
  RestampAsIntact(s, release1);
  LogCollector logs;
  auto out = RunOn(*s.f.hub, s.t, FilesFixture::Op(b2, s.m2), "2", &logs);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  CHECK(logs.Contains("fetching 4 changed files"));
  CHECK(logs.Contains("37 unchanged ("));
  CHECK_FALSE(logs.Contains("fetching the whole archive"));
  s.CheckExactly(b2);
  for (const char* p : {"lib/mod-3.js", "lib/mod-5.js"}) {
    CAPTURE(p);
    struct stat st;
    REQUIRE(::stat((s.root / "current" / p).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0644);
    // Build 1's file is left as it was, not linked into build 2.
    struct stat old;
    REQUIRE(::stat((release1 / p).c_str(), &old) == 0);
    CHECK(old.st_ino != st.st_ino);
    CHECK((old.st_mode & 07777) == 0600);
  }
  CHECK(ReadFile(s.root / "current/lib/mod-3.js") == "module 3");
  CHECK(ReadFile(s.root / "current/lib/mod-5.js") == "module 5");
}

// Build 2 with 24 more files of 1 MiB each: 24 MiB to fetch, several
// chunks in flight from the server and more than the agent keeps in memory
// at once (the reads are held until the release takes some).
std::string AddLargeBuild2(FilesFixture& s) {
  for (int i = 0; i < 24; ++i) {
    std::ofstream(s.tree2 / ("big-" + std::to_string(i) + ".bin"), std::ios::binary)
        << LargeContent(i);
  }
  std::string b2 = s.f.AddTreeArtifact(s.tree2, &s.m2);
  REQUIRE(s.files->Derive(b2).ok());
  return b2;
}

// What is left of a release being built: nothing, after any outcome.
bool PartialsLeft(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().filename().string().find(".partial-") != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("many megabytes of changed files arrive in chunks in flight, exactly") {
  FilesFixture s;
  std::string b2 = AddLargeBuild2(s);
  LogCollector logs;
  auto out = RunOn(*s.f.hub, s.t, FilesFixture::Op(b2, s.m2), "2", &logs);
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  CHECK(logs.Contains("fetching 28 changed files"));
  CHECK_FALSE(logs.Contains("fetching the whole archive"));
  s.CheckExactly(b2);
  CHECK(ReadFile(s.root / "current/big-23.bin") == LargeContent(23));
}

TEST_CASE(
    "a corrupt file in the middle of chunks in flight fails the fetch: the archive is fetched") {
  FilesFixture s;
  std::string b2 = AddLargeBuild2(s);
  auto stored = s.files->File(Sha256Hex(LargeContent(12)));
  REQUIRE(stored.ok());
  fs::permissions(*stored, fs::perms::owner_write, fs::perm_options::add);
  std::string wrong = LargeContent(12);
  wrong[1000] ^= 1;
  std::ofstream(*stored, std::ios::binary | std::ios::trunc) << wrong;
  s.UpdateFallsBack(b2, "of the file index is corrupt");
  CHECK(ReadFile(s.root / "current/big-12.bin") == LargeContent(12));
  CHECK_FALSE(PartialsLeft(s.f.tmp.path()));
}

TEST_CASE("a cancel during the transfer of the changed files leaves the live release") {
  FilesFixture s;
  std::string b2 = AddLargeBuild2(s);
  const std::string live = fs::read_symlink(s.root / "current").string();
  auto ops = s.f.hub->OperationsFor(Context("2"));
  LogCollector logs;
  CancelToken cancel;
  std::thread canceller([&] {
    WaitUntil([&] { return logs.Contains("fetching 28 changed files"); });
    cancel.Cancel();
  });
  auto out = ops->Run(s.t, FilesFixture::Op(b2, s.m2), *logs.log, cancel);
  canceller.join();
  CHECK(out.kind == OperationOutcome::Kind::kError);
  CHECK(out.error.code() == Code::kCancelled);
  CHECK_FALSE(logs.Contains("fetching the whole archive"));
  CHECK(fs::read_symlink(s.root / "current").string() == live);
  CHECK(ReadFile(s.root / "current/index.html") == "build 1");
  CHECK(WaitUntil([&] { return !PartialsLeft(s.f.tmp.path()); }));
  // The connection carries on: the same update, uncancelled, is exact.
  auto again = RunOn(*s.f.hub, s.t, FilesFixture::Op(b2, s.m2), "2");
  REQUIRE_MESSAGE(again.succeeded(), again.message);
  s.CheckExactly(b2);
}

}  // namespace
}  // namespace reprise::testing
