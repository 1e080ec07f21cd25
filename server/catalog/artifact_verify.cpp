#include "server/catalog/artifact_verify.h"

namespace reprise {

std::string MissingBlob::Subject() const {
  return application + "/" + release + "/" + std::to_string(build) + "/" + name;
}

Result<ArtifactVerifyReport> VerifyArtifactStore(Store& store, const BlobStore& blobs) {
  ArtifactVerifyReport report;
  auto verified = blobs.VerifyAll();
  if (!verified.ok()) return verified.status();
  report.blobs = std::move(verified).value();

  auto builds = store.ListAllBuilds();
  if (!builds.ok()) return builds.status();
  for (const BuildRecord& b : *builds) {
    auto artifacts = store.ListArtifacts(b.application, b.release, b.number);
    if (!artifacts.ok()) return artifacts.status();
    for (const ArtifactRecord& a : *artifacts) {
      if (a.blob_removed_at != 0) continue;  // retention removed the bytes on purpose
      ++report.records_checked;
      if (!blobs.Exists(a.sha256))
        report.missing.push_back({a.application, a.release, a.build, a.name, a.sha256});
    }
  }
  return report;
}

}  // namespace reprise
