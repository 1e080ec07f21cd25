// The one libarchive wrapper. ScanArchive and ExtractArchive share one reading
// loop (ArchiveReader); extraction only adds a TreeWriter that performs the
// writes of entries the loop has already validated.
#include "agents/deployer/archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <vector>

#include "agents/deployer/archive_internal.h"
#include "agents/deployer/header_checks.h"

namespace reprise {

namespace fs = std::filesystem;

namespace {

using namespace archive_internal;  // this module's own internals

Result<Manifest> ScanImpl(const fs::path& path, const ArchiveLimits& limits) {
  OpenedArchive opened;
  REPRISE_RETURN_IF_ERROR(OpenArchiveFile(path, opened));
  REPRISE_RETURN_IF_ERROR(CheckZipFile(opened.fd, opened.size, limits));
  ExtractOptions unused;
  ArchiveReader reader(limits, &opened.size, nullptr, nullptr, unused);
  return RunOnFile(reader, opened);
}

// Reads the archive with `read` (given the reader to run) into `dest`, which
// is created or must be empty; on any error what was written is removed.
// `archive_bytes` is the archive's size for the compression ratio.
using ReadArchive = std::function<Result<Manifest>(ArchiveReader&)>;
Result<Manifest> ExtractInto(const fs::path& dest, const ArchiveLimits& limits,
                             const ExtractOptions& options, const ExtractProgress& on_progress,
                             const uint64_t* archive_bytes, const ReadArchive& read) {
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

  // The tree files are reused from, when it cannot be opened, is only not used.
  int reuse_fd = -1;
  if (options.reuse != nullptr)
    reuse_fd = ::open(options.reuse->dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  ExtractOptions effective = options;
  if (reuse_fd < 0) effective.reuse = nullptr;

  Result<Manifest> result = Internal("unset");
  {
    TreeWriter writer(dest_fd, options.fsync);
    writer.SetReuseDir(reuse_fd);
    WritePipeline pipeline(writer, on_progress);
    ArchiveReader reader(limits, archive_bytes, &writer, &pipeline, effective);
    try {
      result = read(reader);
    } catch (...) {
      pipeline.Stop();
      writer.CloseFile();
      writer.ClearDirCache();
      RemoveContents(dest_fd);
      ::close(dest_fd);
      if (reuse_fd >= 0) ::close(reuse_fd);
      if (created) ::rmdir(dest.c_str());
      throw;
    }
    if (!result.ok()) {
      pipeline.Stop();  // the writer thread touches nothing after this
      writer.CloseFile();
      writer.ClearDirCache();
      RemoveContents(dest_fd);
    } else if (options.stats != nullptr) {  // the pipeline has finished
      options.stats->linked_files = pipeline.linked_files();
      options.stats->linked_bytes = pipeline.linked_bytes();
    }
  }
  ::close(dest_fd);
  if (reuse_fd >= 0) ::close(reuse_fd);
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

Result<Manifest> ExtractImpl(const fs::path& path, const fs::path& dest,
                             const ArchiveLimits& limits, const ExtractOptions& options,
                             const ExtractProgress& on_progress) {
  OpenedArchive opened;
  REPRISE_RETURN_IF_ERROR(OpenArchiveFile(path, opened));
  REPRISE_RETURN_IF_ERROR(CheckZipFile(opened.fd, opened.size, limits));
  return ExtractInto(dest, limits, options, on_progress, &opened.size,
                     [&opened](ArchiveReader& reader) { return RunOnFile(reader, opened); });
}

// The checks RunOnFile makes after reading, on the complete file.
Status CheckCompleteFile(ArchiveSource& source, const ArchiveReader& reader) {
  if (reader.special_header_offsets().empty()) return Status::Ok();
  REPRISE_ASSIGN_OR_RETURN(fs::path file, source.Complete());
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open archive " + file.string() + ": " + ErrnoText(errno));
  std::unique_ptr<ArchiveInput> gzip;
  Status checked = CheckTarHeaders(reader.special_header_offsets(),
                                   [fd, &gzip](archive* raw) { return OpenFd(raw, fd, gzip); });
  ::close(fd);
  return checked;
}

Result<Manifest> ExtractStreamImpl(ArchiveSource& source, const fs::path& dest,
                                   const ArchiveLimits& limits, const ExtractOptions& options,
                                   const ExtractProgress& on_progress) {
  REPRISE_ASSIGN_OR_RETURN(std::string_view first, source.Read());
  // Only a tar reads as a stream (a zip keeps its directory at its end); a
  // first block too short to tell is not streamed either.
  if (!StartsGzip(first)) {
    REPRISE_ASSIGN_OR_RETURN(fs::path file, source.Complete());
    return ExtractImpl(file, dest, limits, options, on_progress);
  }
  // Updated on this thread, the one that reads the ratio.
  uint64_t size = source.Size();
  RawBlocks rest = [&source, &size]() -> Result<std::string_view> {
    Result<std::string_view> block = source.Read();
    size = std::max(size, source.Size());
    return block;
  };
  std::unique_ptr<ArchiveInput> input = NewGzipInput(Prefixed(first, std::move(rest)));
  REPRISE_ASSIGN_OR_RETURN(ArchivePtr a, NewReader(/*tar_only=*/true));
  if (OpenInput(a.get(), *input) != ARCHIVE_OK)
    return InvalidArgument("not a supported archive (tar, tar.gz, zip): " +
                           ArchiveErrorText(a.get()));
  return ExtractInto(dest, limits, options, on_progress, &size,
                     [&](ArchiveReader& reader) -> Result<Manifest> {
                       REPRISE_ASSIGN_OR_RETURN(Manifest manifest, reader.Run(a.get()));
                       REPRISE_RETURN_IF_ERROR(CheckCompleteFile(source, reader));
                       return manifest;
                     });
}

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
    // Like OpenFd: gzip through ISA-L, anything else (a zip: with seeking)
    // through libarchive's own reader.
    const bool gzip = StartsGzip(bytes);
    auto open = [bytes, gzip](archive* a, std::unique_ptr<ArchiveInput>& input) {
      if (!gzip) return archive_read_open_memory(a, bytes.data(), bytes.size());
      input = NewGzipInput(MemoryBlocks(bytes));
      return OpenInput(a, *input);
    };
    std::unique_ptr<ArchiveInput> input;
    REPRISE_ASSIGN_OR_RETURN(ArchivePtr a, NewReader(/*tar_only=*/gzip));
    if (open(a.get(), input) != ARCHIVE_OK)
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
    std::unique_ptr<ArchiveInput> again;
    REPRISE_RETURN_IF_ERROR(
        CheckTarHeaders(reader.special_header_offsets(),
                        [&open, &again](archive* raw) { return open(raw, again); }));
    return manifest;
  });
}

Result<Manifest> ExtractArchive(const fs::path& archive, const fs::path& dest_dir,
                                const ArchiveLimits& limits, const ExtractOptions& options,
                                const ExtractProgress& on_progress) {
  return CatchAll("extracting " + archive.string(),
                  [&] { return ExtractImpl(archive, dest_dir, limits, options, on_progress); });
}

Result<Manifest> ExtractArchiveStream(ArchiveSource& source, const fs::path& dest_dir,
                                      const ArchiveLimits& limits, const ExtractOptions& options,
                                      const ExtractProgress& on_progress) {
  return CatchAll("extracting " + dest_dir.string(), [&] {
    return ExtractStreamImpl(source, dest_dir, limits, options, on_progress);
  });
}

Status CreateTarGz(const fs::path& source_dir, const fs::path& out) {
  return CatchAll("archiving " + source_dir.string(),
                  [&] { return CreateTarGzImpl(source_dir, out); });
}

}  // namespace reprise
