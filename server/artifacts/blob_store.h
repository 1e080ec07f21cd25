// BlobStore: a content-addressed, immutable store of artifact bytes.
//
// Layout under the root:
//   ROOT/sha256/ab/abcdef...   one read-only (0444) file per blob, named by its SHA-256
//   ROOT/tmp/upload-*          uploads in progress, on the same filesystem
// Several servers may share one root (a filesystem all of them mount).
// A blob appears only by link(2) of a complete, fsynced temporary file onto its
// final name, so a blob that exists is always whole, and it is never replaced:
// storing the same bytes again only drops the temporary file.
//
// Thread-safety: BlobStore is thread-safe (it keeps no mutable state; the
// filesystem arbitrates, e.g. 50 concurrent identical uploads make one blob).
// A BlobWriter belongs to one thread at a time and must not outlive its store.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto.h"
#include "common/status.h"

namespace reprise {

class BlobStore;

struct BlobStoreOptions {
  // Default upper bound for one upload; 0 = unlimited.
  uint64_t max_blob_bytes = 0;
  // fsync blobs and directories on commit. Only tests turn it off.
  bool fsync = true;
  // Names this store's uploads (ROOT/tmp/upload-OWNER-*) when several
  // servers share ROOT, so that one starting up removes its own leftovers at
  // once and leaves the others' live uploads alone. Lower-case letters and
  // digits; empty: unnamed.
  std::string upload_owner = {};
};

// The result of a finished upload, before it is committed.
struct FinishedUpload {
  std::string sha256;  // 64 lower-case hex digits
  uint64_t size = 0;
  std::filesystem::path temp_path;
};

// Streams one upload to a temporary file, hashing as it writes (memory stays
// flat whatever the size). Destroying a writer that was not committed aborts
// it (removes the temporary file). Movable, not copyable.
class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter();

  // kTooLarge as soon as the upload exceeds its limit; the temporary file is
  // removed then and every later call fails.
  [[nodiscard]] Status Write(const char* data, size_t size);
  [[nodiscard]] Status Write(std::string_view data) { return Write(data.data(), data.size()); }

  // Ends the upload: no more writes. Idempotent (returns the same result).
  [[nodiscard]] Result<FinishedUpload> Finish();

  // Finishes the upload and makes its bytes durable now (fsync when the
  // store fsyncs), so that Commit does not wait for the disk: the caller can
  // overlap the wait with other work (the archive scan's end). Idempotent.
  [[nodiscard]] Status Sync();

  uint64_t bytes_written() const { return size_; }

 private:
  friend class BlobStore;
  BlobWriter(const BlobStore* store, int fd, std::filesystem::path temp_path, uint64_t max_bytes);
  void Discard();
  Status WriteAll(const char* data, size_t size);
  Status Flush();

  enum class State { kWriting, kFinished, kDone };
  const BlobStore* store_ = nullptr;
  int fd_ = -1;
  std::filesystem::path temp_path_;
  uint64_t max_bytes_ = 0;
  uint64_t size_ = 0;
  std::unique_ptr<Sha256> hasher_;
  std::string buffer_;  // small writes are gathered here (HTTP chunks are small)
  std::string sha256_;
  State state_ = State::kDone;
  bool synced_ = false;          // Sync() made the finished bytes durable
  uint64_t on_disk_ = 0;         // bytes written to fd_
  uint64_t writeback_from_ = 0;  // where the next early writeback starts
};

// A blob whose permission bits are not the read-only 0444 it was stored with.
struct BlobModeProblem {
  std::string sha256;
  unsigned mode = 0;  // the permission bits found (07777)
  friend bool operator==(const BlobModeProblem&, const BlobModeProblem&) = default;
};

struct VerifyReport {
  uint64_t blobs_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<std::string> corrupt;     // blobs whose content no longer matches their name
  std::vector<std::string> unexpected;  // files in ROOT/sha256 that are not blobs (relative paths)
  std::vector<BlobModeProblem> wrong_mode;  // blobs that are not read-only (0444)
  bool ok() const { return corrupt.empty() && unexpected.empty() && wrong_mode.empty(); }
};

class BlobStore {
 public:
  // Creates ROOT, ROOT/sha256 and ROOT/tmp as needed.
  [[nodiscard]] static Result<std::unique_ptr<BlobStore>> Open(const std::filesystem::path& root,
                                                               BlobStoreOptions options = {});

  // Starts an upload. `max_bytes` overrides the store's default (0 = default).
  [[nodiscard]] Result<BlobWriter> BeginUpload(uint64_t max_bytes = 0) const;

  // Finishes the writer if needed, then makes the blob permanent: fsync,
  // chmod 0444, link onto ROOT/sha256/ab/HASH, fsync the directory, drop the
  // temporary. If the blob exists already the temporary is just dropped. With
  // `expected_sha256` set, a different hash is kInvalidArgument (nothing is
  // stored). Returns the hash. With `keep_duplicate`, a temporary whose blob
  // exists already stays with the writer (closed) for the caller to drop
  // with Abort() or the writer's destructor: removing a large file takes the
  // kernel tens of ms, which the caller can overlap with other work.
  [[nodiscard]] Result<std::string> Commit(BlobWriter& writer,
                                           std::string_view expected_sha256 = {},
                                           bool keep_duplicate = false) const;

  // Removes the writer's temporary file; the writer is unusable afterwards.
  [[nodiscard]] Status Abort(BlobWriter& writer) const;

  // Convenience for small blobs (tests, the demo).
  [[nodiscard]] Result<std::string> Put(std::string_view bytes) const;

  // Removes temporaries left by killed uploads: all of them with the default
  // (call it at start, before uploads begin), or only older ones.
  [[nodiscard]] Result<uint64_t> CleanTemporaries(
      std::chrono::seconds older_than = std::chrono::seconds(0)) const;
  // At start on a directory other servers may share: removes this owner's
  // temporaries (its uploads died with its previous process) and those of
  // others untouched for `others_older_than` (a live upload keeps writing
  // its file; one untouched that long was killed).
  [[nodiscard]] Result<uint64_t> CleanTemporariesAtStart(
      std::chrono::seconds others_older_than) const;

  // Every hash below must be 64 lower-case hex digits; anything else is
  // kInvalidArgument (it never becomes a path).
  static bool IsValidHash(std::string_view sha256);
  [[nodiscard]] Result<std::filesystem::path> Path(std::string_view sha256) const;
  bool Exists(std::string_view sha256) const;  // false for invalid hashes
  [[nodiscard]] Result<uint64_t> Size(std::string_view sha256) const;
  // Re-hashes one blob: OK, kConflict when the content no longer matches, kNotFound.
  [[nodiscard]] Status Verify(std::string_view sha256) const;
  // Re-hashes every blob and checks that it is still 0444; changes nothing.
  [[nodiscard]] Result<VerifyReport> VerifyAll() const;
  // Deletes a blob (retention). kNotFound when absent.
  [[nodiscard]] Status Remove(std::string_view sha256) const;
  // All stored hashes, sorted.
  [[nodiscard]] Result<std::vector<std::string>> List() const;

  const std::filesystem::path& root() const { return root_; }
  const BlobStoreOptions& options() const { return options_; }

 private:
  BlobStore(std::filesystem::path root, BlobStoreOptions options);
  std::filesystem::path BlobPath(std::string_view sha256) const;
  std::string OwnPrefix() const;  // "upload-" or "upload-OWNER-"
  Result<uint64_t> RemoveTemporaries(std::chrono::seconds older_than, bool all_own) const;

  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path tmp_dir_;
  BlobStoreOptions options_;
};

}  // namespace reprise
