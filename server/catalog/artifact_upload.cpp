// Catalog::UploadArtifact: stream -> temporary blob (hashed in the same pass)
// and, at the same time, the archive scanner (validation and manifest) ->
// immutability check -> commit and record.
#include <algorithm>
#include <future>
#include <new>
#include <thread>

#include "agents/deployer/archive.h"
#include "server/artifacts/blob_store.h"
#include "server/artifacts/file_index.h"
#include "server/catalog/catalog.h"

namespace reprise {

namespace {

size_t HexValue(char c) {
  return c >= 'a' ? static_cast<size_t>(c - 'a' + 10) : static_cast<size_t>(c - '0');
}

// Other bytes under a recorded artifact name: refused, naming both hashes.
Status ImmutableConflict(const ArtifactRecord& existing, const std::string& uploaded_sha256) {
  const std::string what =
      "artifact '" + existing.name + "' of build " + std::to_string(existing.build);
  if (existing.blob_removed_at != 0)
    return Conflict(what + " is recorded with sha256 " + existing.sha256 +
                    " (its bytes were removed by retention; only the identical archive restores "
                    "it); this upload has sha256 " +
                    uploaded_sha256);
  return Conflict(what + " already exists with sha256 " + existing.sha256 +
                  "; artifacts are immutable (this upload has sha256 " + uploaded_sha256 + ")");
}

}  // namespace

std::mutex& Catalog::BlobLock(const std::string& sha256) {
  size_t index = sha256.size() >= 2 ? HexValue(sha256[0]) * 16 + HexValue(sha256[1]) : 0;
  return blob_locks_[index % blob_locks_.size()];
}

Result<bool> Catalog::RemoveIfUnreferenced(const std::string& sha256) {
  auto referencing = options_.store->FindArtifactsBySha256(sha256);
  if (!referencing.ok()) return referencing.status();
  for (const auto& a : *referencing)
    if (a.blob_removed_at == 0) return false;  // tombstones do not hold the bytes
  Status st = options_.blobs->Remove(sha256);
  if (st.code() == Code::kNotFound) return false;
  if (!st.ok()) return st;
  // The build's file index goes with its blob, and the contents only it
  // listed with the next collection.
  if (options_.files != nullptr) options_.files->ForgetAndCollectLater(sha256);
  return true;
}

Result<bool> Catalog::RemoveBlobIfUnreferenced(const std::string& sha256) {
  if (options_.blobs == nullptr) return Internal("no artifact store configured");
  if (!BlobStore::IsValidHash(sha256)) return InvalidArgument("invalid blob hash '" + sha256 + "'");
  std::lock_guard<std::mutex> lock(BlobLock(sha256));
  return RemoveIfUnreferenced(sha256);
}

Result<Catalog::UploadResult> Catalog::UploadArtifact(
    const std::string& actor, const std::string& app, const std::string& release, int64_t build,
    const std::string& name, const ChunkReader& body, const ArchiveLimits& limits,
    uint64_t max_bytes) {
  if (!IsValidName(name)) return InvalidArgument("artifact name '" + name + "' is invalid");
  if (options_.blobs == nullptr) return Internal("no artifact store configured");
  auto b = options_.store->GetBuild(app, release, build);
  if (!b.ok()) return b.status();

  auto writer = options_.blobs->BeginUpload(max_bytes);
  if (!writer.ok()) return writer.status();
  // The scanner reads the bytes on its own thread while they arrive; it is
  // abandoned (its thread stopped) on every early return below.
  auto scanner = ArchiveStreamScanner::Start(limits);
  if (!scanner.ok()) return scanner.status();
  Status write_status;
  bool complete = body([&](const char* data, size_t size) {
    write_status = writer->Write(data, size);
    if (!write_status.ok()) return false;
    (*scanner)->Feed(data, size);
    return true;
  });
  if (!write_status.ok()) return write_status;  // the writer's destructor drops the temporary
  if (!complete) return InvalidArgument("the upload was cut off before the end of the body");
  auto finished = writer->Finish();
  if (!finished.ok()) return finished.status();
  if (finished->size == 0) return InvalidArgument("the upload is empty");
  // The scan inflates its last blocks while this thread decides and waits
  // for the disk.
  (*scanner)->EndInput();

  // Immutability first: a clear answer, whatever the archive holds.
  auto existing = options_.store->GetArtifact(app, release, build, name);
  if (existing.ok()) {
    if (existing->sha256 == finished->sha256) {
      if (existing->blob_removed_at == 0) return UploadResult{*existing, false, false};
      return RestoreArtifact(actor, *existing, *writer);
    }
    return ImmutableConflict(*existing, finished->sha256);
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  // A clear answer before scanning; the store checks again when recording.
  if (b->sealed())
    return FailedPrecondition("build " + release + " #" + std::to_string(build) +
                              " is sealed: " + SealedReason(*b));

  // Durable before the scan's answer is awaited: the fsync overlaps with
  // the scan's end instead of following it. Bytes stored already need none
  // (should retention remove them meanwhile, Commit fsyncs).
  if (!options_.blobs->Exists(finished->sha256)) {
    Status synced = writer->Sync();
    if (!synced.ok()) return synced;
  }
  auto manifest = (*scanner)->Finish(finished->temp_path);
  if (!manifest.ok()) return manifest.status().WithContext("artifact '" + name + "'");

  ArtifactRecord rec;
  rec.application = app;
  rec.release = release;
  rec.build = build;
  rec.name = name;
  rec.sha256 = finished->sha256;
  rec.size = static_cast<int64_t>(finished->size);
  rec.file_count = static_cast<int64_t>(manifest->file_count);
  // The manifest's JSON (5,000 entries: tens of ms) is built on a thread of
  // its own while the blob is committed, which waits for the kernel (the
  // link and its directory's fsync, or dropping a temporary of bytes stored
  // already).
  std::future<Result<std::string>> manifest_json =
      std::async(std::launch::async, [&m = *manifest]() -> Result<std::string> {
        try {
          return ManifestToJson(m);
        } catch (const std::bad_alloc&) {
          return Status(Code::kTooLarge, "recording the manifest: out of memory");
        }
      });
  rec.created_at = ToUnixMillis(options_.clock->Now());
  rec.created_by = actor;
  REPRISE_ASSIGN_OR_RETURN(
      UploadResult result,
      CommitAndRecord(actor, std::move(rec), *writer, [&] { return manifest_json.get(); }));
  if (!result.created) return result;
  if (options_.files != nullptr) options_.files->DeriveLater(result.artifact.sha256);
  return result;
}

Result<Catalog::UploadResult> Catalog::CommitAndRecord(
    const std::string& actor, ArtifactRecord rec, BlobWriter& writer,
    const std::function<Result<std::string>()>& manifest_json) {
  // Committing a blob and recording it happen under the blob's lock, so a
  // losing upload that removes its unreferenced blob below cannot remove
  // one that another upload of the same bytes has committed but not yet
  // recorded.
  std::lock_guard<std::mutex> lock(BlobLock(rec.sha256));
  auto committed = options_.blobs->Commit(writer, rec.sha256, /*keep_duplicate=*/true);
  if (!committed.ok()) return committed.status();
  // When these bytes were stored already, their temporary is removed
  // while the artifact is recorded, and gone before the answer.
  std::jthread drop_duplicate([&] { (void)options_.blobs->Abort(writer); });
  Store& store = *options_.store;
  Result<bool> added = false;
  Result<std::string> json = manifest_json();
  if (json.ok()) rec.manifest_json = std::move(*json);
  Status recorded = !json.ok() ? json.status() : store.Atomically([&] {
    added = store.AddArtifact(rec);
    if (!added.ok()) return added.status();
    if (!*added) return Status::Ok();
    return store.AppendAudit(AuditOf(
        actor, "artifact.upload",
        rec.application + "/" + rec.release + "/" + std::to_string(rec.build) + "/" + rec.name,
        "sha256 " + rec.sha256 + ", " + std::to_string(rec.size) + " bytes, " +
            std::to_string(rec.file_count) + " files"));
  });
  if (added.ok() && !recorded.ok()) added = recorded;  // the audit failed: nothing recorded
  if (!added.ok()) {
    // Another upload of other bytes recorded this artifact first: no record
    // refers to the blob just committed unless another build has the same
    // bytes.
    auto cleanup = RemoveIfUnreferenced(rec.sha256);
    if (!cleanup.ok())
      return Status(added.status().code(),
                    added.status().message() + " (and the blob " + rec.sha256 +
                        " it left could not be removed: " + cleanup.status().message() + ")");
    return added.status();
  }
  if (!*added) {
    auto stored = options_.store->GetArtifact(rec.application, rec.release, rec.build, rec.name);
    if (!stored.ok()) return stored.status();
    return UploadResult{*stored, false, false};
  }
  return UploadResult{rec, true, false};
}

Result<Catalog::UploadResult> Catalog::RestoreArtifact(const std::string& actor,
                                                       const ArtifactRecord& existing,
                                                       BlobWriter& writer) {
  // Under the blob's lock, as a new record: retention cannot remove the
  // bytes between their commit and the tombstone being cleared.
  std::lock_guard<std::mutex> lock(BlobLock(existing.sha256));
  auto committed = options_.blobs->Commit(writer, existing.sha256);
  if (!committed.ok()) return committed.status();
  Store& store = *options_.store;
  bool restored = false;
  const std::string subject = existing.application + "/" + existing.release + "/" +
                              std::to_string(existing.build) + "/" + existing.name;
  Status st = store.Atomically([&] {
    REPRISE_ASSIGN_OR_RETURN(
        restored, store.RestoreArtifactBlob(existing.application, existing.release, existing.build,
                                            existing.name, existing.sha256));
    if (!restored) return Status::Ok();  // another upload restored it first
    return store.AppendAudit(AuditOf(actor, "artifact.restore", subject,
                                     "sha256 " + existing.sha256 + ", " +
                                         std::to_string(existing.size) +
                                         " bytes stored again after retention removed them"));
  });
  if (!st.ok()) {
    // Nothing was restored: the bytes just committed go again unless a live
    // record (another build) references them.
    auto cleanup = RemoveIfUnreferenced(existing.sha256);
    if (!cleanup.ok())
      return Status(st.code(), st.message() + " (and the blob " + existing.sha256 +
                                   " it left could not be removed: " + cleanup.status().message() +
                                   ")");
    return st;
  }
  auto stored =
      store.GetArtifact(existing.application, existing.release, existing.build, existing.name);
  if (!stored.ok()) return stored.status();
  return UploadResult{*stored, false, restored};
}

Result<BuildRecord> Catalog::SealBuild(const std::string& actor, const std::string& app,
                                       const std::string& release, int64_t build) {
  Store& store = *options_.store;
  REPRISE_RETURN_IF_ERROR(store.Atomically([&]() -> Status {
    REPRISE_ASSIGN_OR_RETURN(
        bool sealed_now,
        store.SealBuild(app, release, build, ToUnixMillis(options_.clock->Now()), actor));
    if (!sealed_now) return Status::Ok();
    return store.AppendAudit(AuditOf(actor, "build.seal",
                                     app + "/" + release + "/" + std::to_string(build),
                                     "no artifact can be added to it any more"));
  }));
  return store.GetBuild(app, release, build);
}

std::string ArtifactPath(const ArtifactRecord& a) {
  return "/api/v1/applications/" + a.application + "/releases/" + a.release + "/builds/" +
         std::to_string(a.build) + "/artifacts/" + a.name;
}

std::string RestoreHint(const ArtifactRecord& a) {
  return "upload the identical archive (sha256 " + a.sha256 + ") to PUT " + ArtifactPath(a) +
         " to restore it";
}

Status CheckBuildDeployable(Store& store, const std::string& app, const std::string& release,
                            int64_t build) {
  auto artifacts = store.ListArtifacts(app, release, build);
  if (!artifacts.ok()) return artifacts.status();
  for (const auto& a : *artifacts) {
    if (a.blob_removed_at == 0) continue;
    return FailedPrecondition("artifact '" + a.name + "' of build " + release + " #" +
                              std::to_string(build) + " has no bytes: retention removed them at " +
                              FormatRfc3339Utc(FromUnixMillis(a.blob_removed_at)) + "; " +
                              RestoreHint(a));
  }
  return Status::Ok();
}

}  // namespace reprise
