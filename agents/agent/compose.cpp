// The tree work of compose-release: copy, revert, shape directories, verify.
#include "agents/agent/compose.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "agents/agent/file_io.h"
#include "agents/deployer/entry_rules.h"

namespace reprise::agent_runner {
namespace {

namespace fs = std::filesystem;

Result<Fd> OpenDirAt(int at, const char* name, const std::string& shown) {
  int fd = ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return IoError(ErrnoText("cannot open directory " + Quoted(shown)));
  return Fd(fd);
}

// The names in a directory, without "." and "..".
Result<std::vector<std::string>> Names(int dir_fd, const std::string& shown) {
  int scan_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (scan_fd < 0) return IoError(ErrnoText("dup"));
  DIR* dir = ::fdopendir(scan_fd);
  if (dir == nullptr) {
    ::close(scan_fd);
    return IoError(ErrnoText("cannot read directory " + Quoted(shown)));
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir)) {
    if (std::strcmp(d->d_name, ".") != 0 && std::strcmp(d->d_name, "..") != 0)
      names.emplace_back(d->d_name);
  }
  ::closedir(dir);
  return names;
}

// A new file `name` in `to_dir` with the content, mode and times of `name`
// in `from_dir`.
Status CopyFileAt(int from_dir, int to_dir, const std::string& name, const std::string& shown) {
  Fd in(::openat(from_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.ok()) return IoError(ErrnoText("cannot read " + Quoted(shown)));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return IoError(ErrnoText("cannot stat " + Quoted(shown)));
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(Quoted(shown) + " is not a regular file");
  Fd out(
      ::openat(to_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.ok()) return IoError(ErrnoText("cannot create " + Quoted(shown)));
  REPRISE_RETURN_IF_ERROR(CopyBytes(in.get(), out.get(), shown));
  if (::fchmod(out.get(), st.st_mode & 07777) != 0) {
    return IoError(ErrnoText("chmod " + Quoted(shown)));
  }
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  (void)::futimens(out.get(), times);  // times are a courtesy; the manifest does not hold them
  return Status::Ok();
}

Status CopyLinkAt(int from_dir, int to_dir, const std::string& name, const std::string& shown) {
  std::string target(4097, '\0');
  ssize_t n = ::readlinkat(from_dir, name.c_str(), target.data(), target.size());
  if (n < 0) return IoError(ErrnoText("cannot read the symlink " + Quoted(shown)));
  if (static_cast<size_t>(n) >= target.size()) {
    return FailedPrecondition("the symlink " + Quoted(shown) + " has an over-long target");
  }
  target.resize(static_cast<size_t>(n));
  if (::symlinkat(target.c_str(), to_dir, name.c_str()) != 0) {
    return IoError(ErrnoText("cannot create the symlink " + Quoted(shown)));
  }
  return Status::Ok();
}

Status CopyDirContents(int from, int to, const std::string& prefix, const CancelToken& cancel) {
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> names, Names(from, prefix));
  for (const std::string& name : names) {
    if (cancel.IsCancelled()) return Cancelled("cancelled");
    const std::string shown = prefix.empty() ? name : prefix + "/" + name;
    struct stat st;
    if (::fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return IoError(ErrnoText("cannot stat " + Quoted(shown)));
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(to, name.c_str(), 0700) != 0) {
        return IoError(ErrnoText("cannot create " + Quoted(shown)));
      }
      REPRISE_ASSIGN_OR_RETURN(Fd child_from, OpenDirAt(from, name.c_str(), shown));
      REPRISE_ASSIGN_OR_RETURN(Fd child_to, OpenDirAt(to, name.c_str(), shown));
      REPRISE_RETURN_IF_ERROR(CopyDirContents(child_from.get(), child_to.get(), shown, cancel));
      // The mode once the directory is filled: a read-only one can be copied too.
      if (::fchmod(child_to.get(), st.st_mode & 07777) != 0) {
        return IoError(ErrnoText("chmod " + Quoted(shown)));
      }
    } else if (S_ISREG(st.st_mode)) {
      REPRISE_RETURN_IF_ERROR(CopyFileAt(from, to, name, shown));
    } else if (S_ISLNK(st.st_mode)) {
      REPRISE_RETURN_IF_ERROR(CopyLinkAt(from, to, name, shown));
    } else {
      return FailedPrecondition(Quoted(shown) + " is not a file, directory or symlink");
    }
  }
  return Status::Ok();
}

// "a/b/c" -> {"a", "b", "c"}; a component path must be normalised and safe.
Result<std::vector<std::string>> SplitComponent(const std::string& path) {
  auto normal = NormaliseEntryPath(path);
  if (!normal.ok() || *normal != path || path.empty()) {
    return InvalidArgument("the component path " + QuoteEntryName(path) +
                           " is not a normalised relative path");
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', start)) {
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  parts.push_back(path.substr(start));
  return parts;
}

using ModeOf = std::function<unsigned(const std::string& dir_path)>;

// The directory that holds the last of `parts`, below `root_fd`, opened
// without following a symlink anywhere. With `mode_of`, missing directories
// are created with the mode it gives; without, a missing one is kNotFound.
Result<Fd> OpenParent(int root_fd, const std::vector<std::string>& parts, const ModeOf& mode_of) {
  Fd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur.ok()) return IoError(ErrnoText("dup"));
  std::string so_far;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    so_far += (i == 0 ? "" : "/") + parts[i];
    const char* name = parts[i].c_str();
    int fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && mode_of) {
      if (::mkdirat(cur.get(), name, 0700) != 0) {
        return IoError(ErrnoText("cannot create " + Quoted(so_far)));
      }
      fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0 && ::fchmod(fd, mode_of(so_far) & 07777) != 0) {
        ::close(fd);
        return IoError(ErrnoText("chmod " + Quoted(so_far)));
      }
    }
    if (fd < 0) {
      if (errno == ENOENT) return NotFound(Quoted(so_far) + " does not exist");
      if (errno == ELOOP || errno == ENOTDIR) {
        return FailedPrecondition(Quoted(so_far) + " is not a directory");
      }
      return IoError(ErrnoText("cannot open " + Quoted(so_far)));
    }
    cur = Fd(fd);
  }
  return cur;
}

Status DeleteComponent(int dir_fd, const std::string& path) {
  const std::string what = "delete " + Quoted(path) + ": ";
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitComponent(path));
  auto parent = OpenParent(dir_fd, parts, nullptr);
  struct stat st;
  if (!parent.ok() ||
      ::fstatat(parent->get(), parts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return FailedPrecondition(what + "it is not in the release being rolled back");
  }
  if (S_ISDIR(st.st_mode)) return FailedPrecondition(what + "it is a directory, not a component");
  if (::unlinkat(parent->get(), parts.back().c_str(), 0) != 0)
    return IoError(ErrnoText(what + "unlink"));
  return Status::Ok();
}

// Puts the source's version of `r.path` into the tree (override, restore).
Status PutComponent(int dir_fd, int source_fd, const RevertEntry& r, const ModeOf& mode_of) {
  const std::string what = r.type + " " + Quoted(r.path) + ": ";
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitComponent(r.path));
  const char* name = parts.back().c_str();
  auto from = OpenParent(source_fd, parts, nullptr);
  struct stat src;
  if (!from.ok() || ::fstatat(from->get(), name, &src, AT_SYMLINK_NOFOLLOW) != 0) {
    return FailedPrecondition(what + "the earlier release does not have it");
  }
  if (!S_ISREG(src.st_mode) && !S_ISLNK(src.st_mode)) {
    return FailedPrecondition(what + "in the earlier release it is not a file or symlink");
  }
  auto to = OpenParent(dir_fd, parts, mode_of);
  if (!to.ok()) return to.status().WithContext(what.substr(0, what.size() - 2));
  struct stat have;
  const bool exists = ::fstatat(to->get(), name, &have, AT_SYMLINK_NOFOLLOW) == 0;
  if (r.type == "override" && !exists) {
    return FailedPrecondition(what + "it is not in the release being rolled back");
  }
  if (r.type == "restore" && exists && !S_ISDIR(have.st_mode)) {
    return FailedPrecondition(what + "the release being rolled back has it already");
  }
  // A directory where the earlier release had a file: only once emptied by deletes.
  if (exists && ::unlinkat(to->get(), name, S_ISDIR(have.st_mode) ? AT_REMOVEDIR : 0) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      return FailedPrecondition(what + "it is a directory that is not empty");
    }
    return IoError(ErrnoText(what + "cannot replace it"));
  }
  if (S_ISREG(src.st_mode)) return CopyFileAt(from->get(), to->get(), parts.back(), r.path);
  return CopyLinkAt(from->get(), to->get(), parts.back(), r.path);
}

// Every directory below `dir_fd`, parents before children.
Status ListDirectories(int dir_fd, const std::string& prefix, std::vector<std::string>& out) {
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> names, Names(dir_fd, prefix));
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      continue;
    const std::string path = prefix.empty() ? name : prefix + "/" + name;
    out.push_back(path);
    REPRISE_ASSIGN_OR_RETURN(Fd child, OpenDirAt(dir_fd, name.c_str(), path));
    REPRISE_RETURN_IF_ERROR(ListDirectories(child.get(), path, out));
  }
  return Status::Ok();
}

// Creates the directories `composed` lists and the tree lacks; removes the
// empty ones it does not list, deepest first. A non-empty directory it does
// not list stays, and the verification names what is in it.
Status ShapeDirectories(int dir_fd, const Manifest& composed, const ModeOf& mode_of) {
  std::set<std::string> wanted;
  for (const ManifestEntry& e : composed.entries) {
    if (e.type != EntryType::kDirectory) continue;
    wanted.insert(e.path);
    REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitComponent(e.path));
    parts.push_back(".");  // OpenParent then opens (creating) e.path itself
    auto opened = OpenParent(dir_fd, parts, mode_of);
    if (!opened.ok()) return opened.status();
  }
  std::vector<std::string> dirs;
  REPRISE_RETURN_IF_ERROR(ListDirectories(dir_fd, "", dirs));
  std::sort(dirs.rbegin(), dirs.rend());  // "a/b" before "a"
  for (const std::string& path : dirs) {
    if (wanted.count(path)) continue;
    if (::unlinkat(dir_fd, path.c_str(), AT_REMOVEDIR) != 0 && errno != ENOTEMPTY &&
        errno != EEXIST) {
      return IoError(ErrnoText("cannot remove the directory " + Quoted(path)));
    }
  }
  return Status::Ok();
}

}  // namespace

bool IsReleaseDirName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '+' || c == '-';
  });
}

RevertCounts CountReverts(const std::vector<RevertEntry>& reverts) {
  RevertCounts c;
  for (const RevertEntry& r : reverts) {
    if (r.type == "delete") ++c.deletes;
    if (r.type == "override") ++c.overrides;
    if (r.type == "restore") ++c.restores;
  }
  return c;
}

Status CopyReleaseTree(const fs::path& from, const fs::path& to, const CancelToken& cancel) {
  REPRISE_ASSIGN_OR_RETURN(Fd src, OpenDirAt(AT_FDCWD, from.c_str(), from.string()));
  if (::mkdir(to.c_str(), 0700) != 0) return IoError(ErrnoText("cannot create " + to.string()));
  REPRISE_ASSIGN_OR_RETURN(Fd dst, OpenDirAt(AT_FDCWD, to.c_str(), to.string()));
  REPRISE_RETURN_IF_ERROR(CopyDirContents(src.get(), dst.get(), "", cancel));
  struct stat st;
  if (::fstat(src.get(), &st) != 0 || ::fchmod(dst.get(), st.st_mode & 07777) != 0) {
    return IoError(ErrnoText("chmod " + to.string()));
  }
  return Status::Ok();
}

Status ApplyReverts(const fs::path& dir, const fs::path& source,
                    const std::vector<RevertEntry>& reverts, const Manifest& composed) {
  REPRISE_ASSIGN_OR_RETURN(Fd dir_fd, OpenDirAt(AT_FDCWD, dir.c_str(), dir.string()));
  Fd source_fd;
  const RevertCounts counts = CountReverts(reverts);
  if (counts.overrides + counts.restores > 0) {
    if (source.empty()) {
      return FailedPrecondition(
          "an override or restore needs the earlier release, and none is "
          "available");
    }
    REPRISE_ASSIGN_OR_RETURN(source_fd, OpenDirAt(AT_FDCWD, source.c_str(), source.string()));
  }
  std::map<std::string, unsigned> dir_modes;
  for (const ManifestEntry& e : composed.entries) {
    if (e.type == EntryType::kDirectory) dir_modes[e.path] = e.mode;
  }
  const ModeOf mode_of = [&dir_modes](const std::string& path) {
    auto it = dir_modes.find(path);
    return it == dir_modes.end() ? 0755u : it->second;
  };
  // Deletes first: a restore may need the place a deleted file held.
  for (const RevertEntry& r : reverts) {
    if (r.type == "delete") REPRISE_RETURN_IF_ERROR(DeleteComponent(dir_fd.get(), r.path));
  }
  for (const RevertEntry& r : reverts) {
    if (r.type == "delete") continue;
    if (r.type != "override" && r.type != "restore") {
      return InvalidArgument("unknown revert type '" + r.type + "' for " + Quoted(r.path));
    }
    REPRISE_RETURN_IF_ERROR(PutComponent(dir_fd.get(), source_fd.get(), r, mode_of));
  }
  return ShapeDirectories(dir_fd.get(), composed, mode_of);
}

Status VerifyComposedTree(const fs::path& dir, const Manifest& composed) {
  REPRISE_ASSIGN_OR_RETURN(ValidationReport report, ValidateTree(dir, composed));
  if (report.ok()) return Status::Ok();
  std::vector<std::string> first;
  for (const auto& p : report.missing) first.push_back(Quoted(p) + " missing");
  for (const auto& p : report.changed) first.push_back(Quoted(p.path) + " " + p.detail);
  for (const auto& p : report.extra) first.push_back(Quoted(p) + " extra");
  std::string listed;
  for (size_t i = 0; i < first.size() && i < 5; ++i) listed += (i ? ", " : "") + first[i];
  if (first.size() > 5) listed += ", ...";
  return FailedPrecondition("the composed tree does not match the composed manifest (" +
                            composed.manifest_hash.substr(0, 12) +
                            "): " + std::to_string(report.missing.size()) + " missing, " +
                            std::to_string(report.changed.size()) + " changed, " +
                            std::to_string(report.extra.size()) + " extra: " + listed);
}

}  // namespace reprise::agent_runner
