#include "agents/agent/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>  // renameat2
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "agents/agent/http_check.h"
#include "common/crypto.h"
#include "common/fs.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kStateDir = ".reprise";

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// True when `child` is `parent` or below it (both absolute, normalised).
bool IsWithin(const fs::path& child, const fs::path& parent) {
  auto c = child.begin();
  for (auto p = parent.begin(); p != parent.end(); ++p, ++c) {
    if (p->empty()) continue;  // trailing separator
    if (c == child.end() || *c != *p) return false;
  }
  return true;
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

struct Layout {
  fs::path root;
  fs::path state_dir() const { return root / kStateDir; }
  fs::path releases() const { return state_dir() / "releases"; }
  fs::path meta() const { return state_dir() / "meta"; }
  fs::path blobs() const { return state_dir() / "blobs"; }
  fs::path tmp() const { return state_dir() / "tmp"; }
  fs::path state_file() const { return state_dir() / "state.json"; }
};

struct ReleaseMeta {
  std::string name, release, build, artifact, sha256, manifest_hash;
  uint64_t file_count = 0, total_bytes = 0;
  // TreeStamp of the release directory once it was extracted and verified;
  // "" in metadata written before it was kept.
  std::string tree_stamp;
};

std::string MetaToJson(const ReleaseMeta& m) {
  json j = {{"name", m.name},
            {"release", m.release},
            {"build", m.build},
            {"artifact", m.artifact},
            {"sha256", m.sha256},
            {"manifest_hash", m.manifest_hash},
            {"file_count", m.file_count},
            {"total_bytes", m.total_bytes},
            {"tree_stamp", m.tree_stamp}};
  return j.dump();
}

Result<ReleaseMeta> ReadMeta(const Layout& l, const std::string& name) {
  REPRISE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(l.meta() / (name + ".json")));
  try {
    json j = json::parse(text);
    ReleaseMeta m;
    m.name = j.at("name").get<std::string>();
    m.release = j.value("release", "");
    m.build = j.value("build", "");
    m.artifact = j.value("artifact", "");
    m.sha256 = j.at("sha256").get<std::string>();
    m.manifest_hash = j.value("manifest_hash", "");
    m.file_count = j.value("file_count", uint64_t{0});
    m.total_bytes = j.value("total_bytes", uint64_t{0});
    m.tree_stamp = j.value("tree_stamp", "");
    return m;
  } catch (const std::exception& e) {
    return Internal("release metadata " + name + " is corrupt: " + e.what());
  }
}

struct DeployState {
  std::string current, previous;
  std::vector<std::string> history;  // oldest first, each name once
};

DeployState ReadState(const Layout& l) {
  DeployState s;
  auto text = ReadFileToString(l.state_file());
  if (!text.ok()) return s;
  try {
    json j = json::parse(*text);
    s.current = j.value("current", "");
    s.previous = j.value("previous", "");
    s.history = j.value("history", std::vector<std::string>{});
  } catch (const std::exception&) {
  }
  return s;
}

Status WriteState(const Layout& l, const DeployState& s) {
  json j = {{"current", s.current}, {"previous", s.previous}, {"history", s.history}};
  return WriteFileAtomic(l.state_file(), j.dump(), 0644);
}

// The release directory name `current` (or another link) points at, or "".
std::string LinkedRelease(const Layout& l, const fs::path& link) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(link, ec))) return "";
  fs::path target = fs::read_symlink(link, ec);
  if (ec) return "";
  fs::path abs = (link.parent_path() / target).lexically_normal();
  if (abs.parent_path() != l.releases().lexically_normal()) return "";
  return abs.filename().string();
}

Status RemoveTree(const Layout& l, const fs::path& dir) {
  // Rename first so a crash never leaves a half-deleted directory in place.
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return Status::Ok();
  fs::path grave = l.tmp() / ("remove-" + RandomHex(6));
  fs::create_directories(l.tmp(), ec);
  fs::rename(dir, grave, ec);
  if (ec) return IoError("cannot remove " + dir.string() + ": " + ec.message());
  fs::remove_all(grave, ec);
  if (ec) return IoError("cannot remove " + grave.string() + ": " + ec.message());
  return Status::Ok();
}

// Moves a freshly extracted release into place. When a directory of that
// name is there already (changed on the target, or its metadata lost) it may
// be what `current` points to: the two are exchanged in one renameat2, so the
// name never dangles, and the old tree is removed afterwards.
Status PlaceRelease(const Layout& l, const fs::path& partial, const fs::path& release_dir) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(release_dir, ec))) {
    if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, release_dir.c_str(), RENAME_EXCHANGE) ==
        0) {
      return RemoveTree(l, partial);  // now the old tree
    }
    if (errno != EINVAL && errno != ENOSYS)
      return IoError(ErrnoText("exchanging " + release_dir.string()));
    // A filesystem without RENAME_EXCHANGE: remove, then rename.
    REPRISE_RETURN_IF_ERROR(RemoveTree(l, release_dir));
  }
  fs::rename(partial, release_dir, ec);
  if (ec) return IoError("rename into releases: " + ec.message());
  return Status::Ok();
}

// Makes everything written on the filesystem holding `dir` durable with one
// syncfs(2): one call instead of an fsync per extracted file and directory.
Status SyncFilesystem(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(ErrnoText("open " + dir.string()));
  int rc = ::syncfs(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("syncfs " + dir.string() + ": " + std::strerror(err));
  return Status::Ok();
}

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

OperationOutcome FailWith(const Status& st) { return OperationOutcome::Failed(st.message()); }

// What a step's process inherits from the agent: only what programs need to
// run (where to find commands, the home and temporary directories, locale and
// time zone). The agent's environment also holds its own secrets (the local
// agent runs inside the server, with REPRISE_ADMIN_TOKEN; a remote agent may
// have REPRISE_ENROLL_TOKEN), and a step's output goes into the deployment
// log, so nothing else is passed on; a step names what else it needs in its
// `env`.
std::map<std::string, std::string> ChildEnvironment() {
  static constexpr const char* kInherited[] = {
      "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"};
  std::map<std::string, std::string> env;
  for (const char* name : kInherited) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  return env;
}

// Hash of a regular file, or "" when unreadable.
std::string HashOrEmpty(const fs::path& p) {
  auto h = Sha256File(p);
  return h.ok() ? *h : std::string();
}

}  // namespace

std::string ReleaseDirName(const DeployLabel& label, std::string_view artifact,
                           std::string_view sha256) {
  auto clean = [](std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 64)) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '+';
      out.push_back(ok ? c : '_');
    }
    if (out.empty() || out == "." || out == "..") out = "_";
    return out;
  };
  std::string sha12(sha256.substr(0, 12));
  if (label.release.empty() && label.build.empty()) {
    return clean(artifact.empty() ? "artifact" : artifact) + "-" + clean(sha12);
  }
  return clean(label.release) + "-" + clean(label.build) + "-" + clean(sha12);
}

struct AgentRunner::Impl {
  RunnerOptions options;
  std::mutex locks_mu;
  std::map<std::string, std::shared_ptr<std::mutex>> locks;

  std::shared_ptr<std::mutex> LockFor(const fs::path& root) {
    std::lock_guard<std::mutex> g(locks_mu);
    auto& m = locks[root.string()];
    if (!m) m = std::make_shared<std::mutex>();
    return m;
  }

  // `rel` under `root` (canonical), refusing anything that escapes it and the
  // agent's own state directory. Each existing component is looked at with
  // lstat(2): a symlink among the leading components is resolved and must
  // lead to an existing place inside the root, so nothing is ever written
  // through a link to somewhere else. The last component is resolved the same
  // way with `follow_last` (the caller writes into what it names, e.g. a sync
  // destination); without, it is returned as is, for callers that act on a
  // link there themselves (rename over it, remove it), never on its target.
  Result<fs::path> Checked(const fs::path& root, std::string_view rel, bool allow_root,
                           bool follow_last = false) {
    const std::string quoted = "path '" + std::string(rel) + "'";
    if (rel.empty() || rel == ".") {
      if (allow_root) return root;
      return PermissionDenied("the target root itself is not a valid path here");
    }
    if (!IsSafeRelativePath(rel)) return PermissionDenied(quoted + " escapes the target root");
    fs::path p = (root / fs::path(rel)).lexically_normal();
    if (!IsWithin(p, root) || p == root) {
      return PermissionDenied(quoted + " escapes the target root");
    }
    fs::path first = *fs::path(rel).lexically_normal().begin();
    if (first == kStateDir) return PermissionDenied(quoted + " is inside the agent's state");
    std::vector<fs::path> parts;
    for (const auto& c : fs::path(rel).lexically_normal()) {
      if (!c.empty() && c != ".") parts.push_back(c);
    }
    fs::path cur = root;
    for (size_t i = 0; i < parts.size(); ++i) {
      fs::path next = cur / parts[i];
      struct stat st;
      if (::lstat(next.c_str(), &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
          return IoError(ErrnoText("lstat " + next.string()));
        // The rest does not exist yet: nothing there to follow.
        for (size_t j = i; j < parts.size(); ++j) cur /= parts[j];
        return cur;
      }
      const bool last = i + 1 == parts.size();
      if (!S_ISLNK(st.st_mode) || (last && !follow_last)) {
        cur = next;
        continue;
      }
      const std::string via = last ? quoted + " is a symlink that leads "
                                   : quoted + " passes through the symlink '" +
                                         next.lexically_relative(root).string() + "', which leads ";
      std::error_code ec;
      fs::path target = fs::canonical(next, ec);
      if (ec) return PermissionDenied(via + "nowhere");
      if (!IsWithin(target, root)) return PermissionDenied(via + "outside the target root");
      cur = target;
    }
    return cur;
  }

  OperationOutcome Deploy(const fs::path& root, const DeployArtifactOp& op,
                          const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                          const CancelToken& cancel, const ProgressFn& progress);
  OperationOutcome Mirror(const Layout& l, const fs::path& dest, const fs::path& staging,
                          const Manifest& manifest, bool remove_extra, const RunnerLog& log,
                          const CancelToken& cancel);
  Result<fs::path> ObtainBlob(const Layout& l, const DeployArtifactOp& op, BlobSource& blobs,
                              const RunnerLog& log, const CancelToken& cancel,
                              const ProgressFn& progress);
  void Prune(const Layout& l, DeployState& st, int keep, const RunnerLog& log);
  OperationOutcome Exec(const fs::path& root, const ExecOp& op, const RunnerLog& log,
                        const CancelToken& cancel);
  // Removes a fetched archive (never a file the source owns, e.g. the server's
  // blob store for the local agent).
  static void DropTemporaryBlob(const Layout& l, const fs::path& blob) {
    if (blob.parent_path() == l.tmp()) {
      std::error_code ec;
      fs::remove(blob, ec);
    }
  }
  void CleanTmp(const Layout& l) {
    std::error_code ec;
    if (!fs::exists(l.tmp(), ec)) return;
    for (const auto& e : fs::directory_iterator(l.tmp(), ec)) {
      std::error_code ec2;
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec2);
      fs::remove_all(e.path(), ec2);
      if (ec2) {
        // Read-only directories inside an aborted extraction: open them up.
        for (auto it = fs::recursive_directory_iterator(e.path(), ec2);
             !ec2 && it != fs::recursive_directory_iterator(); it.increment(ec2)) {
          std::error_code ec3;
          if (it->is_directory(ec3) && !it->is_symlink(ec3))
            fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec3);
        }
        fs::remove_all(e.path(), ec2);
      }
    }
  }
};

AgentRunner::AgentRunner(RunnerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}
AgentRunner::~AgentRunner() = default;

Result<fs::path> AgentRunner::ResolveTargetRoot(std::string_view target_path) const {
  if (target_path.empty()) return InvalidArgument("the target has no path");
  if (target_path.find('\0') != std::string_view::npos) return InvalidArgument("bad target path");
  fs::path p(target_path);
  std::error_code ec;
  fs::path allowed;
  if (!impl_->options.allowed_root.empty()) {
    allowed = fs::weakly_canonical(fs::absolute(impl_->options.allowed_root), ec);
    if (p.is_relative()) p = allowed / p;
  } else if (p.is_relative()) {
    return InvalidArgument("target path '" + std::string(target_path) + "' must be absolute");
  }
  p = p.lexically_normal();
  auto outside = [&] {
    return PermissionDenied("target path '" + std::string(target_path) +
                            "' is outside this agent's root " + allowed.string());
  };
  // Checked before the directory is created, so a refused target leaves
  // nothing behind, and again after, when symlinks on the way resolve.
  fs::path canon = fs::weakly_canonical(p, ec);
  if (ec) return IoError("target root " + p.string() + ": " + ec.message());
  if (!allowed.empty() && !IsWithin(canon, allowed)) return outside();
  fs::create_directories(p, ec);
  canon = fs::weakly_canonical(p, ec);
  if (ec) return IoError("target root " + p.string() + ": " + ec.message());
  if (!allowed.empty() && !IsWithin(canon, allowed)) return outside();
  if (!fs::is_directory(canon, ec)) {
    return FailedPrecondition("target root " + canon.string() + " is not a directory");
  }
  return canon;
}

void AgentRunner::CleanTemporaries(const fs::path& root) {
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  impl_->CleanTmp(Layout{root});
}

OperationOutcome AgentRunner::Run(std::string_view target_path, const ResolvedOperation& op,
                                  const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                                  const CancelToken& cancel, const ProgressFn& progress) {
  auto root_or = ResolveTargetRoot(target_path);
  if (!root_or.ok()) {
    if (root_or.status().code() == Code::kPermissionDenied)
      return OperationOutcome::Failed(root_or.status().message());
    return OperationOutcome::Error(root_or.status());
  }
  const fs::path root = *root_or;
  if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("cancelled before start"));
  auto lock = impl_->LockFor(root);
  std::unique_lock<std::mutex> guard(*lock);

  return std::visit(
      [&](const auto& o) -> OperationOutcome {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeployArtifactOp>) {
          return impl_->Deploy(root, o, label, blobs, log, cancel, progress);
        } else if constexpr (std::is_same_v<T, WriteFileOp>) {
          auto p = impl_->Checked(root, o.path, false);
          if (!p.ok()) return FailWith(p.status());
          std::error_code ec;
          if (fs::is_directory(fs::symlink_status(*p, ec))) {
            return OperationOutcome::Failed("write-file: " + o.path + " is a directory");
          }
          fs::create_directories(p->parent_path(), ec);
          if (ec) return OperationOutcome::Failed("write-file: " + ec.message());
          Status st = WriteFileAtomic(*p, o.content, o.mode & 07777);
          if (!st.ok()) return OperationOutcome::Failed("write-file: " + st.message());
          log(LogLevel::kInfo,
              "wrote " + o.path + " (" + std::to_string(o.content.size()) + " bytes)");
          return OperationOutcome::Succeeded();
        } else if constexpr (std::is_same_v<T, EnsureDirOp>) {
          auto p = impl_->Checked(root, o.path, false);
          if (!p.ok()) return FailWith(p.status());
          std::error_code ec;
          auto stt = fs::symlink_status(*p, ec);
          if (fs::exists(stt) && !fs::is_directory(stt)) {
            return OperationOutcome::Failed("ensure-dir: " + o.path +
                                            " exists and is not a directory");
          }
          fs::create_directories(*p, ec);
          if (ec) return OperationOutcome::Failed("ensure-dir: " + ec.message());
          if (::chmod(p->c_str(), o.mode & 07777) != 0) {
            return OperationOutcome::Failed("ensure-dir: " + ErrnoText("chmod"));
          }
          log(LogLevel::kInfo, "directory " + o.path + " exists");
          return OperationOutcome::Succeeded();
        } else if constexpr (std::is_same_v<T, DeleteOp>) {
          auto p = impl_->Checked(root, o.path, false);
          if (!p.ok()) return FailWith(p.status());
          std::error_code ec;
          if (!fs::exists(fs::symlink_status(*p, ec))) {
            log(LogLevel::kInfo, o.path + " does not exist; nothing to delete");
            return OperationOutcome::Succeeded();
          }
          auto n = fs::remove_all(*p, ec);
          if (ec) return OperationOutcome::Failed("delete: " + ec.message());
          log(LogLevel::kInfo, "deleted " + o.path + " (" + std::to_string(n) + " entries)");
          return OperationOutcome::Succeeded();
        } else if constexpr (std::is_same_v<T, ExecOp>) {
          guard.unlock();  // a long-running process must not block the target's state
          return impl_->Exec(root, o, log, cancel);
        } else if constexpr (std::is_same_v<T, HttpCheckOp>) {
          guard.unlock();  // only talks to the network; retries may take a while
          return RunHttpCheck(o, log, cancel);
        } else {
          return OperationOutcome::Failed(std::string(OperationKind(op)) +
                                          " does not run on agents");
        }
      },
      op);
}

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

OperationOutcome AgentRunner::Impl::Deploy(const fs::path& root, const DeployArtifactOp& op,
                                           const DeployLabel& label, BlobSource& blobs,
                                           const RunnerLog& log, const CancelToken& cancel,
                                           const ProgressFn& progress) {
  Layout l{root};
  if (!IsHex64(op.sha256)) {
    return OperationOutcome::Failed("deploy-artifact: invalid sha256 '" + op.sha256 + "'");
  }
  std::error_code ec;
  for (const auto& d : {l.state_dir(), l.releases(), l.meta(), l.tmp()}) {
    fs::create_directories(d, ec);
    if (ec) return OperationOutcome::Error(IoError("cannot create " + d.string()));
  }
  CleanTmp(l);
  // Each phase reports what it counts; later phases carry the earlier counts
  // along, so the last report still says how many bytes came over and how
  // many files were extracted (the deployment page shows it as finished).
  TransferProgress seen;
  ProgressFn tracked = [&](const TransferProgress& p) {
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
  auto report = [&](const TransferProgress& p) { tracked(p); };
  const ArchiveLimits& limits = label.limits ? *label.limits : options.limits;

  if (op.mode != DeployMode::kAtomic) {
    // Files are written into the destination: a link there is followed, so
    // it must lead inside the root, and not into the releases the agent keeps.
    auto dest = Checked(root, op.to, true, /*follow_last=*/true);
    if (!dest.ok()) return FailWith(dest.status().WithContext("deploy-artifact"));
    if (IsWithin(*dest, l.state_dir())) {
      return OperationOutcome::Failed("deploy-artifact: to '" + op.to +
                                      "' leads into the agent's state directory " +
                                      l.state_dir().string());
    }
    auto blob = ObtainBlob(l, op, blobs, log, cancel, tracked);
    if (!blob.ok()) {
      if (blob.status().code() == Code::kCancelled) return OperationOutcome::Error(blob.status());
      return OperationOutcome::Failed("deploy-artifact: " + blob.status().message());
    }
    fs::path staging = l.tmp() / ("stage-" + RandomHex(6));
    report({"extract", 0, 0, 0, 0});
    auto manifest = ExtractArchive(*blob, staging, limits, {false, true});
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
    Prune(l, st, op.keep, log);
    report({"done", 0, 0, manifest->file_count, manifest->file_count});
    return out;
  }

  fs::path link = op.to.empty() ? root / "current" : fs::path();
  if (!op.to.empty()) {
    auto p = Checked(root, op.to, false);
    if (!p.ok()) return FailWith(p.status());
    link = *p;
  }
  if (fs::is_directory(fs::symlink_status(link, ec))) {
    return OperationOutcome::Failed("deploy-artifact: " + link.string() +
                                    " is a directory, not a release link; move it away first");
  }
  const std::string name = ReleaseDirName(label, op.artifact, op.sha256);
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
  if (cached && !meta->tree_stamp.empty()) {
    // Only the switch, if nothing below the release changed since it was
    // extracted and verified: one lstat per entry, no content read.
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
    log(LogLevel::kInfo, "release " + name +
                             (meta->tree_stamp.empty()
                                  ? " is still on the target: switching only"
                                  : " is still on the target, unchanged since it was verified: "
                                    "switching only"));
  } else {
    auto blob = ObtainBlob(l, op, blobs, log, cancel, tracked);
    if (!blob.ok()) {
      if (blob.status().code() == Code::kCancelled) return OperationOutcome::Error(blob.status());
      return OperationOutcome::Failed("deploy-artifact: " + blob.status().message());
    }
    if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("cancelled"));
    fs::path partial = l.tmp() / (name + ".partial-" + RandomHex(4));
    report({"extract", 0, 0, 0, 0});
    // Durability: one syncfs after the extraction instead of an fsync per
    // file and directory (thousands of journal commits). It also flushes
    // other dirty data of that filesystem, which a busy target pays for.
    auto manifest = ExtractArchive(*blob, partial, limits, {false, true});
    DropTemporaryBlob(l, *blob);
    if (!manifest.ok()) {
      fs::remove_all(partial, ec);
      return OperationOutcome::Failed("deploy-artifact: " + manifest.status().message());
    }
    if (auto differs = ManifestMismatch(op, label, *manifest)) {
      fs::remove_all(partial, ec);
      return OperationOutcome::Failed(*differs);
    }
    if (options.fsync) {
      Status synced = SyncFilesystem(partial);
      if (!synced.ok()) {
        fs::remove_all(partial, ec);
        return OperationOutcome::Error(synced);
      }
    }
    if (cancel.IsCancelled()) {
      fs::remove_all(partial, ec);
      return OperationOutcome::Error(Cancelled("cancelled"));
    }
    ReleaseMeta m{name,      label.release,           label.build,          op.artifact,
                  op.sha256, manifest->manifest_hash, manifest->file_count, manifest->total_bytes, ""};
    Status placed = PlaceRelease(l, partial, release_dir);
    if (!placed.ok()) {
      fs::remove_all(partial, ec);
      return OperationOutcome::Error(placed);
    }
    if (options.fsync) (void)FsyncDir(l.releases());
    // Stamped after the rename (which touches only the directory itself), so
    // a later re-deploy can tell the tree is still the verified one.
    auto stamp = TreeStamp(release_dir);
    if (stamp.ok()) m.tree_stamp = *stamp;
    Status st = WriteFileAtomic(l.meta() / (name + ".json"), MetaToJson(m), 0644);
    if (!st.ok()) return OperationOutcome::Error(st);
    log(LogLevel::kInfo, "extracted " + std::to_string(manifest->file_count) + " files (" +
                             std::to_string(manifest->total_bytes) + " bytes) into " + name +
                             (op.manifest_hash.empty()
                                  ? ""
                                  : ", verified against the build's manifest (" +
                                        op.manifest_hash.substr(0, 12) + ")"));
    report({"extract", 0, 0, manifest->file_count, manifest->file_count});
  }

  // The switch: a fresh symlink renamed over the old one.
  report({"switch", 0, 0, 0, 0});
  std::string old = LinkedRelease(l, link);
  fs::path rel_target = release_dir.lexically_relative(link.parent_path());
  fs::path tmp_link = l.tmp() / ("link-" + RandomHex(6));
  if (::symlink(rel_target.c_str(), tmp_link.c_str()) != 0) {
    return OperationOutcome::Error(IoError(ErrnoText("symlink")));
  }
  fs::create_directories(link.parent_path(), ec);
  if (::rename(tmp_link.c_str(), link.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_link.c_str());
    return OperationOutcome::Error(IoError("switching " + link.string() + ": " + strerror(err)));
  }
  if (options.fsync) (void)FsyncDir(link.parent_path());

  DeployState st = ReadState(l);
  if (!old.empty() && old != name) st.previous = old;
  st.current = name;
  st.history.erase(std::remove(st.history.begin(), st.history.end(), name), st.history.end());
  st.history.push_back(name);
  Prune(l, st, op.keep, log);
  Status ws = WriteState(l, st);
  if (!ws.ok()) log(LogLevel::kWarning, "could not record the deploy history: " + ws.message());
  log(LogLevel::kInfo, std::string(op.to.empty() ? "current" : op.to) + " -> " + name +
                           (old.empty() || old == name ? "" : " (was " + old + ")"));
  report({"done", 0, 0, 0, 0});
  return OperationOutcome::Succeeded();
}

void AgentRunner::Impl::Prune(const Layout& l, DeployState& st, int keep, const RunnerLog& log) {
  std::error_code ec;
  std::set<std::string> retained;
  if (keep < 1) keep = 1;
  // History holds names that still exist; drop vanished ones.
  std::vector<std::string> hist;
  for (const auto& n : st.history) {
    if (fs::is_directory(l.releases() / n, ec)) hist.push_back(n);
  }
  st.history = hist;
  for (size_t i = hist.size() > static_cast<size_t>(keep) ? hist.size() - keep : 0; i < hist.size();
       ++i)
    retained.insert(hist[i]);
  if (!st.current.empty()) retained.insert(st.current);
  if (!st.previous.empty()) retained.insert(st.previous);
  std::vector<std::string> keep_hist;
  for (const auto& n : hist) {
    if (retained.count(n)) {
      keep_hist.push_back(n);
      continue;
    }
    Status rm = RemoveTree(l, l.releases() / n);
    if (!rm.ok()) {
      log(LogLevel::kWarning, rm.message());
      keep_hist.push_back(n);
      continue;
    }
    fs::remove(l.meta() / (n + ".json"), ec);
    log(LogLevel::kInfo, "removed old release " + n);
  }
  st.history = keep_hist;
  // Unknown directories in releases/ (not in history) are left alone; blobs
  // are kept only while a retained release uses them.
  std::set<std::string> shas;
  for (const auto& n : st.history) {
    auto m = ReadMeta(l, n);
    if (m.ok()) shas.insert(m->sha256);
  }
  if (fs::is_directory(l.blobs(), ec)) {
    for (const auto& e : fs::directory_iterator(l.blobs(), ec)) {
      if (!shas.count(e.path().filename().string())) {
        std::error_code ec2;
        fs::remove(e.path(), ec2);
      }
    }
  }
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

OperationOutcome AgentRunner::Impl::Exec(const fs::path& root, const ExecOp& op,
                                         const RunnerLog& log, const CancelToken& cancel) {
  fs::path cwd = root;
  if (!op.cwd.empty()) {
    if (!IsSafeRelativePath(op.cwd)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' escapes the target root");
    }
    std::error_code ec;
    fs::path c = fs::weakly_canonical(root / op.cwd, ec);
    if (ec || !IsWithin(c, root)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' escapes the target root");
    }
    if (!fs::is_directory(c, ec)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' is not a directory");
    }
    cwd = c;
  }
  std::vector<std::string> argv = op.argv;
  if (argv.empty()) {
    if (op.command.empty()) return OperationOutcome::Failed("exec: nothing to run");
    argv = {"/bin/sh", "-c", op.command};
  }
  std::map<std::string, std::string> env = ChildEnvironment();
  for (const auto& [k, v] : op.env) env[k] = v;
  env["REPRISE_TARGET_ROOT"] = root.string();
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return OperationOutcome::Error(IoError(ErrnoText("pipe")));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return OperationOutcome::Error(IoError(ErrnoText("pipe")));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  // The child gets stdin, stdout and stderr and nothing else, even an fd
  // someone opened without close-on-exec (the server's HTTP sockets): a
  // daemon a step leaves behind must not hold the server's ports. glibc does
  // this with close_range, or by walking /proc/self/fd.
  if (posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return OperationOutcome::Error(Internal("exec: cannot prepare the child's file descriptors"));
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return OperationOutcome::Failed("exec: cannot start " + argv[0] + ": " + strerror(rc));
  }
  log(LogLevel::kInfo, "started " + argv[0] + " (pid " + std::to_string(pid) + ")");

  using Steady = std::chrono::steady_clock;
  const auto started = Steady::now();
  std::optional<Steady::time_point> own_deadline;
  if (op.timeout_seconds > 0) own_deadline = started + std::chrono::seconds(op.timeout_seconds);
  enum class Stop { kNone, kTimeout, kCancelled, kDeadline } stop = Stop::kNone;
  std::optional<Steady::time_point> killed_at;
  bool sent_kill = false;
  int status = 0;
  bool reaped = false;
  std::optional<Steady::time_point> reaped_at;
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[16384];
  auto kill_group = [&](int sig) { ::kill(-pid, sig); };

  while (true) {
    if (stop == Stop::kNone) {
      if (own_deadline && Steady::now() >= *own_deadline)
        stop = Stop::kTimeout;
      else if (cancel.IsCancelled())
        stop = cancel.DeadlineExceeded() ? Stop::kDeadline : Stop::kCancelled;
      if (stop != Stop::kNone) {
        kill_group(SIGTERM);
        killed_at = Steady::now();
      }
    } else if (!sent_kill &&
               Steady::now() - *killed_at >= std::chrono::milliseconds(options.kill_grace_ms)) {
      kill_group(SIGKILL);
      sent_kill = true;
    }
    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
        reaped_at = Steady::now();
        if (stop != Stop::kNone && !sent_kill) {
          // The leader is gone: grandchildren of a killed step go too.
          kill_group(SIGKILL);
          sent_kill = true;
        }
      }
    }
    if (open_fds == 0 && reaped) break;
    // A background grandchild may hold the pipes open after the leader exits.
    if (reaped && Steady::now() - *reaped_at > std::chrono::milliseconds(500)) break;
    int n = ::poll(fds, 2, 50);
    if (n < 0 && errno != EINTR) break;
    for (auto& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(f.fd, buf, sizeof buf);
      if (r > 0) {
        log(LogLevel::kOutput, std::string_view(buf, static_cast<size_t>(r)));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(f.fd);
        f.fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (!reaped) ::waitpid(pid, &status, 0);

  switch (stop) {
    case Stop::kTimeout:
      return OperationOutcome::Failed("exec: timed out after " +
                                      std::to_string(op.timeout_seconds) +
                                      " s; the process group was killed");
    case Stop::kDeadline:
      return OperationOutcome::Failed("exec: step deadline exceeded; the process group was killed");
    case Stop::kCancelled:
      return OperationOutcome::Error(Cancelled("exec cancelled; the process group was killed"));
    case Stop::kNone:
      break;
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    bool ok =
        std::find(op.success_codes.begin(), op.success_codes.end(), code) != op.success_codes.end();
    log(LogLevel::kInfo, "exit code " + std::to_string(code));
    if (ok) return OperationOutcome::Succeeded();
    return OperationOutcome::Failed("exec: exit code " + std::to_string(code));
  }
  if (WIFSIGNALED(status)) {
    return OperationOutcome::Failed("exec: killed by signal " + std::to_string(WTERMSIG(status)));
  }
  return OperationOutcome::Failed("exec: ended abnormally");
}

Result<TargetState> AgentRunner::State(std::string_view target_path) {
  REPRISE_ASSIGN_OR_RETURN(fs::path root, ResolveTargetRoot(target_path));
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  Layout l{root};
  TargetState s;
  DeployState st = ReadState(l);
  s.current_release = LinkedRelease(l, root / "current");
  s.previous_release = st.previous == s.current_release ? "" : st.previous;
  s.cached_releases = st.history;
  if (!s.current_release.empty()) {
    auto m = ReadMeta(l, s.current_release);
    if (m.ok()) {
      s.release = m->release;
      s.build = m->build;
      s.artifact = m->artifact;
      s.artifact_sha256 = m->sha256;
      s.manifest_hash = m->manifest_hash;
    }
  }
  return s;
}

Result<ValidationReport> AgentRunner::Validate(std::string_view target_path,
                                               const Manifest& manifest) {
  REPRISE_ASSIGN_OR_RETURN(fs::path root, ResolveTargetRoot(target_path));
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  Layout l{root};
  std::string name = LinkedRelease(l, root / "current");
  if (name.empty()) return NotFound("nothing is deployed: " + (root / "current").string());
  return ValidateTree(l.releases() / name, manifest);
}

Result<ProbeReport> AgentRunner::Probe(std::string_view target_path) {
  // No root lock: the probe's own file sits beside .reprise/, so it neither
  // waits for nor disturbs a deployment running there.
  auto root = ResolveTargetRoot(target_path);
  if (!root.ok()) return UnwritableRoot(root.status().message());
  return ProbeRoot(*root);
}

std::string ArchiveLimitsToJson(const ArchiveLimits& limits) {
  json j = {{"max_entries", limits.max_entries},
            {"max_total_bytes", limits.max_total_bytes},
            {"max_entry_bytes", limits.max_entry_bytes},
            {"max_compression_ratio", limits.max_compression_ratio},
            {"ratio_check_min_bytes", limits.ratio_check_min_bytes}};
  return j.dump();
}

Result<ArchiveLimits> ArchiveLimitsFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ArchiveLimits l;
    l.max_entries = j.value("max_entries", l.max_entries);
    l.max_total_bytes = j.value("max_total_bytes", l.max_total_bytes);
    l.max_entry_bytes = j.value("max_entry_bytes", l.max_entry_bytes);
    l.max_compression_ratio = j.value("max_compression_ratio", l.max_compression_ratio);
    l.ratio_check_min_bytes = j.value("ratio_check_min_bytes", l.ratio_check_min_bytes);
    return l;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad archive limits: ") + e.what());
  }
}

std::string TargetStateToJson(const TargetState& s) {
  json j = {{"online", s.online},
            {"current_release", s.current_release},
            {"previous_release", s.previous_release},
            {"release", s.release},
            {"build", s.build},
            {"artifact", s.artifact},
            {"artifact_sha256", s.artifact_sha256},
            {"manifest_hash", s.manifest_hash},
            {"cached_releases", s.cached_releases}};
  return j.dump();
}

Result<TargetState> TargetStateFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    TargetState s;
    s.online = j.value("online", false);
    s.current_release = j.value("current_release", "");
    s.previous_release = j.value("previous_release", "");
    s.release = j.value("release", "");
    s.build = j.value("build", "");
    s.artifact = j.value("artifact", "");
    s.artifact_sha256 = j.value("artifact_sha256", "");
    s.manifest_hash = j.value("manifest_hash", "");
    s.cached_releases = j.value("cached_releases", std::vector<std::string>{});
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad target state: ") + e.what());
  }
}

std::string ValidationReportToJson(const ValidationReport& r) {
  json changed = json::array();
  for (const auto& c : r.changed) changed.push_back({{"path", c.path}, {"detail", c.detail}});
  json j = {{"missing", r.missing},
            {"changed", changed},
            {"extra", r.extra},
            {"files_checked", r.files_checked},
            {"ok", r.ok()}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ValidationReport> ValidationReportFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ValidationReport r;
    r.missing = j.value("missing", std::vector<std::string>{});
    r.extra = j.value("extra", std::vector<std::string>{});
    r.files_checked = j.value("files_checked", uint64_t{0});
    for (const auto& c : j.value("changed", json::array())) {
      r.changed.push_back({c.at("path").get<std::string>(), c.value("detail", "")});
    }
    return r;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad validation report: ") + e.what());
  }
}

}  // namespace reprise
