// libarchive's side of reading: a reader for the formats Reprise deploys,
// the tar and zip checks libarchive cannot make, and ArchiveReader, the
// read-validate loop both scanning and extraction run.
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agents/deployer/archive_internal.h"
#include "agents/deployer/header_checks.h"
#include "common/crypto.h"

namespace reprise {
namespace archive_internal {

namespace fs = std::filesystem;

std::string ErrnoText(int err) { return std::strerror(err); }

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

Result<ArchivePtr> NewReader(bool tar_only) {
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

namespace {

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

}  // namespace

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

Result<Manifest> ArchiveReader::Run(archive* a) {
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

void ArchiveReader::NoteHeader(archive* a, archive_entry* entry) {
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

Status ArchiveReader::HandleEntry(archive* a, archive_entry* entry, uint64_t index) {
  std::string path;
  Status st = HandleEntryInner(a, entry, index, path);
  // Rules further down speak of normalised paths; name the entry as stored too.
  if (!st.ok() && st.code() == Code::kUnsafe && !path.empty() &&
      QuoteEntryName(path) != last_name_ && st.message().find(last_name_) == std::string::npos)
    return Status(st.code(), st.message() + " (stored as " + last_name_ + ")");
  return st;
}

Status ArchiveReader::HandleEntryInner(archive* a, archive_entry* entry, uint64_t index,
                                       std::string& path) {
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
      return refuse("hardlink target " + QuoteEntryName(hardlink) + " is outside the destination");
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

Status ArchiveReader::CheckTotals(uint64_t entry_bytes, uint64_t total) {
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

Status ArchiveReader::Consume(Sha256& hasher, const void* data, size_t size, uint64_t& pos) {
  pos += size;
  REPRISE_RETURN_IF_ERROR(CheckTotals(pos, total_bytes_ + pos));
  hasher.Update(data, size);
  if (holding_ && reuse_data_.size() + size > kMaxReuseBufferBytes)
    REPRISE_RETURN_IF_ERROR(SpillReuseData(holding_path_));
  if (holding_) {
    const char* p = static_cast<const char*>(data);
    reuse_data_.insert(reuse_data_.end(), p, p + size);
    return Status::Ok();
  }
  if (pipeline_ != nullptr) return pipeline_->Write(data, size);
  return Status::Ok();
}

bool ArchiveReader::ReuseCandidate(const std::string& path, unsigned mode,
                                   uint64_t declared) const {
  if (pipeline_ == nullptr || options_.reuse == nullptr || declared > kMaxReuseBufferBytes)
    return false;
  auto it = options_.reuse->files.find(path);
  return it != options_.reuse->files.end() && it->second.mode == mode &&
         it->second.size == declared;
}

Status ArchiveReader::SpillReuseData(const std::string& path) {
  holding_ = false;
  REPRISE_RETURN_IF_ERROR(pipeline_->BeginFile(path));
  if (!reuse_data_.empty())
    REPRISE_RETURN_IF_ERROR(pipeline_->Write(reuse_data_.data(), reuse_data_.size()));
  reuse_data_.clear();
  return Status::Ok();
}

Status ArchiveReader::ZeroFill(Sha256& hasher, uint64_t count, uint64_t& pos) {
  while (count > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(count, buffer_zeros_.size()));
    REPRISE_RETURN_IF_ERROR(Consume(hasher, buffer_zeros_.data(), n, pos));
    count -= n;
  }
  return Status::Ok();
}

Status ArchiveReader::HandleFile(archive* a, archive_entry* entry, const std::string& path,
                                 unsigned mode) {
  REPRISE_RETURN_IF_ERROR(table_.AddFile(path, mode));
  const bool size_known = archive_entry_size_is_set(entry) != 0;
  const int64_t declared_signed = size_known ? archive_entry_size(entry) : 0;
  if (declared_signed < 0) return Unsafe("unsafe archive entry " + last_name_ + ": negative size");
  const uint64_t declared = static_cast<uint64_t>(declared_signed);
  // Refuse by the declared size before decompressing anything.
  REPRISE_RETURN_IF_ERROR(CheckTotals(declared, total_bytes_ + declared));

  // A file that may be reused is held until its hash is known; the others
  // are written as they are read.
  holding_ = size_known && ReuseCandidate(path, mode, declared);
  if (holding_) {
    holding_path_ = path;
    reuse_data_.clear();
    reuse_data_.reserve(declared);
  } else if (pipeline_ != nullptr) {
    REPRISE_RETURN_IF_ERROR(pipeline_->BeginFile(path));
  }
  Sha256 hasher;
  uint64_t pos = 0;
  for (;;) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(a, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      return InvalidArgument("corrupt archive at entry " + last_name_ + ": " + ArchiveErrorText(a));
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
  std::string sha256 = hasher.FinishHex();
  table_.SetFileData(path, pos, sha256);
  if (pipeline_ == nullptr) return Status::Ok();
  std::optional<timespec> mtime;
  if (options_.keep_mtime && archive_entry_mtime_is_set(entry))
    mtime = timespec{archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  if (holding_) {
    holding_ = false;
    std::vector<char> data;
    data.swap(reuse_data_);
    if (options_.reuse->files.at(path).sha256 == sha256)
      return pipeline_->LinkOrWrite(path, mode, mtime, std::move(data));
    return pipeline_->WriteWhole(path, mode, mtime, std::move(data));
  }
  return pipeline_->EndFile(mode, mtime);
}

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
  REPRISE_ASSIGN_OR_RETURN(bool gzip, FdStartsGzip(out.fd));
  // A gzip archive is a tar.gz: its inflated stream is never read as a zip.
  REPRISE_ASSIGN_OR_RETURN(out.reader, NewReader(/*tar_only=*/gzip));
  if (OpenFd(out.reader.get(), out.fd, out.gzip) != ARCHIVE_OK)
    return InvalidArgument("not a supported archive (tar, tar.gz, zip): " +
                           ArchiveErrorText(out.reader.get()));
  return Status::Ok();
}

Result<Manifest> RunOnFile(ArchiveReader& reader, OpenedArchive& opened) {
  REPRISE_ASSIGN_OR_RETURN(Manifest manifest, reader.Run(opened.reader.get()));
  std::unique_ptr<ArchiveInput> again;
  REPRISE_RETURN_IF_ERROR(
      CheckTarHeaders(reader.special_header_offsets(), [&opened, &again](archive* raw) {
        if (::lseek(opened.fd, 0, SEEK_SET) != 0) return ARCHIVE_FATAL;
        return OpenFd(raw, opened.fd, again);
      }));
  return manifest;
}

Result<bool> ReadsAsTar(const fs::path& path) {
  OpenedArchive opened;
  Status st = OpenArchiveFile(path, opened);
  if (!st.ok()) return st.code() == Code::kInvalidArgument ? Result<bool>(false) : st;
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(opened.reader.get(), &entry);
  if (rc < ARCHIVE_WARN) return false;
  return (archive_format(opened.reader.get()) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_TAR;
}

}  // namespace archive_internal
}  // namespace reprise
