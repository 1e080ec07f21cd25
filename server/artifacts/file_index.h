// FileIndex: a cache derived from the blob store, so that an agent that has
// most of a build already can fetch only the files it lacks.
//
// For a blob (an artifact archive) it keeps the build's file index (the
// manifest JSON of the archive, as ExtractArchive reports it) and the content
// of every regular file, stored once by its SHA-256:
//   ROOT/files/index/HASH.json   the index of blob HASH
//   ROOT/files/sha256/ab/abc...  one read-only file per content, named by its SHA-256
//   ROOT/files/tmp/              derivations in progress
// The blob stays the truth: everything here is derived from it by the same
// extraction the agents run, can be deleted at any time (ROOT/files as a
// whole), and is verified by its reader (an agent hashes every file it
// receives and checks the index against the build's manifest hash). A file
// or an index appears only by link(2)/rename(2) of a complete file, so
// servers sharing ROOT may derive the same blob at once.
//
// Contents no index lists any more (their builds' blobs were removed) are
// collected by Collect(): a mark over every index, then a sweep that spares
// contents linked or reused within the grace period, since a derivation (here
// or on another server sharing ROOT) links its contents before its index
// appears.
//
// Thread-safety: thread-safe. Derivations run one at a time on a worker
// thread of their own (at a lower CPU priority), or on the caller's thread
// with Derive().
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "agents/deployer/archive.h"
#include "common/status.h"
#include "server/artifacts/blob_store.h"

namespace reprise {

class FileIndex {
 public:
  // Creates ROOT/files and below for `blobs` (which must outlive the index)
  // and removes derivations a previous process left unfinished.
  // `collect_grace`: contents linked or reused more recently are never
  // collected (see Collect()).
  [[nodiscard]] static Result<std::unique_ptr<FileIndex>> Open(
      const BlobStore& blobs, ArchiveLimits limits = {},
      std::chrono::seconds collect_grace = kDefaultCollectGrace);
  static constexpr std::chrono::seconds kDefaultCollectGrace = std::chrono::hours(1);
  // Waits for the derivation running, drops the queued ones.
  ~FileIndex();
  FileIndex(const FileIndex&) = delete;
  FileIndex& operator=(const FileIndex&) = delete;

  // Derives blob `sha256` on the worker thread unless it is derived or
  // queued already. Invalid hashes are ignored.
  void DeriveLater(std::string_view sha256);
  // Derives blob `sha256` now (Ok when it is derived already). kNotFound
  // when the blob is not stored; the extraction's error when it is no
  // archive the default limits accept.
  [[nodiscard]] Status Derive(std::string_view sha256);

  // The index of blob `sha256` (manifest JSON), kNotFound when not derived.
  [[nodiscard]] Result<std::string> Index(std::string_view sha256) const;
  // The stored content with SHA-256 `file_sha256`; kNotFound when absent.
  [[nodiscard]] Result<std::filesystem::path> File(std::string_view file_sha256) const;
  // Drops the index of blob `sha256`. The contents stay: other builds may
  // share them (Collect() removes those no index lists).
  void Forget(std::string_view sha256) const;
  // Drops the index of blob `sha256` (retention removed the blob) and queues
  // a collection on the worker thread (one at most is queued).
  void ForgetAndCollectLater(std::string_view sha256);
  // Removes the contents that no index lists and that were not linked or
  // reused within the grace period; returns the bytes freed. Removes nothing
  // when an index cannot be read (it might list anything). Serialised with
  // this object's derivations.
  [[nodiscard]] Result<uint64_t> Collect();
  // The bytes of the contents that only the indexes of `blobs` list (what
  // collecting would free once those blobs are removed), under blob root
  // `blob_root`; 0 when there is no file index there.
  [[nodiscard]] static Result<uint64_t> BytesOnlyOf(const std::filesystem::path& blob_root,
                                                    const std::set<std::string>& blobs);
  // True while blob `sha256` waits for or undergoes a derivation.
  bool Pending(std::string_view sha256) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  FileIndex(const BlobStore& blobs, std::filesystem::path root, ArchiveLimits limits,
            std::chrono::seconds collect_grace);
  void Work();
  std::filesystem::path IndexPath(std::string_view sha256) const;
  std::filesystem::path FilePath(std::string_view sha256) const;
  Status StoreContents(const std::filesystem::path& tree, const Manifest& manifest) const;

  const BlobStore& blobs_;
  std::filesystem::path root_;
  ArchiveLimits limits_;
  std::chrono::seconds collect_grace_;
  // Held by a derivation and by a collection: one never sees the other's
  // contents half-linked.
  std::mutex store_mu_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> pending_;  // queued or running
  bool collect_queued_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace reprise
