#include "server/artifacts/blob_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "common/fs.h"

namespace reprise {

namespace fs = std::filesystem;

namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

constexpr std::string_view kTempPrefix = "upload-";
constexpr size_t kWriteBufferBytes = 256 << 10;
// With fsync on, writeback of what an upload wrote starts every this many
// bytes, so the fsync at Commit only waits for the last part.
constexpr uint64_t kWritebackBytes = 8 << 20;

// Creates `dir` if missing; fsyncs its parent when it was created, so the new
// directory entry survives a crash together with what goes into it.
Status EnsureDir(const fs::path& dir, bool fsync) {
  if (::mkdir(dir.c_str(), 0755) == 0) {
    if (fsync) return FsyncDir(dir.parent_path());
    return Status::Ok();
  }
  if (errno != EEXIST) return IoError("cannot create " + dir.string() + ": " + ErrnoText(errno));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return IoError(dir.string() + " exists and is not a directory");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// BlobWriter

BlobWriter::BlobWriter(const BlobStore* store, int fd, fs::path temp_path, uint64_t max_bytes)
    : store_(store),
      fd_(fd),
      temp_path_(std::move(temp_path)),
      max_bytes_(max_bytes),
      hasher_(std::make_unique<Sha256>()),
      state_(State::kWriting) {}

BlobWriter::BlobWriter(BlobWriter&& other) noexcept
    : store_(other.store_),
      fd_(other.fd_),
      temp_path_(std::move(other.temp_path_)),
      max_bytes_(other.max_bytes_),
      size_(other.size_),
      hasher_(std::move(other.hasher_)),
      buffer_(std::move(other.buffer_)),
      sha256_(std::move(other.sha256_)),
      state_(other.state_),
      synced_(other.synced_),
      on_disk_(other.on_disk_),
      writeback_from_(other.writeback_from_) {
  other.fd_ = -1;
  other.state_ = State::kDone;
}

BlobWriter& BlobWriter::operator=(BlobWriter&& other) noexcept {
  if (this != &other) {
    Discard();
    store_ = other.store_;
    fd_ = other.fd_;
    temp_path_ = std::move(other.temp_path_);
    max_bytes_ = other.max_bytes_;
    size_ = other.size_;
    hasher_ = std::move(other.hasher_);
    buffer_ = std::move(other.buffer_);
    sha256_ = std::move(other.sha256_);
    state_ = other.state_;
    synced_ = other.synced_;
    on_disk_ = other.on_disk_;
    writeback_from_ = other.writeback_from_;
    other.fd_ = -1;
    other.state_ = State::kDone;
  }
  return *this;
}

BlobWriter::~BlobWriter() { Discard(); }

void BlobWriter::Discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (state_ != State::kDone && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  state_ = State::kDone;
}

Status BlobWriter::Write(const char* data, size_t size) {
  if (state_ != State::kWriting) return FailedPrecondition("upload is no longer open for writing");
  if (max_bytes_ > 0 && size > max_bytes_ - size_) {
    Discard();
    return TooLarge("upload exceeds the limit of " + std::to_string(max_bytes_) + " bytes");
  }
  hasher_->Update(data, size);
  size_ += size;
  if (buffer_.size() + size <= kWriteBufferBytes) {
    buffer_.append(data, size);
    if (buffer_.size() < kWriteBufferBytes) return Status::Ok();
    return Flush();
  }
  REPRISE_RETURN_IF_ERROR(Flush());
  if (size < kWriteBufferBytes) {
    buffer_.append(data, size);
    return Status::Ok();
  }
  return WriteAll(data, size);
}

Status BlobWriter::Flush() {
  Status st = WriteAll(buffer_.data(), buffer_.size());
  buffer_.clear();
  return st;
}

Status BlobWriter::WriteAll(const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = IoError("cannot write " + temp_path_.string() + ": " + ErrnoText(errno));
      Discard();
      return st;
    }
    data += n;
    size -= static_cast<size_t>(n);
    on_disk_ += static_cast<uint64_t>(n);
  }
  if (store_->options().fsync && on_disk_ - writeback_from_ >= kWritebackBytes) {
    // Only a hint to start writing back; errors show at the fsync in Commit.
    (void)::sync_file_range(fd_, static_cast<off64_t>(writeback_from_),
                            static_cast<off64_t>(on_disk_ - writeback_from_),
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = on_disk_;
  }
  return Status::Ok();
}

Result<FinishedUpload> BlobWriter::Finish() {
  if (state_ == State::kWriting) {
    REPRISE_RETURN_IF_ERROR(Flush());
    sha256_ = hasher_->FinishHex();
    state_ = State::kFinished;
  }
  if (state_ != State::kFinished) return FailedPrecondition("upload was aborted or committed");
  return FinishedUpload{sha256_, size_, temp_path_};
}

Status BlobWriter::Sync() {
  REPRISE_ASSIGN_OR_RETURN(FinishedUpload upload, Finish());
  if (synced_ || !store_->options().fsync) return Status::Ok();
  if (::fsync(fd_) != 0) {
    Status st = IoError("cannot fsync " + upload.temp_path.string() + ": " + ErrnoText(errno));
    Discard();
    return st;
  }
  synced_ = true;
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// BlobStore

BlobStore::BlobStore(fs::path root, BlobStoreOptions options)
    : root_(std::move(root)),
      blobs_dir_(root_ / "sha256"),
      tmp_dir_(root_ / "tmp"),
      options_(options) {}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const fs::path& root, BlobStoreOptions options) {
  const std::string& owner = options.upload_owner;
  if (owner.size() > 64 || !std::all_of(owner.begin(), owner.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z');
      }))
    return InvalidArgument("an upload owner is up to 64 lower-case letters and digits");
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return IoError("cannot create " + root.string() + ": " + ec.message());
  std::unique_ptr<BlobStore> store(new BlobStore(root, options));
  REPRISE_RETURN_IF_ERROR(EnsureDir(store->blobs_dir_, options.fsync));
  REPRISE_RETURN_IF_ERROR(EnsureDir(store->tmp_dir_, options.fsync));
  // link(2) from tmp/ into sha256/ needs one filesystem.
  struct stat a, b;
  if (::stat(store->blobs_dir_.c_str(), &a) != 0 || ::stat(store->tmp_dir_.c_str(), &b) != 0)
    return IoError("cannot stat " + root.string());
  if (a.st_dev != b.st_dev)
    return FailedPrecondition(store->tmp_dir_.string() + " and " + store->blobs_dir_.string() +
                              " must be on the same filesystem");
  return store;
}

bool BlobStore::IsValidHash(std::string_view sha256) {
  return sha256.size() == 64 && std::all_of(sha256.begin(), sha256.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

fs::path BlobStore::BlobPath(std::string_view sha256) const {
  return blobs_dir_ / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

Result<fs::path> BlobStore::Path(std::string_view sha256) const {
  if (!IsValidHash(sha256)) return InvalidArgument("not a sha256 hash");
  return BlobPath(sha256);
}

bool BlobStore::Exists(std::string_view sha256) const {
  if (!IsValidHash(sha256)) return false;
  struct stat st;
  return ::stat(BlobPath(sha256).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<uint64_t> BlobStore::Size(std::string_view sha256) const {
  REPRISE_ASSIGN_OR_RETURN(fs::path path, Path(sha256));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("no blob " + std::string(sha256));
    return IoError("cannot stat " + path.string() + ": " + ErrnoText(errno));
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<BlobWriter> BlobStore::BeginUpload(uint64_t max_bytes) const {
  fs::path temp;
  int fd = -1;
  try {
    temp = tmp_dir_ / (OwnPrefix() + RandomHex(16));
  } catch (const std::exception& e) {
    return Internal(e.what());
  }
  fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot create " + temp.string() + ": " + ErrnoText(errno));
  return BlobWriter(this, fd, std::move(temp), max_bytes > 0 ? max_bytes : options_.max_blob_bytes);
}

Status BlobStore::Abort(BlobWriter& writer) const {
  if (writer.store_ != this) return InvalidArgument("upload belongs to another store");
  writer.Discard();
  return Status::Ok();
}

Result<std::string> BlobStore::Commit(BlobWriter& writer, std::string_view expected_sha256,
                                      bool keep_duplicate) const {
  if (writer.store_ != this) return InvalidArgument("upload belongs to another store");
  REPRISE_ASSIGN_OR_RETURN(FinishedUpload upload, writer.Finish());
  if (!expected_sha256.empty() && expected_sha256 != upload.sha256) {
    writer.Discard();
    return InvalidArgument("upload has sha256 " + upload.sha256 + ", expected " +
                           std::string(expected_sha256));
  }
  auto fail = [&](const std::string& message) -> Status {
    const int err = errno;  // before anything else can change it
    Status st = IoError(message + ": " + ErrnoText(err));
    writer.Discard();
    return st;
  };
  if (options_.fsync && !writer.synced_ && ::fsync(writer.fd_) != 0)
    return fail("cannot fsync " + upload.temp_path.string());
  if (::fchmod(writer.fd_, 0444) != 0) return fail("cannot chmod " + upload.temp_path.string());
  if (::close(writer.fd_) != 0) {
    writer.fd_ = -1;
    return fail("cannot close " + upload.temp_path.string());
  }
  writer.fd_ = -1;

  const fs::path final_path = BlobPath(upload.sha256);
  const fs::path dir = final_path.parent_path();
  Status st = EnsureDir(dir, options_.fsync);
  if (!st.ok()) {
    writer.Discard();
    return st;
  }
  // link(2) never replaces: exactly one of many concurrent identical uploads
  // creates the blob, the others see EEXIST and just drop their copy.
  bool created = false;
  if (::link(upload.temp_path.c_str(), final_path.c_str()) == 0) {
    created = true;
  } else if (errno == EEXIST) {
    created = false;
  } else if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK || errno == ENOSYS) {
    // Filesystems without hardlinks: rename that refuses to replace.
    if (::renameat2(AT_FDCWD, upload.temp_path.c_str(), AT_FDCWD, final_path.c_str(),
                    RENAME_NOREPLACE) == 0)
      created = true;
    else if (errno != EEXIST)
      return fail("cannot store blob " + final_path.string());
  } else {
    return fail("cannot store blob " + final_path.string());
  }
  // Unlinks the temporary name (a new blob keeps the inode; a duplicate's
  // bytes go with it, unless the caller drops them itself).
  if (created || !keep_duplicate) writer.Discard();
  if (created && options_.fsync) REPRISE_RETURN_IF_ERROR(FsyncDir(dir));
  return upload.sha256;
}

Result<std::string> BlobStore::Put(std::string_view bytes) const {
  REPRISE_ASSIGN_OR_RETURN(BlobWriter writer, BeginUpload());
  REPRISE_RETURN_IF_ERROR(writer.Write(bytes));
  return Commit(writer);
}

std::string BlobStore::OwnPrefix() const {
  return std::string(kTempPrefix) +
         (options_.upload_owner.empty() ? "" : options_.upload_owner + "-");
}

Result<uint64_t> BlobStore::CleanTemporaries(std::chrono::seconds older_than) const {
  return RemoveTemporaries(older_than, false);
}

Result<uint64_t> BlobStore::CleanTemporariesAtStart(std::chrono::seconds others_older_than) const {
  return RemoveTemporaries(others_older_than, !options_.upload_owner.empty());
}

// Removes the temporaries untouched for `older_than` (0: all), and with
// `all_own` every one of this owner's whatever its age.
Result<uint64_t> BlobStore::RemoveTemporaries(std::chrono::seconds older_than, bool all_own) const {
  std::error_code ec;
  uint64_t removed = 0;
  const auto now = fs::file_time_type::clock::now();
  const std::string own = OwnPrefix();
  for (auto it = fs::directory_iterator(tmp_dir_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    if (!(all_own && name.rfind(own, 0) == 0)) {
      std::error_code tec;
      auto mtime = fs::last_write_time(it->path(), tec);
      if (tec) continue;
      if (older_than.count() > 0 && now - mtime < older_than) continue;
    }
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  if (ec) return IoError("cannot list " + tmp_dir_.string() + ": " + ec.message());
  return removed;
}

Status BlobStore::Verify(std::string_view sha256) const {
  REPRISE_ASSIGN_OR_RETURN(fs::path path, Path(sha256));
  if (!Exists(sha256)) return NotFound("no blob " + std::string(sha256));
  REPRISE_ASSIGN_OR_RETURN(std::string actual, Sha256File(path));
  if (actual != sha256)
    return Conflict("blob " + std::string(sha256) + " is corrupt: content hashes to " + actual);
  return Status::Ok();
}

Result<std::vector<std::string>> BlobStore::List() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto dir = fs::directory_iterator(blobs_dir_, ec); !ec && dir != fs::directory_iterator();
       dir.increment(ec)) {
    if (!dir->is_directory()) continue;
    std::string prefix = dir->path().filename().string();
    std::error_code fec;
    for (auto f = fs::directory_iterator(dir->path(), fec); !fec && f != fs::directory_iterator();
         f.increment(fec)) {
      std::string name = f->path().filename().string();
      if (IsValidHash(name) && name.compare(0, 2, prefix) == 0 && f->is_regular_file())
        out.push_back(name);
    }
    if (fec) return IoError("cannot list " + dir->path().string() + ": " + fec.message());
  }
  if (ec) return IoError("cannot list " + blobs_dir_.string() + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<VerifyReport> BlobStore::VerifyAll() const {
  VerifyReport report;
  std::error_code ec;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(blobs_dir_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink() || !it->is_directory()) files.push_back(it->path());
  }
  if (ec) return IoError("cannot list " + blobs_dir_.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    std::string name = p.filename().string();
    fs::path rel = p.lexically_relative(blobs_dir_);
    const bool in_place = IsValidHash(name) && rel == fs::path(name.substr(0, 2)) / name &&
                          fs::is_regular_file(fs::symlink_status(p));
    if (!in_place) {
      report.unexpected.push_back(rel.generic_string());
      continue;
    }
    auto actual = Sha256File(p);
    ++report.blobs_checked;
    struct stat st;
    const bool stated = ::lstat(p.c_str(), &st) == 0;
    if (stated && (st.st_mode & 07777) != 0444)
      report.wrong_mode.push_back({name, static_cast<unsigned>(st.st_mode & 07777)});
    if (!actual.ok() || *actual != name) {
      report.corrupt.push_back(name);
      continue;
    }
    if (stated) report.bytes_checked += static_cast<uint64_t>(st.st_size);
  }
  return report;
}

Status BlobStore::Remove(std::string_view sha256) const {
  REPRISE_ASSIGN_OR_RETURN(fs::path path, Path(sha256));
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return NotFound("no blob " + std::string(sha256));
    return IoError("cannot remove " + path.string() + ": " + ErrnoText(errno));
  }
  if (options_.fsync) return FsyncDir(path.parent_path());
  return Status::Ok();
}

}  // namespace reprise
