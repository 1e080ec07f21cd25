// FileIndex: a build's file index and file contents derived from its blob,
// in the background or on request; invalid hashes never become paths.
#include "server/artifacts/file_index.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/crypto.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  TempDir tmp;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<FileIndex> files;
  Fixture() {
    auto b = BlobStore::Open(tmp.path() / "blobs", BlobStoreOptions{0, false});
    REQUIRE(b.ok());
    blobs = std::move(b).value();
    auto f = FileIndex::Open(*blobs);
    REQUIRE_MESSAGE(f.ok(), f.status().ToString());
    files = std::move(f).value();
  }
  // Stores an archive of a small tree: two files with the same content, an
  // executable, an empty file, a symlink; returns its sha256.
  std::string AddBuild(const std::string& app_js, Manifest* manifest) {
    fs::path tree = tmp.path() / ("tree-" + RandomHex(3));
    fs::create_directories(tree / "static");
    std::ofstream(tree / "index.html") << "same";
    std::ofstream(tree / "static/copy.html") << "same";
    std::ofstream(tree / "static/app.js") << app_js;
    std::ofstream(tree / "run.sh") << "#!/bin/sh\n";
    fs::permissions(tree / "run.sh", static_cast<fs::perms>(0755));
    std::ofstream(tree / "empty");
    fs::create_symlink("index.html", tree / "home.html");
    fs::path archive = tree.string() + ".tar.gz";
    REQUIRE(CreateTarGz(tree, archive).ok());
    auto m = ScanArchive(archive);
    REQUIRE(m.ok());
    *manifest = *m;
    auto sha = blobs->Put(ReadFile(archive));
    REQUIRE(sha.ok());
    return *sha;
  }
};

TEST_CASE("a derived file index is the build's manifest, with every content stored by sha256") {
  Fixture f;
  Manifest m;
  const std::string sha = f.AddBuild("console.log(1)", &m);
  CHECK(f.files->Index(sha).status().code() == Code::kNotFound);
  REQUIRE(f.files->Derive(sha).ok());
  auto text = f.files->Index(sha);
  REQUIRE(text.ok());
  auto index = ManifestFromJson(*text);
  REQUIRE(index.ok());
  CHECK(*index == m);
  for (const ManifestEntry& e : m.entries) {
    if (e.type != EntryType::kFile) continue;
    auto p = f.files->File(e.sha256);
    REQUIRE_MESSAGE(p.ok(), e.path);
    CHECK(Sha256Hex(ReadFile(*p)) == e.sha256);
    struct stat st;
    REQUIRE(::lstat(p->c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0444);
  }
  // Deriving again changes nothing; nothing is left in tmp/.
  CHECK(f.files->Derive(sha).ok());
  CHECK(fs::is_empty(f.files->root() / "tmp"));
  // The blob store's own verification does not see the derived files.
  auto report = f.blobs->VerifyAll();
  REQUIRE(report.ok());
  CHECK(report->ok());
}

TEST_CASE("uploads are derived in the background; forgetting drops only the index") {
  Fixture f;
  Manifest m1, m2;
  const std::string b1 = f.AddBuild("one", &m1);
  const std::string b2 = f.AddBuild("two", &m2);
  f.files->DeriveLater(b1);
  f.files->DeriveLater(b2);
  f.files->DeriveLater(b2);  // queued once
  CHECK(testing::WaitUntil([&] { return f.files->Index(b1).ok() && f.files->Index(b2).ok(); }));
  CHECK(testing::WaitUntil([&] { return !f.files->Pending(b1) && !f.files->Pending(b2); }));
  f.files->Forget(b1);
  CHECK(f.files->Index(b1).status().code() == Code::kNotFound);
  CHECK(f.files->Index(b2).ok());
  // The content both builds share is still there for build 2.
  CHECK(f.files->File(Sha256Hex("same")).ok());
}

TEST_CASE("a collection removes the contents no index lists, once past the grace period") {
  Fixture f;  // the default grace period
  Manifest m1, m2;
  const std::string b1 = f.AddBuild("only in one", &m1);
  const std::string b2 = f.AddBuild("only in two", &m2);
  REQUIRE(f.files->Derive(b1).ok());
  REQUIRE(f.files->Derive(b2).ok());
  f.files->Forget(b1);
  // Just linked: a derivation here or on another server may be about to
  // write an index listing it.
  auto young = f.files->Collect();
  REQUIRE(young.ok());
  CHECK(*young == 0);
  CHECK(f.files->File(Sha256Hex("only in one")).ok());

  // Another server on the same ROOT, without a grace period.
  auto other = FileIndex::Open(*f.blobs, {}, std::chrono::seconds(0));
  REQUIRE(other.ok());
  // An index that cannot be read might list anything: nothing is removed.
  const fs::path bad = f.files->root() / "index" / (std::string(64, 'e') + ".json");
  std::ofstream(bad) << "{not json";
  CHECK_FALSE((*other)->Collect().ok());
  CHECK(f.files->File(Sha256Hex("only in one")).ok());
  fs::remove(bad);

  auto freed = (*other)->Collect();
  REQUIRE(freed.ok());
  CHECK(*freed == std::string("only in one").size());
  CHECK(f.files->File(Sha256Hex("only in one")).status().code() == Code::kNotFound);
  for (const ManifestEntry& e : m2.entries)
    if (e.type == EntryType::kFile) CHECK_MESSAGE(f.files->File(e.sha256).ok(), e.path);
}

TEST_CASE("hashes from outside never become paths; a missing blob is not found") {
  Fixture f;
  for (std::string bad : {std::string("../../etc/passwd"), std::string(64, 'G'),
                          std::string(63, 'a'), std::string("")}) {
    CHECK(f.files->Index(bad).status().code() == Code::kInvalidArgument);
    CHECK(f.files->File(bad).status().code() == Code::kInvalidArgument);
    CHECK(f.files->Derive(bad).code() == Code::kInvalidArgument);
    f.files->DeriveLater(bad);  // ignored
    CHECK_FALSE(f.files->Pending(bad));
  }
  CHECK(f.files->Derive(std::string(64, 'a')).code() == Code::kNotFound);
  CHECK(f.files->File(std::string(64, 'a')).status().code() == Code::kNotFound);
}

TEST_CASE("a blob that is no archive gets no index") {
  Fixture f;
  auto sha = f.blobs->Put("not an archive at all");
  REQUIRE(sha.ok());
  CHECK_FALSE(f.files->Derive(*sha).ok());
  CHECK(f.files->Index(*sha).status().code() == Code::kNotFound);
  CHECK(fs::is_empty(f.files->root() / "tmp"));
}

}  // namespace
}  // namespace reprise
