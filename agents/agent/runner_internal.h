// The runner's internals, shared by the files of agents/agent/ that
// implement AgentRunner (runner.cpp dispatches; runner_store.cpp,
// runner_deploy.cpp, runner_fetch_files.cpp, runner_files.cpp,
// runner_exec.cpp, runner_state.cpp hold the operations). Not for use
// outside agents/agent/.
//
// What an operation on a target root uses:
//   - Checked(): a path from a step, resolved under the root and refused when
//     it escapes it or reaches into the agent's state;
//   - Layout: where the agent keeps its state under a root (.reprise/);
//   - ReadMeta()/WriteMeta(): one release directory's metadata file;
//   - ReadState(): state.json (current, previous, history), written by
//     SwitchToRelease();
//   - PlaceRelease(): a complete extraction moved into releases/;
//   - AgentRunner::Impl::InstallRelease(): an artifact made into
//     releases/<name> (reused when an unchanged, verified copy is there);
//   - PrepareLayout(): the directories created and tmp/ emptied first;
//   - SwitchToRelease(): releases beyond `keep` pruned, `current` (or
//     another link) switched by rename(2) of a fresh symlink, and the switch
//     recorded in state.json;
//   - RootLocks: the per-root lock every operation on a root holds (except
//     exec and http-check, which release it once started).
//
// Thread-safety: the free functions hold no state; callers serialise work on
// one root with RootLocks. RootLocks itself is thread-safe. The one thing
// done on a root without its lock is taking the stamps a deploy left
// (Impl::SettleLater, on the settling thread): every operation that reads
// stamps or changes releases waits for it first (Impl::SettlePending).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agents/agent/file_io.h"
#include "agents/agent/release_watch.h"
#include "agents/agent/runner.h"
#include "common/status.h"
#include "planner/operations.h"

namespace reprise {
namespace agent_runner {

// The agent's own directory under a target root; no step may touch it.
constexpr const char* kStateDir = ".reprise";

// True for 64 lowercase hex digits (a sha256 as the server sends it).
bool IsHex64(std::string_view s);

// True when `child` is `parent` or below it (both absolute, normalised).
bool IsWithin(const std::filesystem::path& child, const std::filesystem::path& parent);

// Where the agent keeps its state under a target root.
struct Layout {
  std::filesystem::path root;
  std::filesystem::path state_dir() const { return root / kStateDir; }
  std::filesystem::path releases() const { return state_dir() / "releases"; }
  std::filesystem::path meta() const { return state_dir() / "meta"; }
  std::filesystem::path blobs() const { return state_dir() / "blobs"; }
  std::filesystem::path tmp() const { return state_dir() / "tmp"; }
  std::filesystem::path state_file() const { return state_dir() / "state.json"; }
};

// `rel` under `root` (canonical), refusing anything that escapes it and the
// agent's own state directory. Each existing component is looked at with
// lstat(2): a symlink among the leading components is resolved and must
// lead to an existing place inside the root, so nothing is ever written
// through a link to somewhere else. The last component is resolved the same
// way with `follow_last` (the caller writes into what it names, e.g. a sync
// destination); without, it is returned as is, for callers that act on a
// link there themselves (rename over it, remove it), never on its target.
// An empty `rel` (or ".") is the root itself when `allow_root`.
[[nodiscard]] Result<std::filesystem::path> Checked(const std::filesystem::path& root,
                                                    std::string_view rel, bool allow_root,
                                                    bool follow_last = false);

// What .reprise/meta/<name>.json says about one release directory.
struct ReleaseMeta {
  std::string name, release, build, artifact, sha256, manifest_hash;
  uint64_t file_count = 0, total_bytes = 0;
  // TreeStamp of the release directory once it was extracted and verified;
  // "" in metadata written before it was kept.
  std::string tree_stamp;
};

// The tree stamp of a release being installed: matches no tree.
constexpr const char* kUnstamped = "unstamped";

std::string MetaToJson(const ReleaseMeta& m);
[[nodiscard]] Result<ReleaseMeta> ReadMeta(const Layout& l, const std::string& name);
// How durable ReplaceFile leaves a file.
enum class Durable {
  kNow,      // the file and its directory synced (WriteFileAtomic)
  kContent,  // the file synced before the rename: a crash leaves the old or the new one
  kLater,    // nothing synced: the caller syncs the filesystem before relying on it
};

// Replaces `path` with `data` by renaming a temporary file over it.
[[nodiscard]] Status ReplaceFile(const std::filesystem::path& path, std::string_view data,
                                 Durable durable);

// Writes m.name's metadata file atomically (ReplaceFile).
[[nodiscard]] Status WriteMeta(const Layout& l, const ReleaseMeta& m,
                               Durable durable = Durable::kNow);

// state.json: what `current` and `previous` are, and the deploy history.
struct DeployState {
  std::string current, previous;
  std::vector<std::string> history;  // oldest first, each name once
};

// An unreadable or corrupt state.json reads as empty.
DeployState ReadState(const Layout& l);

// The release directory name `current` (or another link) points at, or "".
std::string LinkedRelease(const Layout& l, const std::filesystem::path& link);

// Removes a tree under the root: renamed into tmp/ first, so a crash never
// leaves a half-deleted directory in place.
[[nodiscard]] Status RemoveTree(const Layout& l, const std::filesystem::path& dir);

// Moves a freshly extracted release into place. When a directory of that
// name is there already (changed on the target, or its metadata lost) it may
// be what `current` points to: the two are exchanged in one renameat2, so the
// name never dangles, and the old tree is removed afterwards.
[[nodiscard]] Status PlaceRelease(const Layout& l, const std::filesystem::path& partial,
                                  const std::filesystem::path& release_dir);

// Makes everything written on the filesystem holding `dir` durable with one
// syncfs(2): one call instead of an fsync per extracted file and directory.
[[nodiscard]] Status SyncFilesystem(const std::filesystem::path& dir);

// Removes releases beyond the newest `keep` of the history (never current or
// previous), their metadata, and blobs no retained release uses. A removed
// release may share inodes with retained ones (incremental releases): with
// `keep_stamps`, the retained releases whose tree stamp held before are
// stamped again afterwards; without, the caller does it.
void PruneReleases(const Layout& l, DeployState& st, int keep, const RunnerLog& log,
                   bool keep_stamps = true);

// Empties tmp/ (partial downloads and extractions of an earlier attempt).
void CleanTmp(const Layout& l);

// Creates the agent's directories under the root and empties tmp/: what an
// operation that places a release does first.
[[nodiscard]] Status PrepareLayout(const Layout& l);

// A moment on the filesystem's clock after Reprise's own last change to the
// releases of a deploy and before its switch: a release whose entries (and
// its directory) all have a ctime no later than `ctime` was not changed
// since (TreeStampUnchangedSince), unless the system clock was set back.
struct StampBound {
  timespec ctime{};
  int64_t realtime_offset_ns = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC then
};

// The filesystem's time now (the ctime of a file created in tmp/), once a
// change made after it is sure to get a later ctime (with fine-grained
// timestamps at once; with coarse ones, after up to 10 ms): so does every
// change made after this returns. kFailedPrecondition when the clock did not
// move on in that time.
[[nodiscard]] Result<StampBound> MarkStampBound(const Layout& l);

// True when the system clock was set back since `bound` was marked (then a
// later change may carry an earlier ctime: nothing is trusted).
bool ClockSetBackSince(const StampBound& bound);

// The end of an operation that placed release `name`, once the release is
// durable: the "switch" progress; the state after the switch computed and
// pruned (PruneReleases, beyond `keep`) and staged in a synced temporary
// file; `to` ("" : `current`, `link` is it resolved under the root) switched
// by renaming a fresh symlink over it (the link never dangles nor goes
// missing), then the staged state renamed over state.json and both
// directories synced; the switch logged, the "done" progress. With `bound`,
// MarkStampBound is taken right before the switch, after the pruning (left
// empty when the clock did not move on). A failure to record the state is
// logged as a warning: the switch stands.
OperationOutcome SwitchToRelease(const Layout& l, const std::filesystem::path& link,
                                 const std::string& to, const std::string& name, int keep,
                                 bool fsync, const RunnerLog& log, const ProgressFn& progress,
                                 bool keep_stamps = true,
                                 std::optional<StampBound>* bound = nullptr);

// --- Releases that share files (runner_stamps.cpp) -------------------------
// An incremental release hard-links the unchanged files of an earlier one, so
// releases share inodes. A change made through one release then shows in the
// tree stamp of every release holding the inode (its ctime moves), so it
// never goes unnoticed; but so does a link count change Reprise makes itself
// (linking, removing a release, replacing a file). Around such changes the
// releases whose stamps held right before are stamped again right after.

// A release's manifest, meta/manifests/<name>.json: what a later release may
// reuse. Read back only when its hash is the metadata's `manifest_hash`.
[[nodiscard]] Status WriteReleaseManifest(const Layout& l, const std::string& name,
                                          const Manifest& manifest,
                                          Durable durable = Durable::kNow);
[[nodiscard]] Result<Manifest> ReadReleaseManifest(const Layout& l, const std::string& name,
                                                   const std::string& manifest_hash);
void RemoveReleaseManifest(const Layout& l, const std::string& name);

// The releases under releases/ (but `except`) whose tree stamp still matches
// their metadata: one TreeStamp each, unless `watch` has the release armed
// with that stamp and unchanged.
std::vector<std::string> IntactReleases(const Layout& l, const std::string& except = "",
                                        ReleaseWatch* watch = nullptr);
// Takes the tree stamp of each of `names` still there again and records it.
void Restamp(const Layout& l, const std::vector<std::string>& names);
// Restamp, later: records the stamp of each of `names` only when nothing
// below it changed after `bound` (TreeStampUnchangedSince); one that did
// keeps the stamp it had, which no longer matches (so it counts as changed).
// The result is the same whenever it runs, so it may run after the deploy
// reported success, as long as it runs before anything reads those stamps.
void SettleStamps(const Layout& l, const std::vector<std::string>& names, const StampBound& bound);

// The files of releases this agent placed or read, by release directory
// and manifest hash (a manifest hash names one content): an update's source
// without reading and parsing the release's stored manifest again. The
// newest kEntries; thread-safe.
class ReuseSourceCache {
 public:
  static constexpr size_t kEntries = 4;
  // The cached files of `source->dir` (ReuseSource::dir is the key).
  std::shared_ptr<const ReuseSource> Get(const std::filesystem::path& dir,
                                         const std::string& manifest_hash) const;
  void Put(const std::string& manifest_hash, std::shared_ptr<const ReuseSource> source);

 private:
  struct Entry {
    std::string manifest_hash;
    std::shared_ptr<const ReuseSource> source;
  };
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // oldest first
};

// The release a new one (`except`) reuses files from: one of `intact` with
// a stored manifest, the live one first (its files from `cache` when there).
struct ReuseRelease {
  std::string name;
  std::shared_ptr<const ReuseSource> source;
};
std::optional<ReuseRelease> PickReuseSource(const Layout& l, const std::vector<std::string>& intact,
                                            const std::string& except, ReuseSourceCache& cache);

// The releases to stamp again after replacing or removing `p` (a path a
// step writes): none unless `p` lies in a release and shares inodes; then
// the other intact releases.
std::vector<std::string> StampsAffectedBy(const Layout& l, const std::filesystem::path& p);

// CleanTmp, keeping the stamps of intact releases true (leftovers may hold
// links to their files).
void CleanTmpKeepingStamps(const Layout& l);

// Removes a fetched archive (never a file the source owns, e.g. the server's
// blob store for the local agent).
void DropTemporaryBlob(const Layout& l, const std::filesystem::path& blob);

// Hash of a regular file, or "" when unreadable.
std::string HashOrEmpty(const std::filesystem::path& p);

inline OperationOutcome FailWith(const Status& st) {
  return OperationOutcome::Failed(st.message());
}

// One mutex per target root, created on first use and kept.
class RootLocks {
 public:
  std::shared_ptr<std::mutex> LockFor(const std::filesystem::path& root);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;
};

// write-file, ensure-dir, delete (runner_files.cpp).
OperationOutcome RunWriteFile(const std::filesystem::path& root, const WriteFileOp& op,
                              const RunnerLog& log);
OperationOutcome RunEnsureDir(const std::filesystem::path& root, const EnsureDirOp& op,
                              const RunnerLog& log);
OperationOutcome RunDelete(const std::filesystem::path& root, const DeleteOp& op,
                           const RunnerLog& log);

}  // namespace agent_runner

struct AgentRunner::Impl {
  RunnerOptions options;
  agent_runner::RootLocks locks;
  // Null when RunnerOptions::watch_releases is off.
  std::unique_ptr<agent_runner::ReleaseWatch> watch;
  agent_runner::ReuseSourceCache reuse_sources;

  Impl();
  ~Impl();  // settles what is pending first

  // Arms the watch on the releases under `l` that are not armed (or whose
  // recorded stamp moved), in the background.
  void WatchReleases(const agent_runner::Layout& l);

  // Stamps a deploy left to take once it reported success (SettleStamps of
  // `names` with `bound`): on the settling thread, under the root's lock, then
  // the watch armed; or by the next operation on that root, whichever comes
  // first (SettlePending).
  void SettleLater(const agent_runner::Layout& l, std::vector<std::string> names,
                   const agent_runner::StampBound& bound);
  // What is pending on `root`, settled now, or once the settling thread is
  // done with it; the caller holds its lock. True when it settled something.
  bool SettlePending(const std::filesystem::path& root);
  // True while stamps on `root` are pending or being settled.
  bool Unsettled(const std::filesystem::path& root);

  std::shared_ptr<std::mutex> LockFor(const std::filesystem::path& root) {
    return locks.LockFor(root);
  }

 private:
  struct Pending {
    std::vector<std::string> names;
    agent_runner::StampBound bound;
  };
  void SettleLoop();
  std::mutex settle_mu_;
  std::condition_variable settle_cv_;
  bool settle_stop_ = false;
  std::map<std::string, Pending> pending_;  // by root
  std::set<std::string> settling_;          // roots the thread is settling now
  std::condition_variable settled_cv_;
  std::deque<std::filesystem::path> settle_queue_;
  std::thread settler_;

 public:
  // deploy-artifact (runner_deploy.cpp).
  OperationOutcome Deploy(const std::filesystem::path& root, const DeployArtifactOp& op,
                          const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                          const CancelToken& cancel, const ProgressFn& progress);
  // Copy and sync modes: the archive extracted to a staging directory and
  // mirrored into the destination.
  OperationOutcome DeployInto(const agent_runner::Layout& l, const DeployArtifactOp& op,
                              const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                              const CancelToken& cancel, const ProgressFn& report);
  // Atomic mode: the release installed, then the link switched to it.
  OperationOutcome DeployRelease(const agent_runner::Layout& l, const DeployArtifactOp& op,
                                 const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                                 const CancelToken& cancel, const ProgressFn& report);
  // Makes releases/<name> hold the artifact `op` names: kept when an
  // unchanged, verified copy is there already; else fetched, extracted,
  // checked against the build's manifest, synced, placed and its metadata
  // written. Nothing is switched.
  // Unchanged files of an intact earlier release are hard-linked instead of
  // written; `restamp` then lists the releases whose stamps the caller takes
  // again once the operation is over (set when anything was extracted).
  OperationOutcome InstallRelease(const agent_runner::Layout& l, const DeployArtifactOp& op,
                                  const DeployLabel& label, const std::string& name,
                                  BlobSource& blobs, const RunnerLog& log,
                                  const CancelToken& cancel, const ProgressFn& report,
                                  std::optional<std::vector<std::string>>& restamp);
  OperationOutcome Mirror(const agent_runner::Layout& l, const std::filesystem::path& dest,
                          const std::filesystem::path& staging, const Manifest& manifest,
                          bool remove_extra, const RunnerLog& log, const CancelToken& cancel);
  // Fetches op's blob and extracts it into `dest` with ExtractArchive's
  // rules and result: while it arrives when `blobs` streams, else once it
  // was fetched. The sha256 is verified before a manifest is returned, and
  // the fetched blob is dropped either way. A failed transfer's error (a
  // wrong sha256, a cut connection, kCancelled) wins over the extraction's.
  Result<Manifest> FetchAndExtract(const agent_runner::Layout& l, const DeployArtifactOp& op,
                                   BlobSource& blobs, const std::filesystem::path& dest,
                                   const ArchiveLimits& limits, const ExtractOptions& options,
                                   const RunnerLog& log, const CancelToken& cancel,
                                   const ProgressFn& report);
  // The release for op in `dest` (which must not exist): from the build's
  // file index, the unchanged files linked from `reuse` and only the others
  // fetched (`by_files` set), when the source serves files and an intact
  // release is there; else, or when that fails (logged), FetchAndExtract.
  Result<Manifest> BuildRelease(const agent_runner::Layout& l, const DeployArtifactOp& op,
                                BlobSource& blobs, const std::filesystem::path& dest,
                                const ArchiveLimits& limits,
                                const agent_runner::ReuseRelease* reuse, ExtractStats& stats,
                                bool& by_files, const RunnerLog& log, const CancelToken& cancel,
                                const ProgressFn& report);
  // The update path of BuildRelease (runner_fetch_files.cpp): nullopt when
  // the source serves no files; the index is checked against the build's
  // manifest hash and limits, every fetched file against its sha256.
  Result<std::optional<Manifest>> FetchChangedFiles(const agent_runner::Layout& l,
                                                    const DeployArtifactOp& op, BlobSource& blobs,
                                                    const std::filesystem::path& dest,
                                                    const ArchiveLimits& limits,
                                                    const ReuseSource& reuse, ExtractStats& stats,
                                                    const RunnerLog& log, const CancelToken& cancel,
                                                    const ProgressFn& report);
  Result<Manifest> FetchIndex(const agent_runner::Layout& l, const DeployArtifactOp& op,
                              BlobSource& blobs, const ArchiveLimits& limits,
                              const CancelToken& cancel, bool* served);
  Result<std::filesystem::path> ObtainBlob(const agent_runner::Layout& l,
                                           const DeployArtifactOp& op, BlobSource& blobs,
                                           const RunnerLog& log, const CancelToken& cancel,
                                           const ProgressFn& progress);

  // compose-release (runner_compose.cpp, the tree work in compose.cpp).
  OperationOutcome Compose(const std::filesystem::path& root, const ComposeReleaseOp& op,
                           const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                           const CancelToken& cancel, const ProgressFn& progress);

  // exec (runner_exec.cpp).
  OperationOutcome Exec(const std::filesystem::path& root, const ExecOp& op, const RunnerLog& log,
                        const CancelToken& cancel);
};

}  // namespace reprise
