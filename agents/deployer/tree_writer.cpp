// Writing an extraction: TreeWriter (the writes, under one directory fd,
// never through a symlink) and WritePipeline (those writes on a thread of
// their own, overlapping the reading).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agents/deployer/archive_internal.h"

namespace reprise {
namespace archive_internal {

TreeWriter::~TreeWriter() {
  CloseFile();
  ClearDirCache();
  if (reuse_dir_fd_ >= 0 && reuse_dir_fd_ != reuse_fd_) ::close(reuse_dir_fd_);
}

Status TreeWriter::MakeDirectory(const std::string& path) {
  std::string leaf;
  REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
  return MakeDirAt(parent, leaf, path);
}

Status TreeWriter::BeginFile(const std::string& path) {
  std::string leaf;
  REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
  file_fd_ =
      ::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (file_fd_ < 0) return IoError("cannot create " + path + ": " + ErrnoText(errno));
  file_path_ = path;
  return Status::Ok();
}

Status TreeWriter::Write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(file_fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write " + file_path_ + ": " + ErrnoText(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status TreeWriter::EndFile(unsigned mode, std::optional<timespec> mtime) {
  Status st;
  if (::fchmod(file_fd_, mode) != 0)
    st = IoError("cannot chmod " + file_path_ + ": " + ErrnoText(errno));
  if (st.ok() && mtime) {
    timespec times[2] = {{0, UTIME_OMIT}, *mtime};
    if (::futimens(file_fd_, times) != 0)
      st = IoError("cannot set mtime of " + file_path_ + ": " + ErrnoText(errno));
  }
  if (st.ok() && fsync_ && ::fsync(file_fd_) != 0)
    st = IoError("cannot fsync " + file_path_ + ": " + ErrnoText(errno));
  if (::close(file_fd_) != 0 && st.ok())
    st = IoError("cannot close " + file_path_ + ": " + ErrnoText(errno));
  file_fd_ = -1;
  return st;
}

Status TreeWriter::MakeHardlink(const std::string& path, const std::string& existing_file) {
  std::string existing_leaf, leaf;
  REPRISE_ASSIGN_OR_RETURN(int existing_parent, OpenParent(existing_file, &existing_leaf));
  // Pin the first parent: the second lookup may evict it from the cache.
  int pinned = ::fcntl(existing_parent, F_DUPFD_CLOEXEC, 0);
  if (pinned < 0) return IoError("dup: " + ErrnoText(errno));
  auto parent = OpenParent(path, &leaf);
  if (!parent.ok()) {
    ::close(pinned);
    return parent.status();
  }
  // No AT_SYMLINK_FOLLOW: links the entry itself, never what a symlink names.
  int rc = ::linkat(pinned, existing_leaf.c_str(), *parent, leaf.c_str(), 0);
  int err = errno;
  ::close(pinned);
  if (rc != 0) return IoError("cannot link " + path + ": " + ErrnoText(err));
  return Status::Ok();
}

int TreeWriter::OpenReuseDir(const std::string& path) {
  if (reuse_dir_fd_ >= 0 && path == reuse_dir_path_) return reuse_dir_fd_;
  if (reuse_dir_fd_ >= 0 && reuse_dir_fd_ != reuse_fd_) ::close(reuse_dir_fd_);
  reuse_dir_fd_ = -1;
  int current = reuse_fd_;
  size_t done = 0;
  while (!path.empty() && done <= path.size()) {
    size_t slash = path.find('/', done);
    if (slash == std::string::npos) slash = path.size();
    const std::string leaf = path.substr(done, slash - done);
    int fd = ::openat(current, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (current != reuse_fd_) ::close(current);
    if (fd < 0) return -1;
    current = fd;
    done = slash + 1;
  }
  reuse_dir_path_ = path;
  reuse_dir_fd_ = current;
  return current;
}

Result<bool> TreeWriter::LinkFromReuse(const std::string& path, unsigned mode, uint64_t size) {
  if (reuse_fd_ < 0) return false;
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash);
  const std::string leaf = slash == std::string::npos ? path : path.substr(slash + 1);
  const int source_dir = OpenReuseDir(dir);
  if (source_dir < 0) return false;
  std::string dest_leaf;
  REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &dest_leaf));
  // No AT_SYMLINK_FOLLOW: a symlink planted at the source path would be
  // linked as a symlink, which the check below refuses.
  if (::linkat(source_dir, leaf.c_str(), parent, dest_leaf.c_str(), 0) != 0) return false;
  struct stat st;
  if (::fstatat(parent, dest_leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
      (st.st_mode & 07777) == mode && static_cast<uint64_t>(st.st_size) == size)
    return true;
  if (::unlinkat(parent, dest_leaf.c_str(), 0) != 0)
    return IoError("cannot remove the link " + path + ": " + ErrnoText(errno));
  return false;
}

Status TreeWriter::MakeSymlink(const std::string& path, const std::string& target) {
  std::string leaf;
  REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
  if (::symlinkat(target.c_str(), parent, leaf.c_str()) != 0)
    return IoError("cannot create symlink " + path + ": " + ErrnoText(errno));
  return Status::Ok();
}

Status TreeWriter::FinishDirectories(const Manifest& manifest) {
  for (auto it = manifest.entries.rbegin(); it != manifest.entries.rend(); ++it) {
    if (it->type != EntryType::kDirectory) continue;
    REPRISE_ASSIGN_OR_RETURN(int fd, OpenDir(it->path));
    if (::fchmod(fd, it->mode) != 0)
      return IoError("cannot chmod " + it->path + ": " + ErrnoText(errno));
    if (fsync_ && ::fsync(fd) != 0)
      return IoError("cannot fsync " + it->path + ": " + ErrnoText(errno));
  }
  if (fsync_ && ::fsync(dest_fd_) != 0)
    return IoError("cannot fsync destination: " + ErrnoText(errno));
  return Status::Ok();
}

void TreeWriter::CloseFile() {
  if (file_fd_ >= 0) ::close(file_fd_);
  file_fd_ = -1;
}

void TreeWriter::ClearDirCache() {
  for (auto& [path, fd] : dir_fds_) ::close(fd);
  dir_fds_.clear();
}

Status TreeWriter::MakeDirAt(int parent, const std::string& leaf, const std::string& path) {
  if (::mkdirat(parent, leaf.c_str(), 0700) == 0) return Status::Ok();
  if (errno != EEXIST) return IoError("cannot create directory " + path + ": " + ErrnoText(errno));
  struct stat st;
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
    return IoError("cannot create directory " + path + ": something else is in the way");
  return Status::Ok();
}

Result<int> TreeWriter::OpenDir(const std::string& path) {
  if (path.empty()) return dest_fd_;
  if (auto it = dir_fds_.find(path); it != dir_fds_.end()) return it->second;
  if (dir_fds_.size() >= kMaxCachedDirFds) ClearDirCache();
  // Starts from the deepest cached ancestor.
  int base = dest_fd_;
  size_t done = 0;
  for (size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0;
       slash = path.rfind('/', slash - 1)) {
    auto it = dir_fds_.find(path.substr(0, slash));
    if (it != dir_fds_.end()) {
      base = it->second;
      done = slash + 1;
      break;
    }
  }
  int current = base;
  while (done <= path.size()) {
    size_t slash = path.find('/', done);
    if (slash == std::string::npos) slash = path.size();
    std::string prefix = path.substr(0, slash);
    std::string leaf = path.substr(done, slash - done);
    int fd = ::openat(current, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      REPRISE_RETURN_IF_ERROR(MakeDirAt(current, leaf, prefix));
      fd = ::openat(current, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return IoError("cannot open directory " + prefix + ": " + ErrnoText(errno));
    dir_fds_.emplace(prefix, fd);
    current = fd;
    done = slash + 1;
  }
  return current;
}

Result<int> TreeWriter::OpenParent(const std::string& path, std::string* leaf) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    *leaf = path;
    return dest_fd_;
  }
  *leaf = path.substr(slash + 1);
  return OpenDir(path.substr(0, slash));
}

void RemoveContents(int dir_fd) {
  int scan_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (scan_fd < 0) return;
  DIR* dir = ::fdopendir(scan_fd);
  if (dir == nullptr) {
    ::close(scan_fd);
    return;
  }
  std::vector<std::string> names;
  while (dirent* d = ::readdir(dir)) {
    std::string name = d->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      int child = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) {
        ::fchmod(child, 0700);
        RemoveContents(child);
        ::close(child);
      }
      ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR);
    } else {
      ::unlinkat(dir_fd, name.c_str(), 0);
    }
  }
}

Status WritePipeline::MakeHardlink(const std::string& path, const std::string& existing) {
  return Push(Op(Kind::kHardlink, path, existing));
}

Status WritePipeline::Write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    if (chunk_.capacity() < kChunkBytes) chunk_.reserve(kChunkBytes);
    size_t n = std::min(size, kChunkBytes - chunk_.size());
    chunk_.insert(chunk_.end(), p, p + n);
    p += n;
    size -= n;
    if (chunk_.size() == kChunkBytes) REPRISE_RETURN_IF_ERROR(FlushChunk());
  }
  return Status::Ok();
}

Status WritePipeline::LinkOrWrite(const std::string& path, unsigned mode,
                                  std::optional<timespec> mtime, std::vector<char> data) {
  Op op{Kind::kLinkOrWrite, path};
  op.mode = mode;
  op.mtime = mtime;
  op.data = std::move(data);
  return Push(std::move(op));
}

Status WritePipeline::WriteWhole(const std::string& path, unsigned mode,
                                 std::optional<timespec> mtime, std::vector<char> data) {
  REPRISE_RETURN_IF_ERROR(BeginFile(path));
  Op op{Kind::kData};
  op.data = std::move(data);
  if (!op.data.empty()) REPRISE_RETURN_IF_ERROR(Push(std::move(op)));
  return EndFile(mode, mtime);
}

Status WritePipeline::EndFile(unsigned mode, std::optional<timespec> mtime) {
  REPRISE_RETURN_IF_ERROR(FlushChunk());
  Op op{Kind::kEndFile};
  op.mode = mode;
  op.mtime = mtime;
  return Push(std::move(op));
}

Status WritePipeline::EntryDone(uint64_t entries) {
  Op op{Kind::kEntryDone};
  op.entries = entries;
  return Push(std::move(op));
}

Status WritePipeline::Finish() {
  Join(false);
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status WritePipeline::FlushChunk() {
  if (chunk_.empty()) return Status::Ok();
  Op op{Kind::kData};
  op.data = std::move(chunk_);
  chunk_ = TakeSpareChunk();
  return Push(std::move(op));
}

std::vector<char> WritePipeline::TakeSpareChunk() {
  std::lock_guard<std::mutex> lock(mu_);
  if (spare_.empty()) return {};
  std::vector<char> chunk = std::move(spare_.back());
  spare_.pop_back();
  return chunk;
}

Status WritePipeline::Push(Op op) {
  std::unique_lock<std::mutex> lock(mu_);
  can_push_.wait(lock, [&] {
    return failed_ || queue_.empty() ||
           (bytes_in_flight_ + op.data.size() <= kMaxBytesInFlight &&
            queue_.size() < kMaxOpsInFlight);
  });
  if (failed_) return error_;
  bytes_in_flight_ += op.data.size();
  queue_.push_back(std::move(op));
  lock.unlock();
  can_pop_.notify_one();
  return Status::Ok();
}

void WritePipeline::Join(bool abandon) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    if (abandon && !failed_) {
      failed_ = true;
      error_ = Cancelled("extraction abandoned");
    }
  }
  can_pop_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WritePipeline::Fail(Status st) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_) {
    failed_ = true;
    error_ = std::move(st);
  }
}

bool WritePipeline::Progress() {
  if (!on_progress_) return true;
  try {
    return on_progress_(entries_done_, bytes_written_);
  } catch (...) {
    return false;
  }
}

Status WritePipeline::Apply(Op& op) {
  switch (op.kind) {
    case Kind::kDirectory:
      return writer_.MakeDirectory(op.path);
    case Kind::kBeginFile:
      return writer_.BeginFile(op.path);
    case Kind::kData: {
      REPRISE_RETURN_IF_ERROR(writer_.Write(op.data.data(), op.data.size()));
      uint64_t before = bytes_written_;
      bytes_written_ += op.data.size();
      if (before / kProgressBytes != bytes_written_ / kProgressBytes && !Progress())
        return Cancelled("extraction cancelled");
      return Status::Ok();
    }
    case Kind::kEndFile:
      return writer_.EndFile(op.mode, op.mtime);
    case Kind::kHardlink:
      return writer_.MakeHardlink(op.path, op.path2);
    case Kind::kLinkOrWrite:
      return ApplyLinkOrWrite(op);
    case Kind::kEntryDone:
      entries_done_ = op.entries;
      if (!Progress()) return Cancelled("extraction cancelled");
      return Status::Ok();
  }
  return Internal("unknown pipeline operation");
}

Status WritePipeline::ApplyLinkOrWrite(Op& op) {
  REPRISE_ASSIGN_OR_RETURN(bool linked, writer_.LinkFromReuse(op.path, op.mode, op.data.size()));
  if (linked) {
    ++linked_files_;
    linked_bytes_ += op.data.size();
  } else {
    REPRISE_RETURN_IF_ERROR(writer_.BeginFile(op.path));
    REPRISE_RETURN_IF_ERROR(writer_.Write(op.data.data(), op.data.size()));
    REPRISE_RETURN_IF_ERROR(writer_.EndFile(op.mode, op.mtime));
  }
  const uint64_t before = bytes_written_;
  bytes_written_ += op.data.size();
  if (before / kProgressBytes != bytes_written_ / kProgressBytes && !Progress())
    return Cancelled("extraction cancelled");
  return Status::Ok();
}

void WritePipeline::Run() {
  for (;;) {
    Op op{Kind::kEntryDone};
    bool skip = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      can_pop_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) return;
      op = std::move(queue_.front());
      queue_.pop_front();
      skip = failed_;
    }
    if (!skip) {
      Status st;
      try {
        st = Apply(op);
      } catch (const std::exception& e) {
        st = Internal(std::string("extraction writer: ") + e.what());
      }
      if (!st.ok()) Fail(std::move(st));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      bytes_in_flight_ -= op.data.size();
      if (op.kind == Kind::kData && spare_.size() < 4 && op.data.capacity() <= kChunkBytes) {
        op.data.clear();
        spare_.push_back(std::move(op.data));
      }
    }
    can_push_.notify_one();
  }
}

}  // namespace archive_internal
}  // namespace reprise
