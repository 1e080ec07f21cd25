// Verification of the artifact store as a whole: every blob re-hashed and its
// mode checked (BlobStore::VerifyAll), and every artifact record checked for
// its blob (tombstones, whose bytes retention removed, are not expected to
// have one). Behind `reprise-server --verify` and POST /api/v1/admin/verify.
// Changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/artifacts/blob_store.h"
#include "server/store/store.h"

namespace reprise {

// An artifact record whose blob is not in the blob store.
struct MissingBlob {
  std::string application;
  std::string release;
  int64_t build = 0;
  std::string name;
  std::string sha256;
  // "shop/1.0/3/web"
  std::string Subject() const;
};

struct ArtifactVerifyReport {
  VerifyReport blobs;
  uint64_t records_checked = 0;
  std::vector<MissingBlob> missing;
  bool ok() const { return blobs.ok() && missing.empty(); }
};

// Thread-safe as far as the store and blob store are.
[[nodiscard]] Result<ArtifactVerifyReport> VerifyArtifactStore(Store& store,
                                                               const BlobStore& blobs);

}  // namespace reprise
