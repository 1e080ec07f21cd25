// BlobStore: round trips, deduplication under concurrency, limits, abort,
// early sync, cleanup of killed uploads, verification of tampered blobs.
#include "server/artifacts/blob_store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

size_t CountFiles(const fs::path& dir) {
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

std::unique_ptr<BlobStore> OpenStore(const fs::path& root, BlobStoreOptions options = {}) {
  auto store = BlobStore::Open(root, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

TEST_CASE("a streamed upload round-trips and is stored read-only under its hash") {
  TempDir tmp;
  auto store = OpenStore(tmp.path() / "blobs");
  std::string content;
  for (int i = 0; i < 100000; ++i) content += std::to_string(i) + ",";

  Result<BlobWriter> writer = store->BeginUpload();
  REQUIRE(writer.ok());
  for (size_t off = 0; off < content.size(); off += 4096)
    REQUIRE(writer->Write(std::string_view(content).substr(off, 4096)).ok());
  Result<FinishedUpload> finished = writer->Finish();
  REQUIRE(finished.ok());
  CHECK(finished->sha256 == Sha256Hex(content));
  CHECK(finished->size == content.size());
  CHECK(fs::exists(finished->temp_path));
  CHECK(finished->temp_path.parent_path() == tmp.path() / "blobs" / "tmp");

  Result<std::string> hash = store->Commit(*writer);
  REQUIRE_MESSAGE(hash.ok(), hash.status().ToString());
  CHECK(*hash == Sha256Hex(content));
  CHECK_FALSE(fs::exists(finished->temp_path));
  fs::path path = *store->Path(*hash);
  CHECK(path == tmp.path() / "blobs" / "sha256" / hash->substr(0, 2) / *hash);
  CHECK(ReadFile(path) == content);
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0444);
  CHECK(store->Exists(*hash));
  CHECK(*store->Size(*hash) == content.size());
  CHECK(store->Verify(*hash).ok());
  CHECK(store->List()->size() == 1);
  // Committing twice is refused; the blob stays.
  CHECK_FALSE(store->Commit(*writer).ok());
  CHECK(store->Exists(*hash));
}

TEST_CASE("writes of any size give the same bytes and hash") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  std::string content;
  for (int i = 0; content.size() < (3u << 20); ++i) content += "line " + std::to_string(i) + "\n";
  const size_t pattern[] = {1, 7, 300 << 10, 1 << 20, 3, 256 << 10, 255 << 10, 4096};
  auto writer = store->BeginUpload();
  REQUIRE(writer.ok());
  size_t off = 0;
  for (int i = 0; off < content.size(); ++i) {
    size_t n = std::min(pattern[i % 8], content.size() - off);
    REQUIRE(writer->Write(content.data() + off, n).ok());
    off += n;
  }
  CHECK(writer->bytes_written() == content.size());
  auto hash = store->Commit(*writer);
  REQUIRE(hash.ok());
  CHECK(*hash == Sha256Hex(content));
  CHECK(ReadFile(*store->Path(*hash)) == content);
}

TEST_CASE("identical uploads make one blob, different content makes another") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  Result<std::string> a1 = store->Put("same bytes");
  Result<std::string> a2 = store->Put("same bytes");
  Result<std::string> b = store->Put("other bytes");
  REQUIRE(a1.ok());
  REQUIRE(a2.ok());
  REQUIRE(b.ok());
  CHECK(*a1 == *a2);
  CHECK(*a1 != *b);
  CHECK(CountFiles(tmp.path() / "sha256") == 2);
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  // The empty blob is a blob too.
  Result<std::string> empty = store->Put("");
  REQUIRE(empty.ok());
  CHECK(*empty == Sha256Hex(""));
}

TEST_CASE("50 concurrent identical uploads: one blob, all succeed with the same hash") {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  const std::string content(256 * 1024, 'z');
  std::vector<std::string> hashes(50);
  std::vector<std::string> errors(50);
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto writer = store->BeginUpload();
      if (!writer.ok()) {
        errors[i] = writer.status().ToString();
        return;
      }
      for (size_t off = 0; off < content.size(); off += 8192) {
        Status st = writer->Write(content.data() + off, 8192);
        if (!st.ok()) {
          errors[i] = st.ToString();
          return;
        }
      }
      auto hash = store->Commit(*writer);
      if (hash.ok())
        hashes[i] = *hash;
      else
        errors[i] = hash.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 50; ++i) {
    CAPTURE(i);
    CHECK(errors[i] == "");
    CHECK(hashes[i] == Sha256Hex(content));
  }
  CHECK(CountFiles(tmp.path() / "sha256") == 1);
  CHECK(fs::is_empty(tmp.path() / "tmp"));
}

TEST_CASE("two stores on one shared directory (two servers) converge on one blob") {
  TempDir tmp;
  auto first = OpenStore(tmp.path(), {.fsync = false});
  auto second = OpenStore(tmp.path(), {.fsync = false});
  const std::string content(64 * 1024, 's');
  std::vector<std::string> hashes(20);
  std::vector<std::string> errors(20);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      const BlobStore& store = i % 2 == 0 ? *first : *second;
      auto hash = store.Put(content);
      if (hash.ok())
        hashes[i] = *hash;
      else
        errors[i] = hash.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 20; ++i) {
    CAPTURE(i);
    CHECK(errors[i] == "");
    CHECK(hashes[i] == Sha256Hex(content));
  }
  CHECK(CountFiles(tmp.path() / "sha256") == 1);
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  CHECK(ReadFile(*second->Path(Sha256Hex(content))) == content);
  // A server that stored it and one that did not see the same blob.
  CHECK(first->Exists(Sha256Hex(content)));
  CHECK(second->Verify(Sha256Hex(content)).ok());
}

TEST_CASE("the size limit stops an upload as soon as it is exceeded") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.max_blob_bytes = 1000, .fsync = false});
  auto writer = store->BeginUpload();
  REQUIRE(writer.ok());
  CHECK(writer->Write(std::string(600, 'a')).ok());
  CHECK(writer->Write(std::string(400, 'a')).ok());  // exactly the limit
  Status over = writer->Write("b", 1);
  CHECK(over.code() == Code::kTooLarge);
  CHECK(fs::is_empty(tmp.path() / "tmp"));  // removed at once
  CHECK_FALSE(writer->Write("c", 1).ok());
  CHECK_FALSE(store->Commit(*writer).ok());
  CHECK(CountFiles(tmp.path() / "sha256") == 0);

  // A per-upload limit overrides the default.
  auto bigger = store->BeginUpload(5000);
  REQUIRE(bigger.ok());
  CHECK(bigger->Write(std::string(4000, 'x')).ok());
  CHECK(store->Commit(*bigger).ok());
}

TEST_CASE("abort, the destructor, and an unexpected hash leave nothing behind") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  {
    auto writer = store->BeginUpload();
    REQUIRE(writer.ok());
    REQUIRE(writer->Write("partial").ok());
    CHECK_FALSE(fs::is_empty(tmp.path() / "tmp"));
    CHECK(store->Abort(*writer).ok());
    CHECK(fs::is_empty(tmp.path() / "tmp"));
    CHECK_FALSE(writer->Write("more").ok());
  }
  {
    auto writer = store->BeginUpload();
    REQUIRE(writer.ok());
    REQUIRE(writer->Write("dropped").ok());
    REQUIRE(writer->Finish().ok());
  }  // destroyed without commit
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  {
    auto writer = store->BeginUpload();
    REQUIRE(writer.ok());
    REQUIRE(writer->Write("hello").ok());
    auto hash = store->Commit(*writer, Sha256Hex("goodbye"));
    CHECK(hash.status().code() == Code::kInvalidArgument);
  }
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  CHECK(CountFiles(tmp.path() / "sha256") == 0);
}

// Sync makes the bytes durable before Commit (an upload overlaps the wait
// with its scan's end): the blob is the same, and a synced upload that is
// not committed still leaves nothing.
TEST_CASE("a synced upload commits to the same blob; one dropped after Sync leaves nothing") {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  const std::string content(3 << 20, 'x');
  {
    auto writer = store->BeginUpload();
    REQUIRE(writer.ok());
    REQUIRE(writer->Write(content).ok());
    REQUIRE(writer->Sync().ok());
    REQUIRE(writer->Sync().ok());  // idempotent
    CHECK_FALSE(writer->Write("more").ok());
    Result<std::string> hash = store->Commit(*writer);
    REQUIRE_MESSAGE(hash.ok(), hash.status().ToString());
    CHECK(*hash == Sha256Hex(content));
    CHECK(ReadFile(*store->Path(*hash)) == content);
  }
  {
    auto writer = store->BeginUpload();
    REQUIRE(writer.ok());
    REQUIRE(writer->Write("not committed").ok());
    REQUIRE(writer->Sync().ok());
  }  // destroyed without commit
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  CHECK(store->List()->size() == 1);
  CHECK(store->VerifyAll()->ok());
}

// keep_duplicate: the temporary of bytes stored already stays with the
// writer for the caller to drop (an upload drops it while it records).
TEST_CASE("Commit keeping a duplicate's temporary leaves it to Abort; a new blob is unaffected") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  auto first = store->BeginUpload();
  REQUIRE(first.ok());
  REQUIRE(first->Write("same bytes").ok());
  REQUIRE(store->Commit(*first, {}, /*keep_duplicate=*/true).ok());
  CHECK(fs::is_empty(tmp.path() / "tmp"));  // a new blob: its temporary name is gone
  auto second = store->BeginUpload();
  REQUIRE(second.ok());
  REQUIRE(second->Write("same bytes").ok());
  Result<std::string> hash = store->Commit(*second, {}, /*keep_duplicate=*/true);
  REQUIRE(hash.ok());
  CHECK(*hash == Sha256Hex("same bytes"));
  CHECK_FALSE(fs::is_empty(tmp.path() / "tmp"));  // kept for the caller
  CHECK(store->Abort(*second).ok());
  CHECK(fs::is_empty(tmp.path() / "tmp"));
  CHECK(store->List()->size() == 1);
  CHECK(ReadFile(*store->Path(*hash)) == "same bytes");
}

TEST_CASE("CleanTemporaries removes leftovers of killed uploads") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  std::ofstream(tmp.path() / "tmp" / "upload-deadbeef") << "half an upload";
  std::ofstream(tmp.path() / "tmp" / "upload-cafe") << "another";
  auto live = store->BeginUpload();
  REQUIRE(live.ok());
  // Only older ones: the fresh files stay.
  CHECK(*store->CleanTemporaries(std::chrono::seconds(3600)) == 0);
  CHECK(*store->CleanTemporaries() == 3);
  CHECK(fs::is_empty(tmp.path() / "tmp"));
}

TEST_CASE("at start a server removes its own leftovers and only abandoned ones of others") {
  TempDir tmp;
  auto alpha = OpenStore(tmp.path(), {.fsync = false, .upload_owner = "alpha"});
  auto beta = OpenStore(tmp.path(), {.fsync = false, .upload_owner = "beta"});
  auto killed = alpha->BeginUpload();  // alpha's previous process died with it open
  auto live = beta->BeginUpload();     // beta is uploading right now
  REQUIRE(killed.ok());
  REQUIRE(live.ok());
  REQUIRE(killed->Write("half").ok());
  REQUIRE(live->Write("first bytes").ok());
  const auto abandoned = tmp.path() / "tmp" / "upload-gamma-0123";
  std::ofstream(abandoned) << "gamma died an hour ago";
  fs::last_write_time(abandoned, fs::file_time_type::clock::now() - std::chrono::hours(2));
  auto killed_path = killed->Finish()->temp_path;
  auto live_path = live->Finish()->temp_path;
  CHECK(killed_path.filename().string().rfind("upload-alpha-", 0) == 0);

  CHECK(*alpha->CleanTemporariesAtStart(std::chrono::hours(1)) == 2);
  CHECK_FALSE(fs::exists(killed_path));
  CHECK_FALSE(fs::exists(abandoned));
  CHECK(fs::exists(live_path));
  auto hash = beta->Commit(*live);  // beta's upload completes
  REQUIRE(hash.ok());
  CHECK(beta->Exists(*hash));
  CHECK_FALSE(BlobStore::Open(tmp.path(), {.upload_owner = "Not/Safe"}).ok());
}

TEST_CASE("VerifyAll finds a tampered blob and changes nothing") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  auto good = store->Put("good content");
  auto bad = store->Put("content that will rot");
  REQUIRE(good.ok());
  REQUIRE(bad.ok());
  Result<VerifyReport> clean = store->VerifyAll();
  REQUIRE(clean.ok());
  CHECK(clean->ok());
  CHECK(clean->blobs_checked == 2);

  fs::path victim = *store->Path(*bad);
  fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('X');
  }
  const std::string tampered = ReadFile(victim);
  std::ofstream(tmp.path() / "sha256" / "stray.txt") << "not a blob";

  Result<VerifyReport> report = store->VerifyAll();
  REQUIRE(report.ok());
  CHECK_FALSE(report->ok());
  CHECK(report->corrupt == std::vector<std::string>{*bad});
  CHECK(report->unexpected == std::vector<std::string>{"stray.txt"});
  CHECK(report->blobs_checked == 2);
  CHECK(store->Verify(*bad).code() == Code::kConflict);
  CHECK(store->Verify(*good).ok());
  CHECK(ReadFile(victim) == tampered);  // reported, not repaired or deleted
}

TEST_CASE("hashes from outside are validated before they become paths") {
  TempDir tmp;
  auto store = OpenStore(tmp.path(), {.fsync = false});
  auto hash = store->Put("x");
  REQUIRE(hash.ok());
  std::string upper = *hash;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  for (std::string bad :
       {std::string(""), std::string("abc"), upper, std::string("../") + hash->substr(3),
        hash->substr(0, 63) + "/", hash->substr(0, 63) + "g", *hash + "0", std::string(64, '.')}) {
    CAPTURE(bad);
    CHECK_FALSE(BlobStore::IsValidHash(bad));
    CHECK(store->Path(bad).status().code() == Code::kInvalidArgument);
    CHECK_FALSE(store->Exists(bad));
    CHECK(store->Size(bad).status().code() == Code::kInvalidArgument);
    CHECK(store->Remove(bad).code() == Code::kInvalidArgument);
    CHECK(store->Verify(bad).code() == Code::kInvalidArgument);
  }
  CHECK(store->Exists(*hash));
}

TEST_CASE("Remove deletes a blob for retention") {
  TempDir tmp;
  auto store = OpenStore(tmp.path());
  auto hash = store->Put("retired");
  REQUIRE(hash.ok());
  CHECK(store->Remove(*hash).ok());
  CHECK_FALSE(store->Exists(*hash));
  CHECK(store->Remove(*hash).code() == Code::kNotFound);
  CHECK(store->Size(*hash).status().code() == Code::kNotFound);
  // And it can come back.
  CHECK(*store->Put("retired") == *hash);
}

TEST_CASE("a store reopens over existing blobs") {
  TempDir tmp;
  std::string hash;
  {
    auto store = OpenStore(tmp.path());
    hash = *store->Put("persistent");
  }
  auto store = OpenStore(tmp.path());
  CHECK(store->Exists(hash));
  CHECK(store->VerifyAll()->ok());
}

}  // namespace
}  // namespace reprise
