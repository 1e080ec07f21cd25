// The one libarchive wrapper. ScanArchive and ExtractArchive share one reading
// loop (ArchiveReader); extraction only adds a TreeWriter that performs the
// writes of entries the loop has already validated.
#include "agents/deployer/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agents/deployer/entry_rules.h"
#include "agents/deployer/header_checks.h"
#include "common/crypto.h"

namespace reprise {

namespace fs = std::filesystem;

namespace {

constexpr size_t kReadBlockBytes = 1 << 20;
constexpr size_t kZeroFillBytes = 64 << 10;
constexpr size_t kMaxCachedDirFds = 256;
constexpr uint64_t kProgressBytes = 8 << 20;

std::string ErrnoText(int err) { return std::strerror(err); }

// ---------------------------------------------------------------------------
// TreeWriter: writes validated entries under one destination directory fd.
// Every path is walked component by component with O_NOFOLLOW, so a symlink
// planted inside dest (by anyone) cannot redirect a write; files are created
// with O_EXCL so nothing existing is ever overwritten.
class TreeWriter {
 public:
  TreeWriter(int dest_fd, bool fsync) : dest_fd_(dest_fd), fsync_(fsync) {}
  ~TreeWriter() {
    CloseFile();
    ClearDirCache();
  }
  TreeWriter(const TreeWriter&) = delete;
  TreeWriter& operator=(const TreeWriter&) = delete;

  Status MakeDirectory(const std::string& path) {
    std::string leaf;
    REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
    return MakeDirAt(parent, leaf, path);
  }

  Status BeginFile(const std::string& path) {
    std::string leaf;
    REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
    file_fd_ =
        ::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (file_fd_ < 0) return IoError("cannot create " + path + ": " + ErrnoText(errno));
    file_path_ = path;
    return Status::Ok();
  }

  Status Write(const void* data, size_t size) {
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

  Status EndFile(unsigned mode, std::optional<timespec> mtime) {
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

  Status MakeHardlink(const std::string& path, const std::string& existing_file) {
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

  Status MakeSymlink(const std::string& path, const std::string& target) {
    std::string leaf;
    REPRISE_ASSIGN_OR_RETURN(int parent, OpenParent(path, &leaf));
    if (::symlinkat(target.c_str(), parent, leaf.c_str()) != 0)
      return IoError("cannot create symlink " + path + ": " + ErrnoText(errno));
    return Status::Ok();
  }

  // Gives directories their final modes (after their content is written, so
  // a read-only directory does not block its files) and fsyncs them, deepest
  // first, then dest itself.
  Status FinishDirectories(const Manifest& manifest) {
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

  void CloseFile() {
    if (file_fd_ >= 0) ::close(file_fd_);
    file_fd_ = -1;
  }

  void ClearDirCache() {
    for (auto& [path, fd] : dir_fds_) ::close(fd);
    dir_fds_.clear();
  }

 private:
  Status MakeDirAt(int parent, const std::string& leaf, const std::string& path) {
    if (::mkdirat(parent, leaf.c_str(), 0700) == 0) return Status::Ok();
    if (errno != EEXIST)
      return IoError("cannot create directory " + path + ": " + ErrnoText(errno));
    struct stat st;
    if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      return IoError("cannot create directory " + path + ": something else is in the way");
    return Status::Ok();
  }

  // An fd for directory `path` ("" = dest), creating missing directories;
  // owned by the cache.
  Result<int> OpenDir(const std::string& path) {
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

  Result<int> OpenParent(const std::string& path, std::string* leaf) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
      *leaf = path;
      return dest_fd_;
    }
    *leaf = path.substr(slash + 1);
    return OpenDir(path.substr(0, slash));
  }

  int dest_fd_;
  bool fsync_;
  int file_fd_ = -1;
  std::string file_path_;
  std::unordered_map<std::string, int> dir_fds_;
};

// Removes everything below directory fd `dir_fd` without following symlinks.
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

// ---------------------------------------------------------------------------
// WritePipeline: runs a TreeWriter's operations, in order, on a second thread,
// so that inflating and hashing (the reading thread) overlap with the
// kernel's file creation and writes. The reading thread validates every entry
// before it queues anything for it, exactly as without the pipeline. Data is
// copied into 1 MiB chunks (libarchive's blocks die at the next read) and at
// most kMaxBytesInFlight are queued. The first failure of the writer thread
// is returned by the next call on the reading thread.
class WritePipeline {
 public:
  WritePipeline(TreeWriter& writer, const ExtractProgress& on_progress)
      : writer_(writer), on_progress_(on_progress), thread_([this] { Run(); }) {}
  ~WritePipeline() { Stop(); }
  WritePipeline(const WritePipeline&) = delete;
  WritePipeline& operator=(const WritePipeline&) = delete;

  Status MakeDirectory(const std::string& path) { return Push(Op(Kind::kDirectory, path)); }
  Status BeginFile(const std::string& path) { return Push(Op(Kind::kBeginFile, path)); }
  Status MakeHardlink(const std::string& path, const std::string& existing) {
    return Push(Op(Kind::kHardlink, path, existing));
  }
  Status Write(const void* data, size_t size) {
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
  Status EndFile(unsigned mode, std::optional<timespec> mtime) {
    REPRISE_RETURN_IF_ERROR(FlushChunk());
    Op op{Kind::kEndFile};
    op.mode = mode;
    op.mtime = mtime;
    return Push(std::move(op));
  }
  Status EntryDone(uint64_t entries) {
    Op op{Kind::kEntryDone};
    op.entries = entries;
    return Push(std::move(op));
  }

  // Waits until everything queued is written; returns the first failure.
  Status Finish() {
    Join(false);
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  // Abandons what is queued and waits for the thread to stop.
  void Stop() { Join(true); }

 private:
  static constexpr size_t kChunkBytes = 1 << 20;
  static constexpr size_t kMaxBytesInFlight = 16 << 20;
  static constexpr size_t kMaxOpsInFlight = 4096;

  enum class Kind { kDirectory, kBeginFile, kData, kEndFile, kHardlink, kEntryDone };
  struct Op {
    explicit Op(Kind k, std::string p = {}, std::string p2 = {})
        : kind(k), path(std::move(p)), path2(std::move(p2)) {}
    Kind kind;
    std::string path;
    std::string path2;
    unsigned mode = 0;
    std::optional<timespec> mtime;
    std::vector<char> data;
    uint64_t entries = 0;
  };

  Status FlushChunk() {
    if (chunk_.empty()) return Status::Ok();
    Op op{Kind::kData};
    op.data = std::move(chunk_);
    chunk_ = TakeSpareChunk();
    return Push(std::move(op));
  }

  std::vector<char> TakeSpareChunk() {
    std::lock_guard<std::mutex> lock(mu_);
    if (spare_.empty()) return {};
    std::vector<char> chunk = std::move(spare_.back());
    spare_.pop_back();
    return chunk;
  }

  Status Push(Op op) {
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

  void Join(bool abandon) {
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

  void Fail(Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_) {
      failed_ = true;
      error_ = std::move(st);
    }
  }

  bool Progress() {
    if (!on_progress_) return true;
    try {
      return on_progress_(entries_done_, bytes_written_);
    } catch (...) {
      return false;
    }
  }

  Status Apply(Op& op) {
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
      case Kind::kEntryDone:
        entries_done_ = op.entries;
        if (!Progress()) return Cancelled("extraction cancelled");
        return Status::Ok();
    }
    return Internal("unknown pipeline operation");
  }

  void Run() {
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
        if (op.kind == Kind::kData && spare_.size() < 4) {
          op.data.clear();
          spare_.push_back(std::move(op.data));
        }
      }
      can_push_.notify_one();
    }
  }

  TreeWriter& writer_;
  const ExtractProgress& on_progress_;
  std::vector<char> chunk_;  // reading thread only
  // Writer thread only:
  uint64_t entries_done_ = 0;
  uint64_t bytes_written_ = 0;

  std::mutex mu_;
  std::condition_variable can_push_;
  std::condition_variable can_pop_;
  std::deque<Op> queue_;
  std::vector<std::vector<char>> spare_;
  size_t bytes_in_flight_ = 0;
  bool closing_ = false;
  bool failed_ = false;
  Status error_;
  std::thread thread_;  // last: starts once everything above is constructed
};

// ---------------------------------------------------------------------------
// ArchiveReader: the shared read-validate loop.

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string ArchiveErrorText(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown error";
}

Status AddFilters(archive* a) {
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK)
    return Internal("libarchive: " + ArchiveErrorText(a));
  // bzip2 / xz only when libarchive has the library built in: otherwise it
  // would fall back to running an external program.
  if (archive_bzlib_version() != nullptr) (void)archive_read_support_filter_bzip2(a);
  if (archive_liblzma_version() != nullptr) (void)archive_read_support_filter_xz(a);
  return Status::Ok();
}

// `tar_only`: the streaming scan, which must not read a zip as a stream (a
// zip's directory, with the modes, is at its end).
Result<ArchivePtr> NewReader(bool tar_only = false) {
  ArchivePtr a(archive_read_new());
  if (!a) return Internal("libarchive: cannot allocate a reader");
  // Exactly the formats we deploy. No "raw", so a plain compressed file or
  // anything unknown is refused rather than read as one big entry.
  if (archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      (!tar_only && archive_read_support_format_zip(a.get()) != ARCHIVE_OK))
    return Internal("libarchive: " + ArchiveErrorText(a.get()));
  REPRISE_RETURN_IF_ERROR(AddFilters(a.get()));
  return a;
}

// Names are read as UTF-8 whatever the process locale is: libarchive converts
// a zip's UTF-8 names (and pax paths) to the calling thread's locale, and in
// the C locale anything beyond ASCII fails to convert. uselocale is per
// thread; the previous locale is restored.
class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale() {
    static const locale_t utf8 = ::newlocale(LC_ALL_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (utf8 != static_cast<locale_t>(0)) previous_ = ::uselocale(utf8);
  }
  ~ScopedUtf8Locale() {
    if (previous_ != static_cast<locale_t>(0)) ::uselocale(previous_);
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;

 private:
  locale_t previous_ = static_cast<locale_t>(0);
};

// The uncompressed bytes of an archive, read forward through libarchive's
// "raw" format (the same decompression filters as NewReader).
class RawTarStream : public TarStream {
 public:
  explicit RawTarStream(archive* a) : a_(a) {}
  Status Skip(uint64_t count) override {
    while (count > 0) {
      REPRISE_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) return Status::Ok();
      const size_t n = static_cast<size_t>(std::min<uint64_t>(count, size_ - pos_));
      pos_ += n;
      count -= n;
    }
    return Status::Ok();
  }
  Result<std::string> Read(size_t size) override {
    std::string out;
    while (out.size() < size) {
      REPRISE_ASSIGN_OR_RETURN(bool more, Fill());
      if (!more) break;
      const size_t n = std::min(size - out.size(), size_ - pos_);
      out.append(data_ + pos_, n);
      pos_ += n;
    }
    return out;
  }

 private:
  // False at the end of the data.
  Result<bool> Fill() {
    while (pos_ >= size_) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(a_, &block, &size, &offset);
      if (rc == ARCHIVE_EOF) return false;
      if (rc < ARCHIVE_WARN) return InvalidArgument("corrupt archive: " + ArchiveErrorText(a_));
      data_ = static_cast<const char*>(block);
      size_ = size;
      pos_ = 0;
    }
    return true;
  }
  archive* a_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
};

// Reads the special headers (pax, GNU long names) in front of the entries at
// `offsets` again, from the uncompressed stream: libarchive cuts their values
// at a NUL without a word. `open` opens the raw reader on the same bytes.
Status CheckTarHeaders(const std::vector<int64_t>& offsets,
                       const std::function<int(archive*)>& open) {
  if (offsets.empty()) return Status::Ok();
  ArchivePtr a(archive_read_new());
  if (!a || archive_read_support_format_raw(a.get()) != ARCHIVE_OK)
    return Internal("libarchive: cannot allocate a reader");
  REPRISE_RETURN_IF_ERROR(AddFilters(a.get()));
  archive_entry* entry = nullptr;
  if (open(a.get()) != ARCHIVE_OK || archive_read_next_header(a.get(), &entry) < ARCHIVE_WARN)
    return InvalidArgument("cannot read the archive again: " + ArchiveErrorText(a.get()));
  RawTarStream stream(a.get());
  return CheckTarSpecialHeaders(stream, offsets);
}

// The zip checks libarchive cannot make (see CheckZipEntryTypes) on an open
// archive file.
Status CheckZipFile(int fd, uint64_t size, const ArchiveLimits& limits) {
  ReadAt read = [fd](uint64_t offset, size_t n, std::string& out) {
    out.resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, out.data() + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      done += static_cast<size_t>(r);
    }
    return true;
  };
  return CheckZipEntryTypes(read, size, limits.max_entries);
}

class ArchiveReader {
 public:
  // Scans when `writer` is null; else extracts, queueing the writes of
  // validated entries on `pipeline` (which applies them to `writer`).
  // `archive_bytes` is the archive's size for the compression ratio; it may
  // grow while the archive is read (a stream whose size is not known yet).
  ArchiveReader(const ArchiveLimits& limits, const uint64_t* archive_bytes, TreeWriter* writer,
                WritePipeline* pipeline, const ExtractOptions& options)
      : limits_(limits),
        archive_bytes_(archive_bytes),
        writer_(writer),
        pipeline_(pipeline),
        options_(options),
        table_(limits.max_entries) {
    buffer_zeros_.assign(kZeroFillBytes, '\0');
  }

  // Reads every entry of the opened archive `a`.
  Result<Manifest> Run(archive* a) {
    ScopedUtf8Locale utf8_names;
    uint64_t& index = headers_read_;
    for (;;) {
      archive_entry* entry = nullptr;
      int rc = archive_read_next_header(a, &entry);
      if (rc == ARCHIVE_EOF) {
        NoteHeader(a, nullptr);
        break;
      }
      if (rc < ARCHIVE_WARN) {
        std::string where = index == 0 ? std::string("archive") : "after entry " + last_name_;
        if (index == 0 && rc == ARCHIVE_FATAL)
          return InvalidArgument("not a supported archive (tar, tar.gz, zip): " +
                                 ArchiveErrorText(a));
        return InvalidArgument("corrupt " + where + ": " + ArchiveErrorText(a));
      }
      ++index;
      NoteHeader(a, entry);
      if (index > limits_.max_entries) {
        const char* name = archive_entry_pathname(entry);
        return Unsafe("unsafe archive entry " +
                      (name != nullptr ? QuoteEntryName(name) : "#" + std::to_string(index)) +
                      ": archive has more than " + std::to_string(limits_.max_entries) +
                      " entries (limit max_entries)");
      }
      REPRISE_RETURN_IF_ERROR(HandleEntry(a, entry, index));
      if (pipeline_ != nullptr) REPRISE_RETURN_IF_ERROR(pipeline_->EntryDone(index));
    }
    REPRISE_RETURN_IF_ERROR(table_.FinishChecks());
    Manifest manifest = table_.BuildManifest();
    if (writer_ != nullptr) {
      // Everything but symlinks is on disk once the pipeline drained.
      REPRISE_RETURN_IF_ERROR(pipeline_->Finish());
      // Symlinks last: nothing is written after them, and all of them were
      // resolved against the complete archive above.
      std::vector<std::pair<std::string, std::string>> links(table_.symlinks().begin(),
                                                             table_.symlinks().end());
      std::sort(links.begin(), links.end());
      for (const auto& [path, target] : links)
        REPRISE_RETURN_IF_ERROR(writer_->MakeSymlink(path, target));
      REPRISE_RETURN_IF_ERROR(writer_->FinishDirectories(manifest));
    }
    return manifest;
  }

  // Headers read so far (0: the archive was not recognised).
  uint64_t headers_read() const { return headers_read_; }
  // The archive was refused for its compression ratio.
  bool ratio_refused() const { return ratio_refused_; }
  // Where the tar entries that have more header blocks than one begin in the
  // uncompressed stream: for CheckTarHeaders.
  const std::vector<int64_t>& special_header_offsets() const { return special_header_offsets_; }

 private:
  // Notes, for CheckTarHeaders, the tar entries whose headers take more than
  // the one ustar block their data needs (pax headers, GNU long names, sparse
  // maps): the span to the next header tells, whatever the format says.
  // `entry` is null at the end of the archive.
  void NoteHeader(archive* a, archive_entry* entry) {
    const int64_t position = archive_read_header_position(a);
    if (previous_header_ >= 0 && position - previous_header_ != previous_span_)
      special_header_offsets_.push_back(previous_header_);
    previous_header_ = -1;
    if (entry == nullptr || (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR)
      return;
    previous_header_ = position;
    previous_span_ = 512;
    const int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    if (archive_entry_filetype(entry) == AE_IFREG && archive_entry_hardlink(entry) == nullptr &&
        size > 0)
      previous_span_ += (size + 511) / 512 * 512;
    if (archive_entry_sparse_count(entry) > 0) previous_span_ = -1;  // always looked at
  }

  Status HandleEntry(archive* a, archive_entry* entry, uint64_t index) {
    std::string path;
    Status st = HandleEntryInner(a, entry, index, path);
    // Rules further down speak of normalised paths; name the entry as stored too.
    if (!st.ok() && st.code() == Code::kUnsafe && !path.empty() &&
        QuoteEntryName(path) != last_name_ && st.message().find(last_name_) == std::string::npos)
      return Status(st.code(), st.message() + " (stored as " + last_name_ + ")");
    return st;
  }

  Status HandleEntryInner(archive* a, archive_entry* entry, uint64_t index, std::string& path) {
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) {
      // libarchive gives no bytes for a name it cannot convert from UTF-8.
      return Unsafe("unsafe archive entry #" + std::to_string(index) +
                    (last_name_.empty() ? std::string() : " (after " + last_name_ + ")") +
                    ": name is not valid UTF-8");
    }
    std::string raw(raw_name);
    last_name_ = QuoteEntryName(raw);
    REPRISE_ASSIGN_OR_RETURN(path, NormaliseEntryPath(raw));

    auto refuse = [&](const std::string& why) {
      return Unsafe("unsafe archive entry " + last_name_ + ": " + why);
    };
    mode_t mode = archive_entry_mode(entry);
    if ((mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
      return refuse(std::string("setuid/setgid/sticky mode ") + buf);
    }
    unsigned perm = static_cast<unsigned>(mode & 0777);

    if (const char* hardlink = archive_entry_hardlink(entry)) {
      if (path.empty()) return refuse("hardlink at the destination root");
      if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0)
        return refuse("hardlink carries data");
      auto target = NormaliseEntryPath(hardlink);
      if (!target.ok() || target->empty())
        return refuse("hardlink target " + QuoteEntryName(hardlink) +
                      " is outside the destination");
      REPRISE_ASSIGN_OR_RETURN(std::string file, table_.AddHardlink(path, *target));
      if (pipeline_ != nullptr) return pipeline_->MakeHardlink(path, file);
      return Status::Ok();
    }

    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR:
        if (path.empty()) return Status::Ok();  // "./": the destination itself
        REPRISE_RETURN_IF_ERROR(table_.AddDirectory(path, perm | 0700));
        if (pipeline_ != nullptr) return pipeline_->MakeDirectory(path);
        return Status::Ok();
      case AE_IFLNK: {
        if (path.empty()) return refuse("symlink at the destination root");
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr) return refuse("symlink without a target");
        return table_.AddSymlink(path, target);
      }
      case AE_IFREG:
        if (path.empty()) return refuse("file at the destination root");
        return HandleFile(a, entry, path, perm | 0400);
      case AE_IFCHR:
        return refuse("character device");
      case AE_IFBLK:
        return refuse("block device");
      case AE_IFIFO:
        return refuse("FIFO");
      case AE_IFSOCK:
        return refuse("socket");
      default:
        return refuse("unsupported entry type");
    }
  }

  // Checks the byte limits for `total` uncompressed bytes so far.
  Status CheckTotals(uint64_t entry_bytes, uint64_t total) {
    if (entry_bytes > limits_.max_entry_bytes)
      return Unsafe("unsafe archive entry " + last_name_ + ": larger than " +
                    std::to_string(limits_.max_entry_bytes) +
                    " bytes uncompressed (limit max_entry_bytes)");
    if (total > limits_.max_total_bytes)
      return Unsafe("unsafe archive entry " + last_name_ + ": the archive holds more than " +
                    std::to_string(limits_.max_total_bytes) +
                    " bytes uncompressed up to this entry (limit max_total_bytes)");
    const uint64_t archive_bytes = *archive_bytes_;
    if (total > limits_.ratio_check_min_bytes &&
        static_cast<double>(total) >
            limits_.max_compression_ratio * static_cast<double>(archive_bytes)) {
      ratio_refused_ = true;
      return Unsafe("unsafe archive entry " + last_name_ + ": compression ratio above " +
                    std::to_string(static_cast<int64_t>(limits_.max_compression_ratio)) + " (" +
                    std::to_string(total) + " bytes from a " + std::to_string(archive_bytes) +
                    "-byte archive; limit max_compression_ratio)");
    }
    return Status::Ok();
  }

  Status Consume(Sha256& hasher, const void* data, size_t size, uint64_t& pos) {
    pos += size;
    REPRISE_RETURN_IF_ERROR(CheckTotals(pos, total_bytes_ + pos));
    hasher.Update(data, size);
    if (pipeline_ != nullptr) return pipeline_->Write(data, size);
    return Status::Ok();
  }

  Status ZeroFill(Sha256& hasher, uint64_t count, uint64_t& pos) {
    while (count > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(count, buffer_zeros_.size()));
      REPRISE_RETURN_IF_ERROR(Consume(hasher, buffer_zeros_.data(), n, pos));
      count -= n;
    }
    return Status::Ok();
  }

  Status HandleFile(archive* a, archive_entry* entry, const std::string& path, unsigned mode) {
    REPRISE_RETURN_IF_ERROR(table_.AddFile(path, mode));
    const bool size_known = archive_entry_size_is_set(entry) != 0;
    const int64_t declared_signed = size_known ? archive_entry_size(entry) : 0;
    if (declared_signed < 0)
      return Unsafe("unsafe archive entry " + last_name_ + ": negative size");
    const uint64_t declared = static_cast<uint64_t>(declared_signed);
    // Refuse by the declared size before decompressing anything.
    REPRISE_RETURN_IF_ERROR(CheckTotals(declared, total_bytes_ + declared));

    if (pipeline_ != nullptr) REPRISE_RETURN_IF_ERROR(pipeline_->BeginFile(path));
    Sha256 hasher;
    uint64_t pos = 0;
    for (;;) {
      const void* block = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(a, &block, &size, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN)
        return InvalidArgument("corrupt archive at entry " + last_name_ + ": " +
                               ArchiveErrorText(a));
      if (offset < 0 || static_cast<uint64_t>(offset) < pos)
        return InvalidArgument("corrupt archive at entry " + last_name_ +
                               ": overlapping data blocks");
      // Sparse entries: holes come back as gaps between blocks.
      if (static_cast<uint64_t>(offset) > pos)
        REPRISE_RETURN_IF_ERROR(ZeroFill(hasher, static_cast<uint64_t>(offset) - pos, pos));
      if (size > 0) REPRISE_RETURN_IF_ERROR(Consume(hasher, block, size, pos));
    }
    if (size_known && pos < declared && archive_entry_sparse_count(entry) > 0)
      REPRISE_RETURN_IF_ERROR(ZeroFill(hasher, declared - pos, pos));  // trailing hole
    if (size_known && pos != declared)
      return Unsafe("unsafe archive entry " + last_name_ + ": header says " +
                    std::to_string(declared) + " bytes, data has " + std::to_string(pos));
    total_bytes_ += pos;
    table_.SetFileData(path, pos, hasher.FinishHex());
    if (pipeline_ != nullptr) {
      std::optional<timespec> mtime;
      if (options_.keep_mtime && archive_entry_mtime_is_set(entry))
        mtime = timespec{archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
      REPRISE_RETURN_IF_ERROR(pipeline_->EndFile(mode, mtime));
    }
    return Status::Ok();
  }

  const ArchiveLimits& limits_;
  const uint64_t* archive_bytes_;
  TreeWriter* writer_;
  WritePipeline* pipeline_;
  const ExtractOptions& options_;
  EntryTable table_;
  uint64_t headers_read_ = 0;
  bool ratio_refused_ = false;
  std::vector<int64_t> special_header_offsets_;
  int64_t previous_header_ = -1;
  int64_t previous_span_ = 0;
  uint64_t total_bytes_ = 0;
  std::string last_name_;
  std::string buffer_zeros_;
};

// An archive file opened for reading; owns the fd.
struct OpenedArchive {
  ArchivePtr reader;
  int fd = -1;
  uint64_t size = 0;
  ~OpenedArchive() {
    reader.reset();
    if (fd >= 0) ::close(fd);
  }
};

Status OpenArchiveFile(const fs::path& path, OpenedArchive& out) {
  out.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (out.fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound("archive " + path.string() + " does not exist");
    return IoError("cannot open archive " + path.string() + ": " + ErrnoText(err));
  }
  struct stat st;
  if (::fstat(out.fd, &st) != 0) return IoError("cannot stat " + path.string());
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path.string() + " is not a regular file");
  out.size = static_cast<uint64_t>(st.st_size);
  REPRISE_ASSIGN_OR_RETURN(out.reader, NewReader());
  if (archive_read_open_fd(out.reader.get(), out.fd, kReadBlockBytes) != ARCHIVE_OK)
    return InvalidArgument("not a supported archive (tar, tar.gz, zip): " +
                           ArchiveErrorText(out.reader.get()));
  return Status::Ok();
}

// Reads the opened file with `reader`, then makes the tar checks libarchive
// cannot make on the same fd.
Result<Manifest> RunOnFile(ArchiveReader& reader, OpenedArchive& opened) {
  REPRISE_ASSIGN_OR_RETURN(Manifest manifest, reader.Run(opened.reader.get()));
  REPRISE_RETURN_IF_ERROR(CheckTarHeaders(reader.special_header_offsets(), [&opened](archive* raw) {
    if (::lseek(opened.fd, 0, SEEK_SET) != 0) return ARCHIVE_FATAL;
    return archive_read_open_fd(raw, opened.fd, kReadBlockBytes);
  }));
  return manifest;
}

Result<Manifest> ScanImpl(const fs::path& path, const ArchiveLimits& limits) {
  OpenedArchive opened;
  REPRISE_RETURN_IF_ERROR(OpenArchiveFile(path, opened));
  REPRISE_RETURN_IF_ERROR(CheckZipFile(opened.fd, opened.size, limits));
  ExtractOptions unused;
  ArchiveReader reader(limits, &opened.size, nullptr, nullptr, unused);
  return RunOnFile(reader, opened);
}

Result<Manifest> ExtractImpl(const fs::path& path, const fs::path& dest,
                             const ArchiveLimits& limits, const ExtractOptions& options,
                             const ExtractProgress& on_progress) {
  OpenedArchive opened;
  REPRISE_RETURN_IF_ERROR(OpenArchiveFile(path, opened));
  REPRISE_RETURN_IF_ERROR(CheckZipFile(opened.fd, opened.size, limits));

  bool created = false;
  if (::mkdir(dest.c_str(), 0755) == 0) {
    created = true;
  } else if (errno == ENOENT) {
    return NotFound("parent of destination " + dest.string() + " does not exist");
  } else if (errno != EEXIST) {
    return IoError("cannot create destination " + dest.string() + ": " + ErrnoText(errno));
  }
  int dest_fd = ::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dest_fd < 0)
    return FailedPrecondition("destination " + dest.string() + " is not a directory");
  if (!created) {
    std::error_code ec;
    if (!fs::is_empty(dest, ec) || ec) {
      ::close(dest_fd);
      return FailedPrecondition("destination " + dest.string() + " is not empty");
    }
  }

  Result<Manifest> result = Internal("unset");
  {
    TreeWriter writer(dest_fd, options.fsync);
    WritePipeline pipeline(writer, on_progress);
    ArchiveReader reader(limits, &opened.size, &writer, &pipeline, options);
    try {
      result = RunOnFile(reader, opened);
    } catch (...) {
      pipeline.Stop();
      writer.CloseFile();
      writer.ClearDirCache();
      RemoveContents(dest_fd);
      ::close(dest_fd);
      if (created) ::rmdir(dest.c_str());
      throw;
    }
    if (!result.ok()) {
      pipeline.Stop();  // the writer thread touches nothing after this
      writer.CloseFile();
      writer.ClearDirCache();
      RemoveContents(dest_fd);
    }
  }
  ::close(dest_fd);
  if (!result.ok()) {
    if (created) ::rmdir(dest.c_str());
    return result;
  }
  if (options.fsync && created) {
    fs::path parent = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
    int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      int rc = ::fsync(fd);
      ::close(fd);
      if (rc != 0) return IoError("cannot fsync " + parent.string());
    }
  }
  return result;
}

// Turns anything thrown below (bad_alloc, OpenSSL init) into a Status.
template <typename F>
auto CatchAll(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status(Code::kTooLarge, std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": " + e.what());
  } catch (...) {
    return Internal(std::string(what) + ": unknown exception");
  }
}

// True when libarchive, reading the file as ScanArchive and ExtractArchive do
// (zip too, with seeking), takes it for a tar: then a streaming scan of the
// same bytes read it with the same format reader.
Result<bool> ReadsAsTar(const fs::path& path) {
  OpenedArchive opened;
  Status st = OpenArchiveFile(path, opened);
  if (!st.ok()) return st.code() == Code::kInvalidArgument ? Result<bool>(false) : st;
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(opened.reader.get(), &entry);
  if (rc < ARCHIVE_WARN) return false;
  return (archive_format(opened.reader.get()) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR;
}

// Streaming scan: blocks of the upload go from Feed() (the receiving thread)
// through a bounded queue into libarchive's read callback on the scanner
// thread.
constexpr size_t kStreamBlockBytes = 256 << 10;
constexpr size_t kStreamMaxQueuedBlocks = 8;
constexpr size_t kStreamMaxSpareBlocks = 2;

// ---------------------------------------------------------------------------
// CreateTarGz

struct WriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

Status CreateTarGzImpl(const fs::path& source, const fs::path& out) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(source, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    paths.push_back(it->path());
  if (ec) return IoError("cannot list " + source.string() + ": " + ec.message());
  std::sort(paths.begin(), paths.end());

  std::unique_ptr<archive, WriterDeleter> a(archive_write_new());
  if (!a) return Internal("libarchive: cannot allocate a writer");
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
      // No time in the gzip header: the same tree gives the same bytes.
      archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr) < ARCHIVE_WARN ||
      archive_write_open_filename(a.get(), out.c_str()) != ARCHIVE_OK)
    return IoError("cannot write " + out.string() + ": " + ArchiveErrorText(a.get()));
  std::vector<char> buf(kReadBlockBytes);
  for (const fs::path& p : paths) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return IoError("cannot stat " + p.string());
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    std::string rel = p.lexically_relative(source).generic_string();
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 0777);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int fd = -1;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      std::error_code lec;
      fs::path target = fs::read_symlink(p, lec);
      if (lec) return IoError("cannot read symlink " + p.string());
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
      fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return IoError("cannot open " + p.string() + ": " + ErrnoText(errno));
    } else {
      continue;  // devices, FIFOs, sockets: not artifact content
    }
    Status st_write;
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
      st_write = IoError("cannot write " + rel + ": " + ArchiveErrorText(a.get()));
    while (st_write.ok() && fd >= 0) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) st_write = IoError("cannot read " + p.string() + ": " + ErrnoText(errno));
      if (n <= 0) break;
      if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) != n)
        st_write = IoError("cannot write " + rel + ": " + ArchiveErrorText(a.get()));
    }
    if (fd >= 0) ::close(fd);
    REPRISE_RETURN_IF_ERROR(st_write);
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return IoError("cannot finish " + out.string() + ": " + ArchiveErrorText(a.get()));
  return Status::Ok();
}

}  // namespace

Result<Manifest> ScanArchive(const fs::path& archive, const ArchiveLimits& limits) {
  return CatchAll("scanning " + archive.string(), [&] { return ScanImpl(archive, limits); });
}

Result<Manifest> ScanArchiveBuffer(std::string_view bytes, const ArchiveLimits& limits) {
  return CatchAll("scanning archive", [&]() -> Result<Manifest> {
    REPRISE_ASSIGN_OR_RETURN(ArchivePtr a, NewReader());
    if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
      return InvalidArgument("not a supported archive (tar, tar.gz, zip): " +
                             ArchiveErrorText(a.get()));
    ReadAt read = [bytes](uint64_t offset, size_t n, std::string& out) {
      if (offset > bytes.size() || n > bytes.size() - offset) return false;
      out.assign(bytes.substr(static_cast<size_t>(offset), n));
      return true;
    };
    REPRISE_RETURN_IF_ERROR(CheckZipEntryTypes(read, bytes.size(), limits.max_entries));
    ExtractOptions unused;
    const uint64_t size = bytes.size();
    ArchiveReader reader(limits, &size, nullptr, nullptr, unused);
    REPRISE_ASSIGN_OR_RETURN(Manifest manifest, reader.Run(a.get()));
    REPRISE_RETURN_IF_ERROR(CheckTarHeaders(reader.special_header_offsets(), [bytes](archive* raw) {
      return archive_read_open_memory(raw, bytes.data(), bytes.size());
    }));
    return manifest;
  });
}

Result<Manifest> ExtractArchive(const fs::path& archive, const fs::path& dest_dir,
                                const ArchiveLimits& limits, const ExtractOptions& options,
                                const ExtractProgress& on_progress) {
  return CatchAll("extracting " + archive.string(),
                  [&] { return ExtractImpl(archive, dest_dir, limits, options, on_progress); });
}

// ---------------------------------------------------------------------------
// ArchiveStreamScanner

struct ArchiveStreamScanner::State {
  ArchiveLimits limits;

  std::mutex mu;
  std::condition_variable can_feed;
  std::condition_variable can_read;
  std::deque<std::vector<char>> queue;
  std::vector<std::vector<char>> spare;
  bool input_ended = false;
  bool abandoned = false;
  bool scan_ended = false;

  // Scanner thread; read by the receiving thread after the join.
  std::vector<char> reading;  // the block libarchive is reading
  uint64_t received = 0;      // bytes handed to libarchive: the ratio's archive size
  bool streamable = true;     // false: Finish scans the complete file instead
  std::vector<int64_t> special_header_offsets;  // for CheckTarHeaders in Finish
  std::optional<Result<Manifest>> result;

  // Receiving thread only.
  std::vector<char> filling;
  bool dropping = false;  // the scan ended: Feed drops everything
};

ArchiveStreamScanner::ArchiveStreamScanner(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

Result<std::unique_ptr<ArchiveStreamScanner>> ArchiveStreamScanner::Start(
    const ArchiveLimits& limits) {
  return CatchAll(
      "starting the archive scan", [&]() -> Result<std::unique_ptr<ArchiveStreamScanner>> {
        auto state = std::make_unique<State>();
        state->limits = limits;
        state->spare.reserve(kStreamMaxSpareBlocks);
        std::unique_ptr<ArchiveStreamScanner> scanner(new ArchiveStreamScanner(std::move(state)));
        scanner->thread_ = std::thread([s = scanner.get()] { s->Run(); });
        return scanner;
      });
}

ArchiveStreamScanner::~ArchiveStreamScanner() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->abandoned = true;
  }
  state_->can_read.notify_all();
  thread_.join();
}

void ArchiveStreamScanner::Run() {
  State& s = *state_;
  // libarchive calls this on this thread whenever it needs more bytes.
  auto read = [](archive* a, void* client, const void** buffer) -> la_ssize_t {
    State& st = *static_cast<State*>(client);
    try {
      std::unique_lock<std::mutex> lock(st.mu);
      if (st.reading.capacity() > 0) {
        st.reading.clear();
        if (st.spare.size() < kStreamMaxSpareBlocks) st.spare.push_back(std::move(st.reading));
        st.reading = {};
      }
      st.can_read.wait(lock, [&] { return st.abandoned || st.input_ended || !st.queue.empty(); });
      if (st.abandoned) {
        archive_set_error(a, ECANCELED, "the upload was abandoned");
        return ARCHIVE_FATAL;
      }
      if (st.queue.empty()) return 0;  // the end of the input
      st.reading = std::move(st.queue.front());
      st.queue.pop_front();
      lock.unlock();
      st.can_feed.notify_one();
      st.received += st.reading.size();
      *buffer = st.reading.data();
      return static_cast<la_ssize_t>(st.reading.size());
    } catch (...) {
      archive_set_error(a, ENOMEM, "cannot buffer the upload");
      return ARCHIVE_FATAL;
    }
  };
  Result<Manifest> result = CatchAll("scanning the upload", [&]() -> Result<Manifest> {
    REPRISE_ASSIGN_OR_RETURN(ArchivePtr a, NewReader(/*tar_only=*/true));
    if (archive_read_open(a.get(), &s, nullptr, read, nullptr) != ARCHIVE_OK) {
      s.streamable = false;
      return InvalidArgument("not a tar: " + ArchiveErrorText(a.get()));
    }
    ExtractOptions unused;
    ArchiveReader reader(s.limits, &s.received, nullptr, nullptr, unused);
    Result<Manifest> r = reader.Run(a.get());
    s.special_header_offsets = reader.special_header_offsets();
    // Not recognised as a tar (a zip, or garbage): the file scan decides.
    if (!r.ok() && reader.headers_read() == 0 && r.status().code() == Code::kInvalidArgument)
      s.streamable = false;
    // The ratio was checked against the bytes received so far, which is
    // stricter than against the whole archive: the file scan decides.
    if (!r.ok() && reader.ratio_refused()) s.streamable = false;
    return r;
  });
  std::lock_guard<std::mutex> lock(s.mu);
  s.result.emplace(std::move(result));
  s.scan_ended = true;
  s.queue.clear();  // nothing reads them any more
  s.can_feed.notify_all();
}

void ArchiveStreamScanner::Push() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.can_feed.wait(lock, [&] { return s.scan_ended || s.queue.size() < kStreamMaxQueuedBlocks; });
  if (s.scan_ended) {
    s.dropping = true;
    s.filling.clear();
    return;
  }
  s.queue.push_back(std::move(s.filling));
  s.filling = {};
  if (!s.spare.empty()) {
    s.filling = std::move(s.spare.back());
    s.spare.pop_back();
  }
  lock.unlock();
  s.can_read.notify_one();
}

void ArchiveStreamScanner::Feed(const char* data, size_t size) {
  State& s = *state_;
  while (size > 0 && !s.dropping) {
    if (s.filling.capacity() < kStreamBlockBytes) s.filling.reserve(kStreamBlockBytes);
    size_t n = std::min(size, kStreamBlockBytes - s.filling.size());
    s.filling.insert(s.filling.end(), data, data + n);
    data += n;
    size -= n;
    if (s.filling.size() == kStreamBlockBytes) Push();
  }
}

Result<Manifest> ArchiveStreamScanner::Finish(const fs::path& complete_file) {
  State& s = *state_;
  if (!thread_.joinable()) return FailedPrecondition("the archive scan was finished already");
  if (!s.dropping && !s.filling.empty()) Push();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.input_ended = true;
  }
  s.can_read.notify_all();
  thread_.join();
  if (s.streamable) {
    // The bytes were read as a tar; so must the file be, or the scan and a
    // later extraction could see different archives in the same bytes.
    REPRISE_ASSIGN_OR_RETURN(bool tar, CatchAll("scanning " + complete_file.string(),
                                                [&] { return ReadsAsTar(complete_file); }));
    if (tar) {
      if (s.result->ok()) {
        REPRISE_RETURN_IF_ERROR(CatchAll("scanning " + complete_file.string(), [&]() -> Status {
          int fd = ::open(complete_file.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            return IoError("cannot open archive " + complete_file.string() + ": " +
                           ErrnoText(errno));
          Status checked = CheckTarHeaders(s.special_header_offsets, [fd](archive* raw) {
            return archive_read_open_fd(raw, fd, kReadBlockBytes);
          });
          ::close(fd);
          return checked;
        }));
      }
      return std::move(*s.result);
    }
  }
  return ScanArchive(complete_file, s.limits);
}

Status CreateTarGz(const fs::path& source_dir, const fs::path& out) {
  return CatchAll("archiving " + source_dir.string(),
                  [&] { return CreateTarGzImpl(source_dir, out); });
}

}  // namespace reprise
