// CatalogStore: the catalog aggregate of the store: environments, targets,
// applications (spec versions), releases, builds and artifacts.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

struct EnvironmentRecord {
  std::string name;
  std::string variables_json = "{}";
  int64_t updated_at = 0;
};

// The server-wide variables: the outermost scope of every deployment.
struct GlobalVariablesRecord {
  std::string variables_json = "{}";
  int64_t updated_at = 0;  // 0: never set
  std::string updated_by;
};

struct TargetRecord {
  std::string name;
  std::string environment;
  std::string agent;
  std::string path;
  std::string variables_json = "{}";
  int64_t updated_at = 0;
};

struct ApplicationRecord {
  std::string name;
  int64_t spec_version = 0;
  std::string spec_json;  // canonical JSON of the parsed spec
  std::string spec_text;  // as submitted (YAML or JSON)
  int64_t updated_at = 0;
  std::string updated_by;
  std::string hold_json = "{}";  // per stage: automatic-promotion holds after rollbacks
};

struct ReleaseRecord {
  std::string application;
  std::string number;
  int64_t spec_version = 0;
  std::string snapshot_json;  // the application spec (pipeline + plans) when created
  std::string variables_json = "{}";
  int64_t created_at = 0;
  std::string created_by;
  std::string notes = "";         // release notes (Markdown)
  std::string links_json = "[]";  // [{"title", "url"}], http(s) only
};

struct BuildRecord {
  std::string application;
  std::string release;
  int64_t number = 0;
  std::string variables_json = "{}";
  int64_t created_at = 0;
  std::string created_by;
  // Sealed by hand (POST .../seal); 0: not.
  int64_t sealed_at = 0;
  std::string sealed_by = "";
  // Read only: the build's first deployment (0: none). Requesting one seals it.
  int64_t first_deployment_id = 0;
  std::string notes = "";         // build notes (Markdown)
  std::string links_json = "[]";  // [{"title", "url"}], http(s) only

  bool sealed() const { return sealed_at != 0 || first_deployment_id != 0; }
};

// Why a sealed build takes no artifacts: "sealed by alice at <time>" or
// "deployed in #7"; empty when it is not sealed.
std::string SealedReason(const BuildRecord& build);

struct ArtifactRecord {
  std::string application;
  std::string release;
  int64_t build = 0;
  std::string name;
  std::string sha256;
  int64_t size = 0;
  int64_t file_count = 0;
  std::string manifest_json;
  int64_t created_at = 0;
  std::string created_by;
  // When retention removed the bytes (0: present). The record stays as a
  // tombstone: only the identical bytes can be stored under it again.
  int64_t blob_removed_at = 0;
};

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  virtual Status PutEnvironment(const EnvironmentRecord& env) = 0;
  virtual Result<EnvironmentRecord> GetEnvironment(const std::string& name) = 0;
  virtual Result<std::vector<EnvironmentRecord>> ListEnvironments(const Page& page) = 0;

  // The global scope; an empty record when never set.
  virtual Status PutGlobalVariables(const GlobalVariablesRecord& globals) = 0;
  virtual Result<GlobalVariablesRecord> GetGlobalVariables() = 0;

  virtual Status PutTarget(const TargetRecord& target) = 0;
  virtual Result<TargetRecord> GetTarget(const std::string& name) = 0;
  virtual Result<std::vector<TargetRecord>> ListTargets(const Page& page) = 0;

  virtual Result<ApplicationRecord> PutApplication(const ApplicationRecord& app) = 0;
  virtual Result<ApplicationRecord> GetApplication(const std::string& name) = 0;
  virtual Result<std::vector<ApplicationRecord>> ListApplications(const Page& page) = 0;

  // kAlreadyExists when the number is taken in that application.
  virtual Status CreateRelease(const ReleaseRecord& release) = 0;
  virtual Result<ReleaseRecord> GetRelease(const std::string& app, const std::string& number) = 0;
  virtual Result<std::vector<ReleaseRecord>> ListReleases(const std::string& app,
                                                          const Page& page) = 0;

  // Assigns the next build number of the release atomically and returns the record.
  virtual Result<BuildRecord> CreateBuild(const BuildRecord& build) = 0;
  virtual Result<BuildRecord> GetBuild(const std::string& app, const std::string& release,
                                       int64_t number) = 0;
  virtual Result<std::vector<BuildRecord>> ListBuilds(const std::string& app,
                                                      const std::string& release,
                                                      const Page& page) = 0;

  // Seals the build by hand (idempotent). Returns true when sealed now, false
  // when it was sealed by hand already; kNotFound for an unknown build.
  virtual Result<bool> SealBuild(const std::string& app, const std::string& release, int64_t number,
                                 int64_t at, const std::string& by) = 0;

  // Immutability lives here: the same (build, name) with another sha256 is
  // kConflict (also when its blob was removed); with the same sha256 it is a
  // no-op that returns false. A new name on a sealed build (BuildRecord::
  // sealed(), checked in the same transaction) is kFailedPrecondition.
  // Returns true when the record was added.
  virtual Result<bool> AddArtifact(const ArtifactRecord& artifact) = 0;
  // Clears the tombstone of artifact `name` when it records `sha256` and its
  // blob was removed; true when it did (the caller has stored the bytes).
  virtual Result<bool> RestoreArtifactBlob(const std::string& app, const std::string& release,
                                           int64_t build, const std::string& name,
                                           const std::string& sha256) = 0;
  // Retention: marks the blobs of the build's artifacts removed at `at`,
  // keeping the records, unless a deployment of the build is still to run
  // (scheduled, waiting, queued, running); then changes nothing and returns
  // false.
  virtual Result<bool> MarkArtifactBlobsRemoved(const std::string& app, const std::string& release,
                                                int64_t build, int64_t at) = 0;
  virtual Result<ArtifactRecord> GetArtifact(const std::string& app, const std::string& release,
                                             int64_t build, const std::string& name) = 0;
  virtual Result<std::vector<ArtifactRecord>> ListArtifacts(const std::string& app,
                                                            const std::string& release,
                                                            int64_t build) = 0;
  // Removes a build's artifact records. Retention does not use it: it keeps
  // the records (MarkArtifactBlobsRemoved).
  virtual Status DeleteArtifacts(const std::string& app, const std::string& release,
                                 int64_t build) = 0;
  // Every build of every application, oldest first (retention).
  virtual Result<std::vector<BuildRecord>> ListAllBuilds() = 0;
  // Every sha256 referenced by an artifact record whose blob is not removed.
  virtual Result<std::vector<std::string>> ReferencedBlobs() = 0;
  // Every artifact record of these bytes (the same archive uploaded under
  // several builds or names), tombstones included, oldest first; empty when
  // there is none.
  virtual Result<std::vector<ArtifactRecord>> FindArtifactsBySha256(const std::string& sha256) = 0;
};

}  // namespace reprise
