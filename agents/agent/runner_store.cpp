// The release store under a target root: paths checked against the root,
// release metadata, state.json, placing a release and switching `current`,
// pruning old releases, the per-root locks. Declared in runner_internal.h.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>  // renameat2
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "agents/agent/json_fields.h"
#include "agents/agent/runner_internal.h"
#include "common/crypto.h"
#include "common/fs.h"

namespace reprise {
namespace agent_runner {

namespace fs = std::filesystem;
using json = nlohmann::json;

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

namespace {

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

// The JSON forms' fields (json_fields.h), each declared once.
constexpr auto kMetaFields = [](auto& m, auto&& field) {
  field("name", m.name, kRequired);
  field("release", m.release);
  field("build", m.build);
  field("artifact", m.artifact);
  field("sha256", m.sha256, kRequired);
  field("manifest_hash", m.manifest_hash);
  field("file_count", m.file_count);
  field("total_bytes", m.total_bytes);
  field("tree_stamp", m.tree_stamp);
};
constexpr auto kStateFields = [](auto& s, auto&& field) {
  field("current", s.current);
  field("previous", s.previous);
  field("history", s.history);
};

std::string MetaToJson(const ReleaseMeta& m) { return FieldsToJson(m, kMetaFields).dump(); }

Result<ReleaseMeta> ReadMeta(const Layout& l, const std::string& name) {
  REPRISE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(l.meta() / (name + ".json")));
  try {
    return FieldsFromJson<ReleaseMeta>(json::parse(text), kMetaFields);
  } catch (const std::exception& e) {
    return Internal("release metadata " + name + " is corrupt: " + e.what());
  }
}

DeployState ReadState(const Layout& l) {
  DeployState s;
  auto text = ReadFileToString(l.state_file());
  if (!text.ok()) return s;
  try {
    ReadFields(json::parse(*text), s, kStateFields);
  } catch (const std::exception&) {
  }
  return s;
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

// Hash of a regular file, or "" when unreadable.
std::string HashOrEmpty(const fs::path& p) {
  auto h = Sha256File(p);
  return h.ok() ? *h : std::string();
}

// See runner_internal.h for what is refused and why.
Result<fs::path> Checked(const fs::path& root, std::string_view rel, bool allow_root,
                         bool follow_last) {
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
      if (errno != ENOENT && errno != ENOTDIR) return IoError(ErrnoText("lstat " + next.string()));
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

Status WriteMeta(const Layout& l, const ReleaseMeta& m, Durable durable) {
  return ReplaceFile(l.meta() / (m.name + ".json"), MetaToJson(m), durable);
}

Status ReplaceFile(const fs::path& path, std::string_view data, Durable durable) {
  if (durable == Durable::kNow) return WriteFileAtomic(path, data, 0644);
  const fs::path tmp =
      path.parent_path() / ("." + path.filename().string() + ".tmp-" + RandomHex(6));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(ErrnoText("cannot create " + tmp.string()));
  const bool written = WriteAll(fd, data) && (durable == Durable::kLater || ::fdatasync(fd) == 0);
  const int err = errno;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    Status failed =
        IoError("cannot write " + path.string() + ": " + std::strerror(written ? errno : err));
    ::unlink(tmp.c_str());
    return failed;
  }
  return Status::Ok();
}

namespace {

// CLOCK_REALTIME - CLOCK_MONOTONIC: moves only when the system clock is set.
int64_t RealtimeOffsetNs() {
  timespec real{}, mono{};
  ::clock_gettime(CLOCK_REALTIME, &real);
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1'000'000'000 +
         (static_cast<int64_t>(real.tv_nsec) - mono.tv_nsec);
}

bool Later(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}

// state.json's next content in a synced temporary file beside it, renamed
// over it once the link is switched.
Result<fs::path> StageState(const Layout& l, const DeployState& st) {
  const fs::path tmp = l.state_dir() / (".state.json.tmp-" + RandomHex(6));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(ErrnoText("cannot create " + tmp.string()));
  const std::string text = FieldsToJson(st, kStateFields).dump();
  const bool written = WriteAll(fd, text) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return IoError("cannot write " + tmp.string() + ": " + std::strerror(err));
  }
  return tmp;
}

}  // namespace

Result<StampBound> MarkStampBound(const Layout& l) {
  static constexpr int kMaxWaits = 50;  // 10 ms at most, for a clock of coarse ticks
  const fs::path mark = l.tmp() / ("mark-" + RandomHex(6));
  int fd = ::open(mark.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(ErrnoText("cannot create " + mark.string()));
  ::unlink(mark.c_str());  // the open inode is enough
  StampBound bound{{}, RealtimeOffsetNs()};
  struct stat st;
  bool later = false;
  if (::fstat(fd, &st) == 0) {
    bound.ctime = st.st_ctim;
    // A change after the fstat gets a later ctime once the clock moved on
    // (at once with fine-grained timestamps): so will every change made
    // after this one, the switch included.
    for (int i = 0; i < kMaxWaits && !later; ++i) {
      if (i > 0) {
        timespec pause{0, 200'000};
        ::nanosleep(&pause, nullptr);
      }
      later = ::fchmod(fd, i % 2 ? 0600 : 0400) == 0 && ::fstat(fd, &st) == 0 &&
              Later(st.st_ctim, bound.ctime);
    }
  }
  ::close(fd);
  if (!later) return FailedPrecondition("the filesystem's clock did not move on");
  return bound;
}

bool ClockSetBackSince(const StampBound& bound) {
  static constexpr int64_t kToleranceNs = 1'000'000;  // reading two clocks is not atomic
  return RealtimeOffsetNs() < bound.realtime_offset_ns - kToleranceNs;
}

OperationOutcome SwitchToRelease(const Layout& l, const fs::path& link, const std::string& to,
                                 const std::string& name, int keep, bool fsync,
                                 const RunnerLog& log, const ProgressFn& progress, bool keep_stamps,
                                 std::optional<StampBound>* bound) {
  std::error_code ec;
  if (progress) progress({"switch", 0, 0, 0, 0});
  const std::string old = LinkedRelease(l, link);
  // The state after the switch, pruned first: a crash before the switch
  // leaves the live release and the previous one, both retained.
  DeployState st = ReadState(l);
  if (!old.empty() && old != name) st.previous = old;
  st.current = name;
  st.history.erase(std::remove(st.history.begin(), st.history.end(), name), st.history.end());
  st.history.push_back(name);
  PruneReleases(l, st, keep, log, keep_stamps);
  auto staged = StageState(l, st);
  if (!staged.ok())
    log(LogLevel::kWarning, "could not record the deploy history: " + staged.status().message());
  if (bound) {
    auto marked = MarkStampBound(l);
    if (marked.ok()) *bound = *marked;
  }
  // The switch: a fresh symlink renamed over the old one.
  const fs::path rel_target = (l.releases() / name).lexically_relative(link.parent_path());
  const fs::path tmp_link = l.tmp() / ("link-" + RandomHex(6));
  fs::create_directories(link.parent_path(), ec);
  if (::symlink(rel_target.c_str(), tmp_link.c_str()) != 0 ||
      ::rename(tmp_link.c_str(), link.c_str()) != 0) {
    Status failed = IoError(ErrnoText("switching " + link.string()));
    ::unlink(tmp_link.c_str());
    if (staged.ok()) ::unlink(staged->c_str());
    return OperationOutcome::Error(failed);
  }
  // Both renames before either directory is synced: on a journaling
  // filesystem the second sync finds them committed already.
  if (staged.ok() && ::rename(staged->c_str(), l.state_file().c_str()) != 0) {
    log(LogLevel::kWarning, ErrnoText("could not record the deploy history"));
    ::unlink(staged->c_str());
  }
  if (fsync) (void)FsyncDir(link.parent_path());
  Status synced = FsyncDir(l.state_dir());
  if (!synced.ok())
    log(LogLevel::kWarning, "could not record the deploy history: " + synced.message());
  log(LogLevel::kInfo, (to.empty() ? std::string("current") : to) + " -> " + name +
                           (old.empty() || old == name ? "" : " (was " + old + ")"));
  if (progress) progress({"done", 0, 0, 0, 0});
  return OperationOutcome::Succeeded();
}

void PruneReleases(const Layout& l, DeployState& st, int keep, const RunnerLog& log,
                   bool keep_stamps) {
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
  const bool removes = std::any_of(hist.begin(), hist.end(),
                                   [&](const std::string& n) { return !retained.count(n); });
  // Removing a release unlinks inodes retained releases may share.
  std::vector<std::string> intact;
  if (removes && keep_stamps) intact = IntactReleases(l);
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
    RemoveReleaseManifest(l, n);
    log(LogLevel::kInfo, "removed old release " + n);
  }
  st.history = keep_hist;
  if (removes && keep_stamps) Restamp(l, intact);
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

// Removes a fetched archive (never a file the source owns, e.g. the server's
// blob store for the local agent).
void DropTemporaryBlob(const Layout& l, const fs::path& blob) {
  if (blob.parent_path() == l.tmp()) {
    std::error_code ec;
    fs::remove(blob, ec);
  }
}

Status PrepareLayout(const Layout& l) {
  std::error_code ec;
  for (const auto& d : {l.state_dir(), l.releases(), l.meta(), l.tmp()}) {
    fs::create_directories(d, ec);
    if (ec) return IoError("cannot create " + d.string());
  }
  CleanTmpKeepingStamps(l);
  return Status::Ok();
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

std::shared_ptr<std::mutex> RootLocks::LockFor(const fs::path& root) {
  std::lock_guard<std::mutex> g(mu_);
  auto& m = locks_[root.string()];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

}  // namespace agent_runner

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

}  // namespace reprise
