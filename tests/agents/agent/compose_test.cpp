// compose-release on a real AgentRunner over temporary target roots: the
// new release is D's tree with the chosen components taken back to A's
// versions (from A's cached release, or A's artifact when it is gone),
// verified against the composed manifest; refusals and failures leave
// `current` on D's release with nothing half-written; re-deploying D's build
// afterwards is a switch back to the untouched release.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agents/agent/runner.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "tests/agents/agent/compose_test_support.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using compose_testing::Dir;
using compose_testing::File;
using compose_testing::Item;
using compose_testing::Link;

// Artifacts built from trees, served like a remote agent's channel.
class TreeSource : public BlobSource {
 public:
  explicit TreeSource(fs::path dir) : dir_(std::move(dir)) {}
  std::string Add(const std::map<std::string, Item>& items, Manifest* manifest) {
    fs::path tree = dir_ / ("tree" + std::to_string(n_));
    compose_testing::WriteTree(tree, items);
    fs::path out = dir_ / ("a" + std::to_string(n_++) + ".tar.gz");
    REQUIRE(CreateTarGz(tree, out).ok());
    auto scanned = ScanArchive(out);
    REQUIRE(scanned.ok());
    *manifest = *scanned;
    std::string sha = *Sha256File(out);
    archives_[sha] = out;
    return sha;
  }
  Result<Fetched> Fetch(const std::string& sha256, const fs::path& cache_path, const CancelToken&,
                        const ProgressFn&) override {
    fetched.push_back(sha256);
    auto it = archives_.find(sha256);
    if (it == archives_.end()) return NotFound("no blob " + sha256);
    fs::copy_file(it->second, cache_path, fs::copy_options::overwrite_existing);
    return Fetched{cache_path, false};
  }
  std::vector<std::string> fetched;

 private:
  fs::path dir_;
  int n_ = 0;
  std::map<std::string, fs::path> archives_;
};

// A: build 1; D: build 2. Their differences cover every kind of component.
const std::map<std::string, Item> kTreeA = {
    {"index.html", File("A index")},
    {"bin/tool", File("A tool", 0755)},
    {"conf/app.ini", File("same content")},
    {"img/logo-a.png", File("logo a")},
    {"logo.png", Link("img/logo-a.png")},
    {"old", Dir(0750)},
    {"old/readme.txt", File("A readme", 0640)},
};
const std::map<std::string, Item> kTreeD = {
    {"index.html", File("D index")},
    {"bin/tool", File("D tool, longer", 0700)},
    {"conf/app.ini", File("same content", 0600)},
    {"img/logo-a.png", File("logo a")},
    {"img/logo-b.png", File("logo b")},
    {"logo.png", Link("img/logo-b.png")},
    {"new/plugin/x.so", File("plugin")},
    {"extra.txt", File("added by D")},
};
// Every component but index.html (override) and img/logo-b.png (delete).
const std::vector<RevertEntry> kSelected = {
    {"bin/tool", "override"},      {"conf/app.ini", "override"}, {"logo.png", "override"},
    {"new/plugin/x.so", "delete"}, {"extra.txt", "delete"},      {"old/readme.txt", "restore"},
};

struct Fixture {
  TempDir tmp;
  fs::path root = tmp.path() / "target";
  TreeSource source{tmp.path() / "src"};
  AgentRunner runner{RunnerOptions{tmp.path(), false, {}, 100}};
  std::vector<std::string> lines;
  CancelToken cancel;
  Manifest ma, md;
  std::string sha_a, sha_d, ra, rd;

  Fixture() {
    fs::create_directories(root);
    fs::create_directories(tmp.path() / "src");
    sha_a = source.Add(kTreeA, &ma);
    sha_d = source.Add(kTreeD, &md);
    ra = ReleaseDirName({"1.0", "1"}, "web", sha_a);
    rd = ReleaseDirName({"1.0", "2"}, "web", sha_d);
  }
  RunnerLog Log() {
    return [this](LogLevel, std::string_view text) { lines.emplace_back(text); };
  }
  bool Logged(const std::string& text) const {
    for (const auto& l : lines) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  OperationOutcome Run(const ResolvedOperation& op, const std::string& build) {
    return runner.Run(root.string(), op, DeployLabel{"1.0", build}, source, Log(), cancel);
  }
  OperationOutcome Deploy(const std::string& sha, const Manifest& m, const std::string& build,
                          int keep = 3) {
    DeployArtifactOp op{"web", sha, "", DeployMode::kAtomic, keep, m.manifest_hash};
    return Run(op, build);
  }
  void DeployAThenD() {
    auto a = Deploy(sha_a, ma, "1");
    REQUIRE_MESSAGE(a.succeeded(), a.message);
    auto d = Deploy(sha_d, md, "2");
    REQUIRE_MESSAGE(d.succeeded(), d.message);
  }
  ComposeReleaseOp Op(const std::vector<RevertEntry>& reverts, const Manifest& composed) {
    return compose_testing::ComposeOp({rd, md}, {ra, ma, sha_a}, reverts, composed, rd + "+rr3");
  }
  std::string Current() { return LinkedName(root / "current"); }
  static std::string LinkedName(const fs::path& link) {
    return fs::read_symlink(link).filename().string();
  }
  unsigned ModeOf(const std::string& rel) {
    struct stat st;
    REQUIRE(::lstat((root / "current" / rel).c_str(), &st) == 0);
    return st.st_mode & 07777;
  }
  bool TmpIsEmpty() {
    fs::path t = root / ".reprise/tmp";
    return !fs::exists(t) || fs::is_empty(t);
  }
};

// `current` holds exactly the tree `m` describes.
void CheckCurrentTree(Fixture& f, const Manifest& m) {
  auto report = ValidateTree(f.root / "current", m);
  REQUIRE(report.ok());
  CHECK_MESSAGE(report->ok(), report->missing.size(), " missing, ", report->changed.size(),
                " changed, ", report->extra.size(), " extra");
}

// The composed release holds exactly: D's index.html and img/, A's tool,
// app.ini mode, logo link and old/readme.txt; no new/, no extra.txt.
void CheckComposedTree(Fixture& f, const Manifest& composed) {
  CheckCurrentTree(f, composed);
  fs::path cur = f.root / "current";
  CHECK(ReadFile(cur / "index.html") == "D index");
  CHECK(ReadFile(cur / "bin/tool") == "A tool");
  CHECK(f.ModeOf("bin/tool") == 0755);
  CHECK(f.ModeOf("conf/app.ini") == 0644);
  CHECK(fs::read_symlink(cur / "logo.png") == "img/logo-a.png");
  CHECK(ReadFile(cur / "img/logo-b.png") == "logo b");
  CHECK(ReadFile(cur / "old/readme.txt") == "A readme");
  CHECK(f.ModeOf("old/readme.txt") == 0640);
  CHECK(f.ModeOf("old") == 0750);
  CHECK_FALSE(fs::exists(fs::symlink_status(cur / "new")));
  CHECK_FALSE(fs::exists(fs::symlink_status(cur / "extra.txt")));
}

TEST_CASE("compose-release from A's cached release: deletes, overrides, restores; then back to D") {
  Fixture f;
  f.DeployAThenD();
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  ComposeReleaseOp op = f.Op(kSelected, composed);
  auto out = f.Run(op, "2");
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());

  CHECK(f.Current() == op.name);
  CheckComposedTree(f, composed);
  CHECK(f.Logged("composing " + op.name + " from " + f.rd +
                 ": 6 reverted (2 delete, 3 override, 1 restore) from " + f.ra));
  CHECK(f.Logged("verified against the composed manifest (" + composed.manifest_hash.substr(0, 12) +
                 ")"));
  CHECK(f.Logged("current -> " + op.name));
  CHECK(f.source.fetched.size() == 2);  // A and D deployed; nothing fetched to compose
  CHECK(f.TmpIsEmpty());

  // The target reports D's build with the composed tree.
  auto state = f.runner.State(f.root.string());
  REQUIRE(state.ok());
  CHECK(state->current_release == op.name);
  CHECK(state->previous_release == f.rd);
  CHECK(state->build == "2");
  CHECK(state->release == "1.0");
  CHECK(state->artifact_sha256 == f.sha_d);
  CHECK(state->manifest_hash == composed.manifest_hash);
  auto validated = f.runner.Validate(f.root.string(), composed);
  REQUIRE(validated.ok());
  CHECK(validated->ok());

  // D's release was copied, never changed: re-deploying build 2 is a switch
  // back to it, byte-identical to D's manifest.
  f.lines.clear();
  auto back = f.Deploy(f.sha_d, f.md, "2");
  REQUIRE_MESSAGE(back.succeeded(), back.message);
  CHECK(f.Logged("switching only"));
  CHECK(f.Current() == f.rd);
  CheckCurrentTree(f, f.md);
  CHECK(ReadFile(f.root / "current/bin/tool") == "D tool, longer");
  // And re-deploying build 1 restores A completely.
  auto a = f.Deploy(f.sha_a, f.ma, "1");
  REQUIRE(a.succeeded());
  CheckCurrentTree(f, f.ma);
}

TEST_CASE("compose-release takes A's versions from A's artifact when A's release is gone") {
  Fixture f;
  f.DeployAThenD();
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  ComposeReleaseOp op = f.Op(kSelected, composed);

  SUBCASE("removed from the target") {
    fs::remove_all(f.root / ".reprise/releases" / f.ra);
    auto out = f.Run(op, "2");
    REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
    CHECK(f.Logged("release " + f.ra + " is no longer on the target"));
  }
  SUBCASE("changed on the target after it was verified") {
    std::ofstream(f.root / ".reprise/releases" / f.ra / "bin/tool") << "tampered";
    auto out = f.Run(op, "2");
    REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString());
    CHECK(f.Logged("release " + f.ra + " was changed on the target after it was verified"));
  }
  CHECK(f.source.fetched.size() == 3);
  CHECK(f.source.fetched.back() == f.sha_a);
  CHECK(f.Logged("from artifact web (" + f.sha_a.substr(0, 12) + ")"));
  CHECK(f.Current() == op.name);
  CheckComposedTree(f, composed);
  CHECK(f.TmpIsEmpty());  // the extracted source and the archive are gone
}

TEST_CASE("compose-release refuses when current is not the deployment's release") {
  Fixture f;
  f.DeployAThenD();
  REQUIRE(f.Deploy(f.sha_a, f.ma, "1").succeeded());  // A is live again
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  ComposeReleaseOp op = f.Op(kSelected, composed);
  auto out = f.Run(op, "2");
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message == "compose-release: current is " + f.ra + ", not " + f.rd +
                           ": the target no longer runs the deployment's release; nothing was "
                           "changed");
  CHECK(f.Current() == f.ra);
  CHECK_FALSE(fs::exists(f.root / ".reprise/releases" / op.name));

  // A base release whose metadata names another manifest is refused too.
  REQUIRE(f.Deploy(f.sha_d, f.md, "2").succeeded());
  op.base_manifest_hash = f.ma.manifest_hash;
  out = f.Run(op, "2");
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(out.message.find("has manifest " + f.md.manifest_hash.substr(0, 12) +
                         ", not the deployment's " + f.ma.manifest_hash.substr(0, 12)) !=
        std::string::npos);
  CHECK(f.Current() == f.rd);
}

TEST_CASE("a composed tree that does not match the composed manifest is never switched to") {
  Fixture f;
  f.DeployAThenD();
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  std::string expected_error;
  SUBCASE("a file the manifest expects with other content") {
    for (auto& e : composed.entries) {
      if (e.path == "index.html") e.sha256 = std::string(64, '0');
    }
    expected_error = "'index.html' content differs";
  }
  SUBCASE("a file the manifest does not list") {
    composed.entries.erase(std::find_if(composed.entries.begin(), composed.entries.end(),
                                        [](const auto& e) { return e.path == "img/logo-b.png"; }));
    expected_error = "'img/logo-b.png' extra";
  }
  SUBCASE("a revert that does not fit the release") {
    std::vector<RevertEntry> wrong = kSelected;
    wrong.push_back({"index.html", "restore"});  // D has it: that would be an override
    ComposeReleaseOp op = f.Op(wrong, composed);
    auto out = f.Run(op, "2");
    CHECK(out.message ==
          "compose-release: restore 'index.html': the release being rolled back "
          "has it already; nothing was switched");
    CHECK(f.Current() == f.rd);
    CHECK(f.TmpIsEmpty());
    return;
  }
  composed.manifest_hash = ComputeManifestHash(composed.entries);
  ComposeReleaseOp op = f.Op(kSelected, composed);
  auto out = f.Run(op, "2");
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK_MESSAGE(out.message.find("the composed tree does not match the composed manifest (" +
                                 composed.manifest_hash.substr(0, 12) + ")") != std::string::npos,
                out.message);
  CHECK_MESSAGE(out.message.find(expected_error) != std::string::npos, out.message);
  CHECK(out.message.find("nothing was switched") != std::string::npos);
  CHECK(f.Current() == f.rd);
  CHECK_FALSE(fs::exists(f.root / ".reprise/releases" / op.name));
  CHECK(f.TmpIsEmpty());
  CheckCurrentTree(f, f.md);
}

TEST_CASE("compose-release without an earlier deployment: deletes only") {
  Fixture f;
  REQUIRE(f.Deploy(f.sha_d, f.md, "2").succeeded());
  std::vector<RevertEntry> deletes = {{"new/plugin/x.so", "delete"}, {"extra.txt", "delete"}};
  Manifest composed = compose_testing::ComposeManifest(Manifest{}, f.md, deletes);
  ComposeReleaseOp op = f.Op(deletes, composed);
  op.source_release = op.source_artifact = op.source_sha256 = op.source_manifest_hash = "";
  auto out = f.Run(op, "2");
  REQUIRE_MESSAGE(out.succeeded(), out.message);
  CHECK(f.Logged("2 reverted (2 delete, 0 override, 0 restore)"));
  CHECK_FALSE(fs::exists(f.root / "current/new"));
  CheckCurrentTree(f, composed);
}

TEST_CASE("keeping releases never removes the composed release's current or previous") {
  Fixture f;
  f.DeployAThenD();
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  ComposeReleaseOp op = f.Op(kSelected, composed);
  op.keep = 1;
  REQUIRE(f.Run(op, "2").succeeded());
  fs::path releases = f.root / ".reprise/releases";
  CHECK(fs::is_directory(releases / op.name));  // current
  CHECK(fs::is_directory(releases / f.rd));     // previous
  CHECK_FALSE(fs::exists(releases / f.ra));     // beyond keep 1
  CHECK(f.Logged("removed old release " + f.ra));

  // Back to D, keep 1: the composed release is the previous one now.
  auto back = f.Deploy(f.sha_d, f.md, "2", 1);
  REQUIRE(back.succeeded());
  CHECK(f.Current() == f.rd);
  CHECK(fs::is_directory(releases / op.name));
  auto state = f.runner.State(f.root.string());
  REQUIRE(state.ok());
  CHECK(state->previous_release == op.name);
}

TEST_CASE("compose-release refuses unsafe names and component paths") {
  Fixture f;
  f.DeployAThenD();
  Manifest composed = compose_testing::ComposeManifest(f.ma, f.md, kSelected);
  ComposeReleaseOp op = f.Op(kSelected, composed);
  op.name = "../escape";
  auto out = f.Run(op, "2");
  CHECK(out.message ==
        "compose-release: '../escape' is not a release directory name; nothing was changed");
  op = f.Op({{"../../outside", "delete"}}, composed);
  out = f.Run(op, "2");
  CHECK_MESSAGE(out.message.find("is not a normalised relative path") != std::string::npos,
                out.message);
  op = f.Op({{"logo.png/x", "restore"}}, composed);  // through D's symlink
  out = f.Run(op, "2");
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK(f.Current() == f.rd);
  CHECK(f.TmpIsEmpty());
}

}  // namespace
}  // namespace reprise
