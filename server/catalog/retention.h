// Retention: deletes the artifacts of old builds under a configurable policy,
// never those of a build that is deployed or a rollback candidate (DESIGN.md
// semantics 3 and 8).
//
// The rule, for every build that still has artifacts:
//
//   1. Protected (always kept, whatever the policy says):
//      - a build that a target holds now: Store::CurrentBuilds over every stage
//        of every application (the stages of the application's current spec
//        and of every release snapshot);
//      - one of the first `keep_rollback_candidates` rollback candidates of any
//        stage: the builds that succeeded on the stage, newest success first,
//        other than the builds its targets hold now (the list
//        GET /applications/{app} shows as `rollback_candidates`);
//      - a build with a deployment still to run or running (scheduled, waiting,
//        queued, running): deleting its artifacts would break it.
//   2. Kept by the policy: among the newest `keep_builds_per_release` builds of
//      its release (by build number, counting every build of the release), OR
//      younger than `keep_days` days (created_at > now - keep_days * 24 h).
//      0 disables a rule (it then keeps nothing).
//   3. Everything else is deleted: the build's artifact records are marked
//      as tombstones (Store::MarkArtifactBlobsRemoved: name, sha256, size and
//      manifest stay, so only the identical bytes can ever be stored under
//      them again, which restores the build exactly), then every blob that no
//      live artifact record references any more is removed from the
//      BlobStore. A blob shared with a build that keeps its artifacts is never
//      removed. A build whose artifacts are all tombstones is not considered
//      again.
//
// With both policy rules at 0 and keep_rollback_candidates 0, only what the
// targets hold (and pending deployments) survives.
//
// Protection is computed from the store when the run starts and computed
// again just before deleting; any error while computing it aborts the run
// before anything is deleted.
//
// Thread-safety: ApplyRetention may be called from any thread; runs in one
// process are serialised. Blobs go through a BlobRemover that re-checks the
// references under the upload's per-blob lock (docs/artifacts.md), so an
// upload of the same bytes at that moment keeps or re-stores its blob; the run
// still reports (in `warnings`) a removed blob that a record references
// afterwards.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/store.h"

namespace reprise {

class BlobStore;

struct RetentionPolicy {
  int keep_builds_per_release = 10;  // 0: this rule keeps nothing
  int keep_days = 30;                // 0: this rule keeps nothing
  int keep_rollback_candidates = 5;  // per stage; 0: none protected as candidates
};

// Range checks: every field 0..1000000 (keep_rollback_candidates 0..1000).
Status ValidateRetentionPolicy(const RetentionPolicy& policy);

struct RetentionArtifact {
  std::string name;
  std::string sha256;
  int64_t size = 0;
  // Deleted builds only: other builds that keep an artifact with the same
  // blob ("shop 1.0 build 4"); while there are any, the blob stays.
  std::vector<std::string> blob_shared_with;
  // Deleted builds only: the blob was (dry run: would be) removed.
  bool blob_removed = false;
};

struct RetentionDecision {
  std::string application;
  std::string release;
  int64_t build = 0;
  int64_t created_at = 0;  // unix ms
  bool keep = false;
  // Kept: every reason, e.g. "deployed on prod-web (Production)",
  // "rollback candidate #2 on Testing", "among the newest 10 of release 1.0",
  // "younger than 30 days". Deleted: why no rule keeps it.
  std::vector<std::string> reasons;
  std::vector<RetentionArtifact> artifacts;
  int64_t bytes = 0;  // sum of the artifacts' sizes
};

struct RetentionReport {
  bool dry_run = true;
  RetentionPolicy policy;
  int64_t at = 0;  // unix ms, the clock's now
  // Oldest build first (the store's order).
  std::vector<RetentionDecision> deleted;
  std::vector<RetentionDecision> kept;
  // Blobs removed (dry run: that would be removed), sorted, and their bytes.
  std::vector<std::string> blobs_removed;
  // The blobs' bytes plus file_bytes_freed.
  uint64_t bytes_freed = 0;
  // Of those, the derived file contents (server/artifacts/file_index.h) that
  // only the removed blobs' indexes list, as found before removing them;
  // they are collected in the background, once past their grace period.
  uint64_t file_bytes_freed = 0;
  // Things an operator should look at (e.g. a blob removed while an upload
  // recorded it); empty normally.
  std::vector<std::string> warnings;
};

// Removes a blob unless an artifact record references it by then; true when
// it removed it. The server passes Catalog::RemoveBlobIfUnreferenced, which
// does both under the blob's upload lock.
using BlobRemover = std::function<Result<bool>(const std::string& sha256)>;

// Applies `policy`. With `dry_run` nothing changes: the report says what would
// be deleted. Otherwise deletes as described above and appends one audit
// entry per deleted build (action "artifact.retention", subject
// "app/release/build", by `actor`). Unreferenced blobs are removed through
// `remove_blob`, which re-checks each one: an upload may have recorded the
// same bytes since the list was read.
Result<RetentionReport> ApplyRetention(Store& store, BlobStore& blobs, const Clock& clock,
                                       const RetentionPolicy& policy, bool dry_run,
                                       const std::string& actor, const BlobRemover& remove_blob);

}  // namespace reprise
