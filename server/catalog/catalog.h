// Catalog: the configuration a deployment is made of — environments, targets,
// applications (spec versions), releases (with their snapshot), builds and
// their artifacts. It validates input, writes through the Store and records
// an audit entry for every change.
//
// Thread-safety: thread-safe; every call is independent and the Store
// serialises writes.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/names.h"
#include "common/status.h"
#include "planner/variables.h"
#include "server/store/store.h"

namespace reprise {

class BlobStore;
class BlobWriter;
class FileIndex;
struct ArchiveLimits;

struct CatalogOptions {
  Store* store = nullptr;
  BlobStore* blobs = nullptr;
  const Clock* clock = nullptr;
  // Derives each uploaded build's file index in the background (may be null).
  FileIndex* files = nullptr;
};

// The canonical JSON of a variable map: {"Name": {"value": "...", "sensitive": false}}.
std::string VariablesToJson(const VariableMap& vars);
Result<VariableMap> VariablesFromJson(std::string_view json);

// A client shows sensitive values as the mask "******" and may send it back
// unchanged: such a variable keeps its value from `stored` when it is stored
// sensitive there. kInvalidArgument, naming the variable, for the mask where
// nothing sensitive of that name is stored, or where it would make a stored
// secret not sensitive (its value would then be shown).
Status KeepMaskedValues(VariableMap& incoming, const VariableMap& stored);

// Release numbers: dotted numbers like 1, 1.0, 1.0.2 (each part 0-999999).
bool IsValidReleaseNumber(std::string_view number);

// A stored spec's JSON with sensitive values replaced by "******".
std::string MaskedSpecJson(const std::string& spec_json);
// The spec as it was submitted (YAML or JSON) with every sensitive value of
// the stored spec replaced by "******"; "" when the stored spec is unreadable.
std::string MaskedSpecText(const ApplicationRecord& app);

// The API path an artifact is uploaded to (and downloaded from).
std::string ArtifactPath(const ArtifactRecord& artifact);
// How to bring a tombstoned artifact back: "upload the identical archive
// (sha256 ...) to PUT <path>".
std::string RestoreHint(const ArtifactRecord& artifact);
// kFailedPrecondition naming the first artifact of the build whose blob
// retention removed, and how to restore it; OK when every blob is there.
// Deploying and previewing check it when requested (in the request's
// transaction), not when the deployment runs.
Status CheckBuildDeployable(Store& store, const std::string& app, const std::string& release,
                            int64_t build);

// Notes (Markdown) and links (canonical JSON list, validated by the caller)
// of a release or build.
struct Annotations {
  std::string notes;
  std::string links_json = "[]";
};

class Catalog {
 public:
  explicit Catalog(CatalogOptions options);

  Status PutEnvironment(const std::string& actor, const std::string& name,
                        const VariableMap& variables);
  Status PutTarget(const std::string& actor, const TargetRecord& target,
                   const VariableMap& variables);
  // Replaces the global scope (audited as "variables.put").
  Status PutGlobalVariables(const std::string& actor, const VariableMap& variables);

  // Parses and validates the spec (YAML or JSON): pipeline, plans, variables;
  // every stage's environment and targets must exist. Stores a new version.
  Result<ApplicationRecord> PutApplication(const std::string& actor, const std::string& name,
                                           const std::string& spec_text);

  // Snapshots the application's current spec into the release.
  Result<ReleaseRecord> CreateRelease(const std::string& actor, const std::string& app,
                                      const std::string& number, const VariableMap& variables,
                                      const Annotations& annotations = Annotations());
  Result<BuildRecord> CreateBuild(const std::string& actor, const std::string& app,
                                  const std::string& release, const VariableMap& variables,
                                  const Annotations& annotations = Annotations());

  // Streams an archive into the blob store (hashing as it goes) and, at the
  // same time, through the archive scanner (ArchiveStreamScanner), then
  // records it as artifact `name` of the build. Immutability: the same name
  // with other bytes is kConflict and changes nothing; the identical bytes
  // again is a no-op (`created` false), or, when retention removed them,
  // stores them again (`restored` true, audited as "artifact.restore"). A new
  // name on a sealed build is kFailedPrecondition. Unsafe archives and archives over
  // `limits` are kUnsafe with the offending entry named; a body over
  // `max_bytes` is kTooLarge. If another upload
  // of other bytes records the artifact first, this one's blob is removed
  // again unless another artifact references the same bytes.
  struct UploadResult {
    ArtifactRecord artifact;
    bool created = false;
    bool restored = false;
  };
  using ChunkReader = std::function<bool(const std::function<bool(const char*, size_t)>&)>;
  Result<UploadResult> UploadArtifact(const std::string& actor, const std::string& app,
                                      const std::string& release, int64_t build,
                                      const std::string& name, const ChunkReader& body,
                                      const ArchiveLimits& limits, uint64_t max_bytes);

  // Seals the build by hand: no artifact can be added to it any more.
  // Audited ("build.seal") when it was not sealed by hand yet. Returns the build.
  Result<BuildRecord> SealBuild(const std::string& actor, const std::string& app,
                                const std::string& release, int64_t build);

  // Removes blob `sha256` unless a live artifact record references it, both
  // under the blob's lock: an upload committing and recording the same bytes
  // happens wholly before (the blob is kept) or after (it stores the bytes
  // again). Retention removes blobs through this. True when removed; a blob
  // already gone is false.
  [[nodiscard]] Result<bool> RemoveBlobIfUnreferenced(const std::string& sha256);

  Store& store() { return *options_.store; }
  BlobStore* blobs() { return options_.blobs; }

 private:
  // An audit entry at the clock's now, to append in the change's transaction.
  AuditRecord AuditOf(const std::string& actor, const std::string& action,
                      const std::string& subject, const std::string& summary) const;
  // Held while a blob is committed and recorded, and while an unreferenced
  // one is removed after a lost race (striped by hash).
  std::mutex& BlobLock(const std::string& sha256);
  // The caller holds BlobLock(sha256).
  Result<bool> RemoveIfUnreferenced(const std::string& sha256);
  // Commits a new upload's blob and records `rec` (its manifest JSON from
  // `manifest_json`, built meanwhile) with its audit entry, or, losing a
  // race to record the same artifact, removes the blob no record holds.
  Result<UploadResult> CommitAndRecord(const std::string& actor, ArtifactRecord rec,
                                       BlobWriter& writer,
                                       const std::function<Result<std::string>()>& manifest_json);
  // Commits the upload's blob and clears the tombstone of `existing`.
  Result<UploadResult> RestoreArtifact(const std::string& actor, const ArtifactRecord& existing,
                                       BlobWriter& writer);

  CatalogOptions options_;
  std::array<std::mutex, 64> blob_locks_;
};

}  // namespace reprise
