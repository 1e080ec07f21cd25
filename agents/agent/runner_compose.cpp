// compose-release on a target root (a selective rollback record): a new
// release = the live release with chosen components taken back to an earlier
// release's versions, built in tmp/, verified against the composed manifest,
// then switched to like a deploy. Runs under the root's lock (runner.cpp).
#include <filesystem>
#include <functional>
#include <string>

#include "agents/agent/compose.h"
#include "agents/agent/runner_internal.h"
#include "common/crypto.h"
#include "common/fs.h"

namespace reprise {

namespace fs = std::filesystem;
using namespace agent_runner;  // this module's own internals

namespace {

// Where the earlier release's versions are read from.
struct ComposeSource {
  fs::path dir;
  std::string shown;       // for the log: the release name or "artifact web (3fa9c2e81b04)"
  bool temporary = false;  // extracted from the artifact into tmp/: removed afterwards
};

// Why the earlier release's cached directory cannot be used, or "".
std::string CachedSourceProblem(const Layout& l, const ComposeReleaseOp& op) {
  const fs::path dir = l.releases() / op.source_release;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) return "is no longer on the target";
  auto meta = ReadMeta(l, op.source_release);
  if (!meta.ok()) return "has no metadata on the target";
  if (meta->manifest_hash != op.source_manifest_hash) {
    return "does not have the earlier deployment's manifest";
  }
  if (!meta->tree_stamp.empty()) {
    auto stamp = TreeStamp(dir);
    if (!stamp.ok() || *stamp != meta->tree_stamp) {
      return "was changed on the target after it was verified";
    }
  }
  return "";
}

// Fetches an artifact into tmp/ (AgentRunner::Impl::ObtainBlob).
using FetchBlob = std::function<Result<fs::path>(const DeployArtifactOp&)>;

Result<ComposeSource> ObtainSource(const Layout& l, const ComposeReleaseOp& op,
                                   const ArchiveLimits& limits, const FetchBlob& fetch_blob,
                                   const RunnerLog& log) {
  if (!op.source_release.empty()) {
    std::string problem = CachedSourceProblem(l, op);
    if (problem.empty()) return ComposeSource{l.releases() / op.source_release, op.source_release};
    log(op.source_sha256.empty() ? LogLevel::kError : LogLevel::kInfo,
        "release " + op.source_release + " " + problem +
            (op.source_sha256.empty() ? "" : ": taking its versions from its artifact"));
  }
  if (op.source_sha256.empty()) {
    return FailedPrecondition("the earlier release " + op.source_release +
                              " cannot be used and no artifact of it was named");
  }
  DeployArtifactOp fetch;
  fetch.artifact = op.source_artifact.empty() ? "of the earlier release" : op.source_artifact;
  fetch.sha256 = op.source_sha256;
  REPRISE_ASSIGN_OR_RETURN(fs::path blob, fetch_blob(fetch));
  const fs::path dir = l.tmp() / (op.name + ".source-" + RandomHex(4));
  auto manifest = ExtractArchive(blob, dir, limits, {false, true});
  DropTemporaryBlob(l, blob);
  std::error_code ec;
  if (!manifest.ok()) {
    fs::remove_all(dir, ec);
    return manifest.status().WithContext("artifact " + fetch.artifact);
  }
  if (manifest->manifest_hash != op.source_manifest_hash) {
    fs::remove_all(dir, ec);
    return FailedPrecondition("the tree of artifact " + fetch.artifact +
                              " does not match the earlier deployment's manifest (manifest hash " +
                              manifest->manifest_hash.substr(0, 12) + ", expected " +
                              op.source_manifest_hash.substr(0, 12) + ")");
  }
  return ComposeSource{
      dir, "artifact " + fetch.artifact + " (" + op.source_sha256.substr(0, 12) + ")", true};
}

// The checks before anything is written: names, the composed manifest, and
// the live release being the one the record was made for.
Result<Manifest> CheckCompose(const Layout& l, const fs::path& link, const ComposeReleaseOp& op,
                              const std::string& link_name, ReleaseMeta* base_meta) {
  for (const std::string& name : {op.name, op.base_release, op.source_release}) {
    if (!name.empty() && !IsReleaseDirName(name)) {
      return InvalidArgument("'" + name + "' is not a release directory name");
    }
  }
  if (op.manifest_json.empty()) return InvalidArgument("the composed manifest is missing");
  auto composed = ManifestFromJson(op.manifest_json);
  if (!composed.ok()) return composed.status().WithContext("the composed manifest is invalid");
  const std::string current = LinkedRelease(l, link);
  if (current != op.base_release) {
    return FailedPrecondition(link_name + " is " + (current.empty() ? "not a release" : current) +
                              ", not " + op.base_release +
                              ": the target no longer runs the deployment's release");
  }
  auto meta = ReadMeta(l, op.base_release);
  if (!meta.ok()) return FailedPrecondition("release " + op.base_release + " has no metadata");
  if (meta->manifest_hash != op.base_manifest_hash) {
    return FailedPrecondition("release " + op.base_release + " has manifest " +
                              meta->manifest_hash.substr(0, 12) + ", not the deployment's " +
                              op.base_manifest_hash.substr(0, 12));
  }
  *base_meta = *meta;
  return composed;
}

std::string RevertSummary(const ComposeReleaseOp& op, const std::string& source) {
  RevertCounts c = CountReverts(op.reverts);
  return "composing " + op.name + " from " + op.base_release + ": " + std::to_string(c.total()) +
         " reverted (" + std::to_string(c.deletes) + " delete, " + std::to_string(c.overrides) +
         " override, " + std::to_string(c.restores) + " restore)" +
         (source.empty() ? "" : " from " + source);
}

// Moves the verified tree into releases/, labels it as D's build with the
// composed manifest's hash, switches the link to it and records the switch.
OperationOutcome PlaceAndSwitch(const Layout& l, const fs::path& partial, const fs::path& link,
                                const ComposeReleaseOp& op, const ReleaseMeta& base,
                                const DeployLabel& label, const Manifest& composed, bool fsync,
                                const RunnerLog& log, const ProgressFn& progress) {
  std::error_code ec;
  const fs::path release_dir = l.releases() / op.name;
  Status placed = PlaceRelease(l, partial, release_dir);
  if (!placed.ok()) {
    fs::remove_all(partial, ec);
    return OperationOutcome::Error(placed);
  }
  if (fsync) (void)FsyncDir(l.releases());
  // Labelled as D's build: the target still runs that build, with components
  // reverted; the manifest hash says which tree exactly.
  ReleaseMeta m{op.name,
                base.release.empty() ? label.release : base.release,
                base.build.empty() ? label.build : base.build,
                base.artifact,
                base.sha256,
                composed.manifest_hash,
                composed.file_count,
                composed.total_bytes,
                ""};
  auto stamp = TreeStamp(release_dir);
  if (stamp.ok()) m.tree_stamp = *stamp;
  Status written = WriteReleaseManifest(l, op.name, composed);
  if (written.ok()) written = WriteMeta(l, m);
  if (!written.ok()) return OperationOutcome::Error(written);

  return SwitchToRelease(l, link, op.to, op.name, op.keep, fsync, log, progress);
}

}  // namespace

OperationOutcome AgentRunner::Impl::Compose(const fs::path& root, const ComposeReleaseOp& op,
                                            const DeployLabel& label, BlobSource& blobs,
                                            const RunnerLog& log, const CancelToken& cancel,
                                            const ProgressFn& progress) {
  const Layout l{root};
  const std::string kind = "compose-release: ";
  fs::path link = root / "current";
  if (!op.to.empty()) {
    auto p = Checked(root, op.to, false);
    if (!p.ok()) return FailWith(p.status().WithContext("compose-release"));
    link = *p;
  }
  const std::string link_name = op.to.empty() ? "current" : op.to;
  ReleaseMeta base;
  auto composed = CheckCompose(l, link, op, link_name, &base);
  if (!composed.ok()) {
    return OperationOutcome::Failed(kind + composed.status().message() + "; nothing was changed");
  }
  const fs::path base_dir = l.releases() / op.base_release;
  if (!base.tree_stamp.empty()) {
    auto stamp = TreeStamp(base_dir);
    if (!stamp.ok() || *stamp != base.tree_stamp) {
      log(LogLevel::kWarning, "release " + op.base_release +
                                  " was changed on the target after it was verified: the "
                                  "composed release is checked in full against its manifest");
    }
  }
  if (Status prepared = PrepareLayout(l); !prepared.ok()) return OperationOutcome::Error(prepared);

  ComposeSource source;
  const RevertCounts counts = CountReverts(op.reverts);
  if (counts.overrides + counts.restores > 0) {
    FetchBlob fetch_blob = [&](const DeployArtifactOp& fetch) {
      ProgressFn report = [&progress](const TransferProgress& p) {
        if (progress) progress(p);
      };
      return ObtainBlob(l, fetch, blobs, log, cancel, report);
    };
    const ArchiveLimits& limits = label.limits ? *label.limits : options.limits;
    auto found = ObtainSource(l, op, limits, fetch_blob, log);
    if (!found.ok()) {
      if (found.status().code() == Code::kCancelled) return OperationOutcome::Error(found.status());
      return OperationOutcome::Failed(kind + found.status().message() + "; nothing was changed");
    }
    source = *found;
  }
  log(LogLevel::kInfo, RevertSummary(op, source.shown));

  std::error_code ec;
  const fs::path partial = l.tmp() / (op.name + ".partial-" + RandomHex(4));
  Status built = CopyReleaseTree(base_dir, partial, cancel);
  if (built.ok()) built = ApplyReverts(partial, source.dir, op.reverts, *composed);
  if (built.ok()) built = VerifyComposedTree(partial, *composed);
  if (source.temporary) fs::remove_all(source.dir, ec);
  if (built.ok() && options.fsync) built = SyncFilesystem(partial);
  if (built.ok() && cancel.IsCancelled()) built = Cancelled("cancelled");
  if (!built.ok()) {
    fs::remove_all(partial, ec);
    if (built.code() == Code::kCancelled) return OperationOutcome::Error(built);
    return OperationOutcome::Failed(kind + built.message() + "; nothing was switched");
  }
  log(LogLevel::kInfo,
      "verified against the composed manifest (" + composed->manifest_hash.substr(0, 12) + ")");

  return PlaceAndSwitch(l, partial, link, op, base, label, *composed, options.fsync, log, progress);
}

}  // namespace reprise
