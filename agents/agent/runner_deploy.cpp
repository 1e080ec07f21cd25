// deploy-artifact: fetching the archive, extracting it into a new release
// directory (atomic mode) or mirroring it into a directory (copy and sync
// modes), then switching the release link.
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "agents/agent/runner_internal.h"
#include "common/crypto.h"
#include "common/fs.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace agent_runner;  // this module's own internals

// The failure message when what was extracted is not the build's tree (the
// manifest hash the server recorded at upload), or nullopt when it matches or
// the server sent none.
std::optional<std::string> ManifestMismatch(const DeployArtifactOp& op, const DeployLabel& label,
                                            const Manifest& extracted) {
  if (op.manifest_hash.empty() || extracted.manifest_hash == op.manifest_hash) return std::nullopt;
  return "deploy-artifact: the tree extracted from artifact " + op.artifact +
         (label.build.empty() ? "" : " of build " + label.build) +
         " does not match the build's manifest (manifest hash " +
         extracted.manifest_hash.substr(0, 12) + ", the build's " + op.manifest_hash.substr(0, 12) +
         "); nothing was switched";
}

// True when releases/<name> holds this artifact, unchanged since it was
// extracted and verified: then only the switch is left to do.
bool ReusableRelease(const Layout& l, const DeployArtifactOp& op, const std::string& name,
                     ReleaseWatch* watch, const RunnerLog& log) {
  std::error_code ec;
  const fs::path release_dir = l.releases() / name;
  auto meta = ReadMeta(l, name);
  bool cached = fs::is_directory(fs::symlink_status(release_dir, ec)) && meta.ok() &&
                meta->sha256 == op.sha256;
  if (cached && !op.manifest_hash.empty() && meta->manifest_hash != op.manifest_hash) {
    log(LogLevel::kWarning, "release " + name +
                                " on the target does not have the build's manifest: extracting it "
                                "again");
    cached = false;
  }
  // Only the switch, if nothing below the release changed since it was
  // extracted and verified: the watch says so without a walk, else one
  // lstat per entry, no content read.
  if (cached && !meta->tree_stamp.empty() &&
      !(watch && watch->UnchangedSince(release_dir, meta->tree_stamp))) {
    auto stamp = TreeStamp(release_dir);
    if (!stamp.ok() || *stamp != meta->tree_stamp) {
      log(LogLevel::kWarning,
          "release " + name +
              " was changed on the target after it was extracted (files written, added or "
              "removed): extracting it again");
      cached = false;
    }
  }
  if (cached) {
    log(LogLevel::kInfo,
        "release " + name +
            (meta->tree_stamp.empty() ? " is still on the target: switching only"
                                      : " is still on the target, unchanged since it was verified: "
                                        "switching only"));
  }
  return cached;
}

// Extraction progress as it goes: the entries (files and directories) written
// so far, every 256 entries or 250 ms, whichever comes first; the report after
// the extraction gives the files of the manifest. Runs on the extraction's
// writer thread while the caller waits in ExtractArchive, which `report`
// outlives.
ExtractProgress ExtractionReporter(const ProgressFn& report) {
  static constexpr uint64_t kEveryEntries = 256;
  static constexpr auto kEvery = std::chrono::milliseconds(250);
  struct Last {
    uint64_t entries = 0;
    std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now();
  };
  auto last = std::make_shared<Last>();
  return [last, &report](uint64_t entries, uint64_t) {
    const auto now = std::chrono::steady_clock::now();
    if (entries > last->entries &&
        (entries - last->entries >= kEveryEntries || now - last->at >= kEvery)) {
      last->entries = entries;
      last->at = now;
      report({"extract", 0, 0, entries, 0});
    }
    return true;
  };
}

}  // namespace

Result<fs::path> AgentRunner::Impl::ObtainBlob(const Layout& l, const DeployArtifactOp& op,
                                               BlobSource& blobs, const RunnerLog& log,
                                               const CancelToken& cancel,
                                               const ProgressFn& progress) {
  // The archive is only needed until it is extracted: the release directory
  // is the agent's cache. It lands in tmp/ and is removed after extraction
  // (before the syncfs, so its pages need never reach the disk).
  std::error_code ec;
  fs::path cached = l.tmp() / ("blob-" + op.sha256);
  log(LogLevel::kInfo, "fetching artifact " + op.artifact + " (" + op.sha256.substr(0, 12) + ")");
  auto fetched = blobs.Fetch(op.sha256, cached, cancel, progress);
  if (!fetched.ok()) return fetched.status();
  if (!fetched->verified) {
    REPRISE_ASSIGN_OR_RETURN(std::string got, Sha256File(fetched->path));
    if (got != op.sha256) {
      if (fetched->path == cached) fs::remove(cached, ec);
      return Conflict("artifact " + op.artifact + " has sha256 " + got + ", expected " + op.sha256);
    }
  }
  return fetched->path;
}

Result<Manifest> AgentRunner::Impl::FetchAndExtract(const Layout& l, const DeployArtifactOp& op,
                                                    BlobSource& blobs, const fs::path& dest,
                                                    const ArchiveLimits& limits,
                                                    const ExtractOptions& options,
                                                    const RunnerLog& log, const CancelToken& cancel,
                                                    const ProgressFn& report) {
  const fs::path cached = l.tmp() / ("blob-" + op.sha256);
  REPRISE_ASSIGN_OR_RETURN(std::unique_ptr<BlobStream> stream,
                           blobs.Stream(op.sha256, cached, cancel, report));
  if (!stream) {
    REPRISE_ASSIGN_OR_RETURN(fs::path blob, ObtainBlob(l, op, blobs, log, cancel, report));
    if (cancel.IsCancelled()) {
      DropTemporaryBlob(l, blob);
      return Cancelled("cancelled");
    }
    report({"extract", 0, 0, 0, 0});
    auto manifest = ExtractArchive(blob, dest, limits, options, ExtractionReporter(report));
    DropTemporaryBlob(l, blob);
    return manifest;
  }
  log(LogLevel::kInfo, "fetching artifact " + op.artifact + " (" + op.sha256.substr(0, 12) +
                           ") and extracting it as it arrives");
  report({"extract", 0, 0, 0, 0});
  auto manifest = ExtractArchiveStream(*stream, dest, limits, options, ExtractionReporter(report));
  if (!manifest.ok()) {
    // The transfer's own failure explains a broken stream best.
    Status transfer = stream->Abandon();
    if (cancel.IsCancelled()) return Cancelled("cancelled");
    if (!transfer.ok()) return transfer;
    return manifest;
  }
  // The extraction may stop reading before the last bytes (past the tar's
  // end): the whole blob must still arrive and match before anything is used.
  auto fetched = stream->Finish();
  if (!fetched.ok()) {
    std::error_code ec;
    fs::remove_all(dest, ec);
    return fetched.status();
  }
  DropTemporaryBlob(l, fetched->path);
  return manifest;
}

OperationOutcome AgentRunner::Impl::Deploy(const fs::path& root, const DeployArtifactOp& op,
                                           const DeployLabel& label, BlobSource& blobs,
                                           const RunnerLog& log, const CancelToken& cancel,
                                           const ProgressFn& progress) {
  Layout l{root};
  if (!IsHex64(op.sha256)) {
    return OperationOutcome::Failed("deploy-artifact: invalid sha256 '" + op.sha256 + "'");
  }
  if (Status prepared = PrepareLayout(l); !prepared.ok()) return OperationOutcome::Error(prepared);
  // Each phase reports what it counts; later phases carry the earlier counts
  // along, so the last report still says how many bytes came over and how
  // many files were extracted (the deployment page shows it as finished).
  // The transfer reports from the receiving thread while the extraction
  // reports from its writer thread: one report at a time.
  TransferProgress seen;
  std::mutex seen_mu;
  ProgressFn tracked = [&](const TransferProgress& p) {
    std::lock_guard<std::mutex> lock(seen_mu);
    if (p.bytes_done || p.bytes_total) {
      seen.bytes_done = p.bytes_done;
      seen.bytes_total = p.bytes_total;
    }
    if (p.files_done || p.files_total) {
      seen.files_done = p.files_done;
      seen.files_total = p.files_total;
    }
    seen.phase = p.phase;
    if (progress) progress(seen);
  };
  if (op.mode != DeployMode::kAtomic) return DeployInto(l, op, label, blobs, log, cancel, tracked);
  return DeployRelease(l, op, label, blobs, log, cancel, tracked);
}

OperationOutcome AgentRunner::Impl::DeployInto(const Layout& l, const DeployArtifactOp& op,
                                               const DeployLabel& label, BlobSource& blobs,
                                               const RunnerLog& log, const CancelToken& cancel,
                                               const ProgressFn& report) {
  std::error_code ec;
  const ArchiveLimits& limits = label.limits ? *label.limits : options.limits;
  // Files are written into the destination: a link there is followed, so
  // it must lead inside the root, and not into the releases the agent keeps.
  auto dest = Checked(l.root, op.to, true, /*follow_last=*/true);
  if (!dest.ok()) return FailWith(dest.status().WithContext("deploy-artifact"));
  if (IsWithin(*dest, l.state_dir())) {
    return OperationOutcome::Failed("deploy-artifact: to '" + op.to +
                                    "' leads into the agent's state directory " +
                                    l.state_dir().string());
  }
  auto blob = ObtainBlob(l, op, blobs, log, cancel, report);
  if (!blob.ok()) {
    if (blob.status().code() == Code::kCancelled) return OperationOutcome::Error(blob.status());
    return OperationOutcome::Failed("deploy-artifact: " + blob.status().message());
  }
  fs::path staging = l.tmp() / ("stage-" + RandomHex(6));
  report({"extract", 0, 0, 0, 0});
  auto manifest = ExtractArchive(*blob, staging, limits, {false, true}, ExtractionReporter(report));
  if (!manifest.ok()) {
    fs::remove_all(staging, ec);
    return OperationOutcome::Failed("deploy-artifact: " + manifest.status().message());
  }
  if (auto differs = ManifestMismatch(op, label, *manifest)) {
    fs::remove_all(staging, ec);
    DropTemporaryBlob(l, *blob);
    return OperationOutcome::Failed(*differs);
  }
  fs::create_directories(*dest, ec);
  DropTemporaryBlob(l, *blob);
  auto out = Mirror(l, *dest, staging, *manifest, op.mode == DeployMode::kSync, log, cancel);
  fs::remove_all(staging, ec);
  if (!out.succeeded()) return out;
  // Remote agents keep the archive only while a release references it.
  DeployState st = ReadState(l);
  PruneReleases(l, st, op.keep, log);
  report({"done", 0, 0, manifest->file_count, manifest->file_count});
  return out;
}

OperationOutcome AgentRunner::Impl::DeployRelease(const Layout& l, const DeployArtifactOp& op,
                                                  const DeployLabel& label, BlobSource& blobs,
                                                  const RunnerLog& log, const CancelToken& cancel,
                                                  const ProgressFn& report) {
  std::error_code ec;
  fs::path link = op.to.empty() ? l.root / "current" : fs::path();
  if (!op.to.empty()) {
    auto p = Checked(l.root, op.to, false);
    if (!p.ok()) return FailWith(p.status());
    link = *p;
  }
  if (fs::is_directory(fs::symlink_status(link, ec))) {
    return OperationOutcome::Failed("deploy-artifact: " + link.string() +
                                    " is a directory, not a release link; move it away first");
  }
  const std::string name = ReleaseDirName(label, op.artifact, op.sha256);
  std::optional<std::vector<std::string>> restamp;
  OperationOutcome installed =
      InstallRelease(l, op, label, name, blobs, log, cancel, report, restamp);
  if (!restamp) {  // only the switch
    if (!installed.succeeded()) return installed;
    return SwitchToRelease(l, link, op.to, name, op.keep, options.fsync, log, report);
  }
  // Extracted: linking, replacing and pruning moved the ctime of inodes the
  // releases intact before share; their stamps and the new one's are taken
  // once all of it is done.
  if (!installed.succeeded()) {
    Restamp(l, *restamp);
    return installed;
  }
  std::optional<StampBound> bound;
  OperationOutcome switched = SwitchToRelease(l, link, op.to, name, op.keep, options.fsync, log,
                                              report, /*keep_stamps=*/false, &bound);
  restamp->push_back(name);
  // Taking the stamps walks every release (one lstat per entry): after the
  // result is reported, unless the filesystem's clock cannot bound them.
  // They are the same then: a change after the bound, the switch's included,
  // fails the release's stamp whenever it is taken.
  if (bound) {
    SettleLater(l, std::move(*restamp), *bound);
  } else {
    Restamp(l, *restamp);
  }
  return switched;
}

OperationOutcome AgentRunner::Impl::InstallRelease(
    const Layout& l, const DeployArtifactOp& op, const DeployLabel& label, const std::string& name,
    BlobSource& blobs, const RunnerLog& log, const CancelToken& cancel, const ProgressFn& report,
    std::optional<std::vector<std::string>>& restamp) {
  if (ReusableRelease(l, op, name, watch.get(), log)) return OperationOutcome::Succeeded();
  std::error_code ec;
  const ArchiveLimits& limits = label.limits ? *label.limits : options.limits;
  const fs::path release_dir = l.releases() / name;
  fs::path partial = l.tmp() / (name + ".partial-" + RandomHex(4));
  // From here on link counts of released inodes change: the releases whose
  // stamps hold now are the ones to stamp again, and the ones to reuse from.
  restamp = IntactReleases(l, name, watch.get());
  std::optional<ReuseRelease> reuse = PickReuseSource(l, *restamp, name, reuse_sources);
  ExtractStats stats;
  bool by_files = false;
  auto manifest = BuildRelease(l, op, blobs, partial, limits, reuse ? &*reuse : nullptr, stats,
                               by_files, log, cancel, report);
  if (!manifest.ok()) {
    fs::remove_all(partial, ec);
    if (manifest.status().code() == Code::kCancelled)
      return OperationOutcome::Error(manifest.status());
    return OperationOutcome::Failed("deploy-artifact: " + manifest.status().message());
  }
  if (auto differs = ManifestMismatch(op, label, *manifest)) {
    fs::remove_all(partial, ec);
    return OperationOutcome::Failed(*differs);
  }
  // The stamp is taken once the operation is over (DeployRelease); until
  // then a stamp that matches nothing, so a crash before it means "extract
  // again", never "trust". The manifest and metadata are written before the
  // sync, which makes them durable together with the tree.
  ReleaseMeta m{name,      label.release,           label.build,          op.artifact,
                op.sha256, manifest->manifest_hash, manifest->file_count, manifest->total_bytes,
                kUnstamped};
  Status st = WriteReleaseManifest(l, name, *manifest, Durable::kLater);
  if (st.ok()) st = WriteMeta(l, m, Durable::kLater);
  if (st.ok() && options.fsync) st = SyncFilesystem(partial);
  if (st.ok() && cancel.IsCancelled()) st = Cancelled("cancelled");
  if (st.ok()) st = PlaceRelease(l, partial, release_dir);
  if (!st.ok()) {
    fs::remove_all(partial, ec);
    if (!fs::exists(fs::symlink_status(release_dir, ec))) {  // nothing for them to describe
      fs::remove(l.meta() / (name + ".json"), ec);
      RemoveReleaseManifest(l, name);
    }
    return OperationOutcome::Error(st);
  }
  if (options.fsync) (void)FsyncDir(l.releases());
  // The next update of this target most likely reuses from this release.
  reuse_sources.Put(
      manifest->manifest_hash,
      std::make_shared<const ReuseSource>(ReuseSource::FromManifest(release_dir, *manifest)));
  const std::string linked = reuse ? ", " + std::to_string(stats.linked_files) + " unchanged (" +
                                         std::to_string(stats.linked_bytes) +
                                         " bytes) linked from " + reuse->name
                                   : "";
  log(LogLevel::kInfo, std::string(by_files ? "built " : "extracted ") +
                           std::to_string(manifest->file_count) + " files (" +
                           std::to_string(manifest->total_bytes) + " bytes) into " + name + linked +
                           (op.manifest_hash.empty() ? ""
                                                     : ", verified against the build's manifest (" +
                                                           op.manifest_hash.substr(0, 12) + ")"));
  report({"extract", 0, 0, manifest->file_count, manifest->file_count});
  return OperationOutcome::Succeeded();
}

OperationOutcome AgentRunner::Impl::Mirror(const Layout& l, const fs::path& dest,
                                           const fs::path& staging, const Manifest& manifest,
                                           bool remove_extra, const RunnerLog& log,
                                           const CancelToken& cancel) {
  std::error_code ec;
  uint64_t added = 0, changed = 0, unchanged = 0, deleted = 0;
  std::set<std::string> wanted;
  for (const auto& e : manifest.entries) {
    if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("cancelled"));
    wanted.insert(e.path);
    if (dest == l.root && *fs::path(e.path).begin() == kStateDir) {
      return OperationOutcome::Failed("the artifact contains " + e.path +
                                      ", which is the agent's state directory");
    }
    fs::path to = dest / e.path;
    fs::path from = staging / e.path;
    auto cur = fs::symlink_status(to, ec);
    bool exists = fs::exists(cur);
    if (e.type == EntryType::kDirectory) {
      if (exists && !fs::is_directory(cur)) {
        fs::remove_all(to, ec);
        exists = false;
      }
      if (!exists) {
        fs::create_directory(to, ec);
        if (ec) return OperationOutcome::Failed("mkdir " + e.path + ": " + ec.message());
        ++added;
      }
      ::chmod(to.c_str(), e.mode & 07777);
      continue;
    }
    bool same = false;
    if (exists) {
      if (e.type == EntryType::kSymlink) {
        same = fs::is_symlink(cur) && fs::read_symlink(to, ec).string() == e.link_target;
      } else {
        struct stat sb;
        same = fs::is_regular_file(cur) && ::lstat(to.c_str(), &sb) == 0 &&
               static_cast<uint64_t>(sb.st_size) == e.size && (sb.st_mode & 07777) == e.mode &&
               HashOrEmpty(to) == e.sha256;
      }
    }
    if (same) {
      ++unchanged;
      continue;
    }
    if (exists && fs::is_directory(cur)) fs::remove_all(to, ec);
    // Hardlinks in staging share an inode; renaming moves just this name.
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return OperationOutcome::Failed(ErrnoText("replacing " + e.path));
    }
    ++(exists ? changed : added);
  }
  if (remove_extra) {
    std::vector<fs::path> extra;
    for (auto it = fs::recursive_directory_iterator(dest, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::string rel = it->path().lexically_relative(dest).generic_string();
      if (dest == l.root && (rel == kStateDir || rel == "current")) {
        it.disable_recursion_pending();
        continue;
      }
      if (!wanted.count(rel)) {
        extra.push_back(it->path());
        it.disable_recursion_pending();
      }
    }
    for (const auto& p : extra) {
      deleted += fs::remove_all(p, ec) > 0 ? 1 : 0;
    }
  }
  if (options.fsync) (void)SyncFilesystem(dest);
  log(LogLevel::kInfo, std::to_string(added) + " added, " + std::to_string(changed) + " changed, " +
                           std::to_string(deleted) + " deleted, " + std::to_string(unchanged) +
                           " unchanged");
  return OperationOutcome::Succeeded();
}

}  // namespace reprise
