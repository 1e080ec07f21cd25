// ValidateTree: compares a directory on disk with a manifest.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/crypto.h"

namespace reprise {

namespace {

struct DiskEntry {
  EntryType type = EntryType::kFile;
  bool other = false;  // a device, FIFO or socket
  unsigned mode = 0;
  uint64_t size = 0;
  std::string link_target;
};

std::string Octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

// The names in directory `dir_fd` (`prefix` names it in errors), without
// "." and "..". `dir_fd` stays open and usable.
Result<std::vector<std::string>> DirectoryNames(int dir_fd, const std::string& prefix) {
  int scan_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (scan_fd < 0) return IoError("dup: " + std::string(std::strerror(errno)));
  DIR* dir = ::fdopendir(scan_fd);
  if (dir == nullptr) {
    ::close(scan_fd);
    return IoError("cannot read directory '" + prefix + "': " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir)) {
    const char* name = d->d_name;
    if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) names.emplace_back(name);
  }
  ::closedir(dir);
  return names;
}

// Lists everything below `dir_fd` into `out` without following symlinks.
Status ListTree(int dir_fd, const std::string& prefix, std::map<std::string, DiskEntry>& out) {
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> names, DirectoryNames(dir_fd, prefix));
  for (const std::string& name : names) {
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // raced away
    DiskEntry entry;
    entry.mode = st.st_mode & 07777;
    if (S_ISREG(st.st_mode)) {
      entry.type = EntryType::kFile;
      entry.size = static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      entry.type = EntryType::kDirectory;
    } else if (S_ISLNK(st.st_mode)) {
      entry.type = EntryType::kSymlink;
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n >= 0) target.resize(static_cast<size_t>(n));
      entry.link_target = target;
    } else {
      entry.other = true;
    }
    out.emplace(path, entry);
    if (entry.type == EntryType::kDirectory && !entry.other) {
      int child = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) continue;  // unreadable: its content shows up as missing
      Status st_child = ListTree(child, path, out);
      ::close(child);
      REPRISE_RETURN_IF_ERROR(st_child);
    }
  }
  return Status::Ok();
}

// Hashes `path` below `root_fd`, refusing to follow a symlink anywhere on the way.
Result<std::string> HashBelow(int root_fd, const std::string& path) {
  int dir_fd = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (dir_fd < 0) return IoError(std::strerror(errno));
  size_t start = 0;
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', start)) {
    std::string part = path.substr(start, slash - start);
    int next = ::openat(dir_fd, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    ::close(dir_fd);
    if (next < 0) return IoError(std::strerror(err));
    dir_fd = next;
    start = slash + 1;
  }
  int fd = ::openat(dir_fd, path.c_str() + start, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int err = errno;
  ::close(dir_fd);
  if (fd < 0) return IoError(std::strerror(err));
  Sha256 hasher;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return IoError(std::strerror(err));
    }
    if (n == 0) break;
    hasher.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return hasher.FinishHex();
}

// True when the inode's ctime is later than `bound`.
bool ChangedAfter(const struct stat& st, const timespec& bound) {
  return st.st_ctim.tv_sec != bound.tv_sec ? st.st_ctim.tv_sec > bound.tv_sec
                                           : st.st_ctim.tv_nsec > bound.tv_nsec;
}

// Feeds every entry below `dir_fd` to `hasher`, for TreeStamp: siblings in
// name order, each directory's entries right after it, so the order is fixed
// without collecting and sorting the whole tree. Per entry: its path, NUL (a
// path holds any byte but NUL) and its lstat fields as fixed-width integers.
// With `bound`, an entry whose ctime is later than it fails the walk.
Status StampTree(int dir_fd, const std::string& prefix, Sha256& hasher,
                 const timespec* bound = nullptr) {
  REPRISE_ASSIGN_OR_RETURN(std::vector<std::string> names, DirectoryNames(dir_fd, prefix));
  std::sort(names.begin(), names.end());
  std::string path;
  for (const std::string& name : names) {
    path.assign(prefix);
    if (!prefix.empty()) path += '/';
    path += name;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return IoError("cannot stat '" + path + "': " + std::strerror(errno));
    if (bound && ChangedAfter(st, *bound)) return FailedPrecondition("'" + path + "' changed");
    const uint64_t fields[] = {
        static_cast<uint64_t>(st.st_mode),        static_cast<uint64_t>(st.st_size),
        static_cast<uint64_t>(st.st_mtim.tv_sec), static_cast<uint64_t>(st.st_mtim.tv_nsec),
        static_cast<uint64_t>(st.st_ctim.tv_sec), static_cast<uint64_t>(st.st_ctim.tv_nsec),
        static_cast<uint64_t>(st.st_ino)};
    hasher.Update(path.data(), path.size() + 1);  // with its NUL
    hasher.Update(fields, sizeof fields);
    if (S_ISDIR(st.st_mode)) {
      int child = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) return IoError("cannot open '" + path + "': " + std::strerror(errno));
      Status st_child = StampTree(child, path, hasher, bound);
      ::close(child);
      REPRISE_RETURN_IF_ERROR(st_child);
    }
  }
  return Status::Ok();
}

Result<ValidationReport> ValidateImpl(const std::filesystem::path& dir, const Manifest& manifest) {
  int root_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    if (errno == ENOENT) return NotFound("directory " + dir.string() + " does not exist");
    return IoError("cannot open " + dir.string() + ": " + std::strerror(errno));
  }
  std::map<std::string, DiskEntry> disk;
  Status listed = ListTree(root_fd, "", disk);
  if (!listed.ok()) {
    ::close(root_fd);
    return listed;
  }

  ValidationReport report;
  for (const ManifestEntry& want : manifest.entries) {
    auto it = disk.find(want.path);
    if (it == disk.end()) {
      report.missing.push_back(want.path);
      continue;
    }
    DiskEntry have = it->second;
    disk.erase(it);
    const bool want_file = want.type == EntryType::kFile || want.type == EntryType::kHardlink;
    const EntryType want_disk_type = want_file ? EntryType::kFile : want.type;
    if (have.other || have.type != want_disk_type) {
      report.changed.push_back(
          {want.path, "is not a " + std::string(EntryTypeName(want_disk_type))});
      continue;
    }
    if (want.type == EntryType::kSymlink) {
      if (have.link_target != want.link_target)
        report.changed.push_back({want.path, "symlink points to '" + have.link_target +
                                                 "', expected '" + want.link_target + "'"});
      continue;
    }
    if (have.mode != want.mode) {
      report.changed.push_back(
          {want.path, "mode " + Octal(have.mode) + ", expected " + Octal(want.mode)});
      continue;
    }
    if (!want_file) continue;
    if (have.size != want.size) {
      report.changed.push_back({want.path, "size " + std::to_string(have.size) + ", expected " +
                                               std::to_string(want.size)});
      continue;
    }
    auto hash = HashBelow(root_fd, want.path);
    ++report.files_checked;
    if (!hash.ok()) {
      report.changed.push_back({want.path, "cannot read: " + hash.status().message()});
    } else if (*hash != want.sha256) {
      report.changed.push_back({want.path, "content differs"});
    }
  }
  for (const auto& [path, entry] : disk) report.extra.push_back(path);
  ::close(root_fd);
  return report;
}

}  // namespace

Result<ValidationReport> ValidateTree(const std::filesystem::path& dir, const Manifest& manifest) {
  try {
    return ValidateImpl(dir, manifest);
  } catch (const std::exception& e) {
    return Internal(std::string("validating ") + dir.string() + ": " + e.what());
  }
}

Result<std::string> TreeStamp(const std::filesystem::path& dir) {
  int root_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) return IoError("cannot open " + dir.string() + ": " + std::strerror(errno));
  Sha256 hasher;
  Status st = StampTree(root_fd, "", hasher);
  ::close(root_fd);
  REPRISE_RETURN_IF_ERROR(st);
  return hasher.FinishHex();
}

Result<std::string> TreeStampUnchangedSince(const std::filesystem::path& dir,
                                            const timespec& bound) {
  int root_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) return IoError("cannot open " + dir.string() + ": " + std::strerror(errno));
  // `dir` itself too: removing a name right below it changes only `dir`.
  struct stat top;
  Status st = ::fstat(root_fd, &top) != 0 ? IoError("cannot stat " + dir.string())
              : ChangedAfter(top, bound)  ? FailedPrecondition(dir.string() + " changed")
                                          : Status::Ok();
  Sha256 hasher;
  if (st.ok()) st = StampTree(root_fd, "", hasher, &bound);
  ::close(root_fd);
  REPRISE_RETURN_IF_ERROR(st);
  return hasher.FinishHex();
}

}  // namespace reprise
