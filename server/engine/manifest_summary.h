// The two facts the engine reads from an artifact's manifest JSON before a
// deployment runs: its manifest hash (what the deployed tree must hash to)
// and its uncompressed size (the room it takes on a target). A manifest
// lists every file (about 1 MB for 5,000 files), so parsing it on every
// deployment cost tens of milliseconds; the summary is kept per artifact
// sha256 (a manifest is derived from the artifact's bytes, which never
// change under their sha256), so a re-deploy does not parse it again; and
// the two facts are read where they stand, before the entries, so the first
// deployment of a build does not parse the list either.
//
// Thread-safety: ManifestSummaryOf may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace reprise {

struct ManifestSummary {
  std::string manifest_hash;  // "" when the manifest records none
  uint64_t total_bytes = 0;   // 0 when it cannot be read
};

// The summary of the manifest JSON of the artifact whose blob is `sha256`.
ManifestSummary ManifestSummaryOf(const std::string& sha256, const std::string& manifest_json);

}  // namespace reprise
