// AgentRunner: runs resolved operations on one machine's targets. It is the
// deployment code of every agent: the remote daemon (reprise-agent) and the
// local agent inside the server call the same runner; only the transport
// (how blobs arrive, where log lines go) differs.
//
// Layout of a target root R (atomic mode):
//   R/current                         symlink -> .reprise/releases/<name>
//   R/.reprise/releases/<name>/       one complete extracted release each;
//                                     <name> = <release>-<build>-<sha256[0:12]>
//   R/.reprise/meta/<name>.json       artifact, sha256, manifest hash, label
//   R/.reprise/state.json             current, previous, deploy history
//   R/.reprise/tmp/                   archives being fetched (dropped once
//                                     extracted: release directories are the
//                                     cache) and partial extractions; wiped
//                                     before each deploy
// A release directory only appears by rename(2) of a complete, fsynced
// extraction and `current` only changes by rename(2) of a fresh symlink, so a
// crash at any point leaves the previous release intact and `current` whole.
//
// Thread-safety: an AgentRunner may be used from several threads at once for
// different target roots; operations on the same root are serialised by an
// internal per-root lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agents/agent/probe.h"
#include "agents/deployer/archive.h"
#include "common/status.h"
#include "planner/operations.h"

namespace reprise {

// Progress of one deploy, for progress bars. Values only grow.
struct TransferProgress {
  std::string phase;  // "transfer", "extract", "switch", "done"
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t files_done = 0;
  uint64_t files_total = 0;
};
using ProgressFn = std::function<void(const TransferProgress&)>;

// Where operation output goes: info/warning/error lines, and process output
// in arbitrary chunks (level kOutput).
using RunnerLog = std::function<void(LogLevel level, std::string_view text)>;

// Which build a deploy-artifact belongs to; names the release directory so
// the server can tell which build is current. Empty fields fall back to the
// artifact name.
struct DeployLabel {
  std::string release;
  std::string build;
  // The server's archive limits (reprise-server --artifact-*), so an agent
  // accepts what the server accepted; unset: the agent's own (RunnerOptions).
  std::optional<ArchiveLimits> limits = {};
};

// A blob's bytes while they arrive: a transfer writes them to a temporary
// file beside the cache path and hashes them on the receiving thread, and
// Read() (ArchiveSource) hands them out behind it, so an extraction runs
// while the blob comes. The file is the buffer: memory stays one read block,
// and the receiver never waits for the reader. Read() ends (an empty block)
// only once every byte arrived and the sha256 matched; it fails as soon as
// the transfer does. Read, Size, Complete, Finish and Abandon are called
// from one thread.
class BlobStream : public ArchiveSource {
 public:
  struct Fetched {
    std::filesystem::path path;
  };
  // Waits for the end of the transfer and checks the sha256: then the blob
  // is at the cache path. Else the error, and the temporary file is gone.
  [[nodiscard]] virtual Result<Fetched> Finish() = 0;
  // Stops the transfer (the temporary file is removed) and returns its
  // error when it had failed already (a cut connection, a server error, a
  // wrong sha256); Ok when it was only stopped.
  [[nodiscard]] virtual Status Abandon() = 0;
  // Read(), as a string the caller keeps (for a consumer on another
  // thread); a stream that hands its chunks over in memory moves them out.
  [[nodiscard]] virtual Result<std::string> ReadOwned() {
    auto bytes = Read();
    if (!bytes.ok()) return bytes.status();
    return std::string(*bytes);
  }
};

// Gets artifact bytes onto this machine.
class BlobSource {
 public:
  virtual ~BlobSource() = default;
  struct Fetched {
    std::filesystem::path path;
    bool verified = false;  // the source hashed the bytes it wrote (else the runner does)
  };
  // The blob `sha256` as it arrives, when this source copies bytes (a
  // remote agent): see BlobStream, whose Finish() puts it at `cache_path`.
  // Null when the source only hands out complete files (then Fetch).
  [[nodiscard]] virtual Result<std::unique_ptr<BlobStream>> Stream(
      const std::string& /*sha256*/, const std::filesystem::path& /*cache_path*/,
      const CancelToken& /*cancel*/, const ProgressFn& /*progress*/) {
    return std::unique_ptr<BlobStream>();
  }
  // Returns a local file holding the blob `sha256`. A source that copies
  // bytes (a remote agent) writes them to `cache_path` atomically (temporary
  // file + rename); a source that has the file already (the local agent)
  // returns its own path.
  [[nodiscard]] virtual Result<Fetched> Fetch(const std::string& sha256,
                                              const std::filesystem::path& cache_path,
                                              const CancelToken& cancel,
                                              const ProgressFn& progress) = 0;
  // Parts of the build whose artifact is `sha256`, as they arrive through a
  // temporary file at `temp_path`: its file index (the manifest JSON) when
  // `files` is empty, else the contents of the files with those sha256s, one
  // after the other. Null when the source cannot (an older server, the local
  // agent): then the whole archive. Nothing is verified here: the caller
  // checks the index against the build's manifest hash and every file
  // against its sha256.
  [[nodiscard]] virtual Result<std::unique_ptr<BlobStream>> StreamFiles(
      const std::string& /*sha256*/, const std::vector<std::string>& /*files*/,
      const std::filesystem::path& /*temp_path*/, const CancelToken& /*cancel*/,
      const ProgressFn& /*progress*/) {
    return std::unique_ptr<BlobStream>();
  }
};

struct TargetState {
  bool online = false;           // filled by the hub
  std::string current_release;   // release directory name, "" when nothing deployed
  std::string previous_release;  // "" when none
  std::string release;           // label of the current release
  std::string build;
  std::string artifact;
  std::string artifact_sha256;
  std::string manifest_hash;
  std::vector<std::string> cached_releases;  // directory names, oldest first
};

struct RunnerOptions {
  // Target roots must be inside this directory (after resolving symlinks);
  // relative target paths are taken relative to it. Empty: any absolute path.
  std::filesystem::path allowed_root;
  // fsync extracted releases and state files. Tests may turn it off.
  bool fsync = true;
  ArchiveLimits limits;
  // Grace between SIGTERM and SIGKILL of a timed-out process group.
  int kill_grace_ms = 2000;
  // Keep "unchanged since verified" current with inotify while the agent
  // runs, so re-deploying a cached release skips the tree stamp walk
  // (release_watch.h says what inotify does not see). Off: every re-deploy
  // of a cached release walks its tree.
  bool watch_releases = true;
  // After a deploy that built a release reported success, take the tree
  // stamps it leaves (a walk of each release it touched) in the background.
  // Off (tests): they are taken by the next operation on that root only, and
  // a runner destroyed before loses them, as a crash would.
  bool settle_stamps_in_background = true;
};

class AgentRunner {
 public:
  explicit AgentRunner(RunnerOptions options);
  ~AgentRunner();
  AgentRunner(const AgentRunner&) = delete;
  AgentRunner& operator=(const AgentRunner&) = delete;

  // Resolves a target path against allowed_root; kPermissionDenied when it
  // escapes. Creates the directory when missing.
  [[nodiscard]] Result<std::filesystem::path> ResolveTargetRoot(std::string_view target_path) const;

  // Runs `op` on the target whose root is `target_path`. kFailed for a
  // failure of the step itself (bad path, exit code, corrupt archive);
  // kError for cancellation and orchestration problems.
  OperationOutcome Run(std::string_view target_path, const ResolvedOperation& op,
                       const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                       const CancelToken& cancel, const ProgressFn& progress = nullptr);

  [[nodiscard]] Result<TargetState> State(std::string_view target_path);
  // Re-hashes everything under `current` against `manifest`.
  [[nodiscard]] Result<ValidationReport> Validate(std::string_view target_path,
                                                  const Manifest& manifest);
  // Can the agent write the target root (created as a deploy would create
  // it)? How much room is there? Problems with the root are the report's,
  // not an error.
  [[nodiscard]] Result<ProbeReport> Probe(std::string_view target_path);

  // True when re-deploying `release` (a directory name) under the target
  // would skip the tree stamp walk: the watch saw no change below it since
  // it was verified. For tests and diagnostics.
  [[nodiscard]] bool WatchedUnchanged(std::string_view target_path, const std::string& release);

  // Removes partial downloads/extractions left by a crash under a root.
  void CleanTemporaries(const std::filesystem::path& root);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Release directory name for a label and artifact: "<release>-<build>-<sha12>"
// with characters outside [A-Za-z0-9._+] replaced by '_'.
std::string ReleaseDirName(const DeployLabel& label, std::string_view artifact,
                           std::string_view sha256);

// JSON forms used by the agent protocol.
std::string TargetStateToJson(const TargetState& state);
Result<TargetState> TargetStateFromJson(std::string_view json);
std::string ValidationReportToJson(const ValidationReport& report);
std::string ArchiveLimitsToJson(const ArchiveLimits& limits);
Result<ArchiveLimits> ArchiveLimitsFromJson(std::string_view json);
Result<ValidationReport> ValidationReportFromJson(std::string_view json);

}  // namespace reprise
