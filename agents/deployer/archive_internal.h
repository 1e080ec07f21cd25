// Internals of the archive code, shared by the files of agents/deployer/
// that implement archive.h: archive_reader.cpp (libarchive, the
// read-validate loop), tree_writer.cpp (writing an extraction),
// archive.cpp (the entry points) and archive_stream.cpp (the streaming scan).
// Not for use outside agents/deployer/; it includes libarchive's headers.
//
// Thread-safety: the functions hold no state. A TreeWriter, WritePipeline or
// ArchiveReader belongs to one extraction or scan; WritePipeline's methods are
// called from the reading thread while its own thread applies the writes.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <time.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agents/deployer/archive.h"
#include "agents/deployer/archive_input.h"
#include "agents/deployer/entry_rules.h"
#include "common/crypto.h"
#include "common/status.h"

namespace reprise {
namespace archive_internal {

constexpr size_t kReadBlockBytes = 1 << 20;
constexpr size_t kZeroFillBytes = 64 << 10;
constexpr size_t kMaxCachedDirFds = 256;
constexpr uint64_t kProgressBytes = 8 << 20;
// A file that may be reused (ReuseSource) is held in memory until its hash is
// known; larger ones are written as usual.
constexpr uint64_t kMaxReuseBufferBytes = 8 << 20;

// strerror(err).
std::string ErrnoText(int err);

// ---------------------------------------------------------------------------
// Writing an extraction (tree_writer.cpp).
//
// TreeWriter: writes validated entries under one destination directory fd.
// Every path is walked component by component with O_NOFOLLOW, so a symlink
// planted inside dest (by anyone) cannot redirect a write; files are created
// with O_EXCL so nothing existing is ever overwritten.
class TreeWriter {
 public:
  TreeWriter(int dest_fd, bool fsync) : dest_fd_(dest_fd), fsync_(fsync) {}
  ~TreeWriter();
  TreeWriter(const TreeWriter&) = delete;
  TreeWriter& operator=(const TreeWriter&) = delete;

  Status MakeDirectory(const std::string& path);

  Status BeginFile(const std::string& path);

  Status Write(const void* data, size_t size);

  Status EndFile(unsigned mode, std::optional<timespec> mtime);

  Status MakeHardlink(const std::string& path, const std::string& existing_file);

  Status MakeSymlink(const std::string& path, const std::string& target);

  // The directory files are reused from (ReuseSource::dir); not owned.
  void SetReuseDir(int dir_fd) { reuse_fd_ = dir_fd; }

  // Hard-links `path` to the file of the same path under the reuse directory.
  // False (nothing left behind) when that is not possible or the link is not
  // a regular file of `mode` and `size`: then the caller writes the file.
  Result<bool> LinkFromReuse(const std::string& path, unsigned mode, uint64_t size);

  // Gives directories their final modes (after their content is written, so
  // a read-only directory does not block its files) and fsyncs them, deepest
  // first, then dest itself.
  Status FinishDirectories(const Manifest& manifest);

  void CloseFile();

  void ClearDirCache();

 private:
  Status MakeDirAt(int parent, const std::string& leaf, const std::string& path);

  // An fd for directory `path` ("" = dest), creating missing directories;
  // owned by the cache.
  Result<int> OpenDir(const std::string& path);

  Result<int> OpenParent(const std::string& path, std::string* leaf);

  // An fd of directory `path` below the reuse directory, walked without
  // following symlinks; the last one is cached (entries come in tree order).
  int OpenReuseDir(const std::string& path);

  int dest_fd_;
  bool fsync_;
  int reuse_fd_ = -1;
  std::string reuse_dir_path_;
  int reuse_dir_fd_ = -1;
  int file_fd_ = -1;
  std::string file_path_;
  std::unordered_map<std::string, int> dir_fds_;
};

// Removes everything below directory fd `dir_fd` without following symlinks.
void RemoveContents(int dir_fd);

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
  Status MakeHardlink(const std::string& path, const std::string& existing);
  Status Write(const void* data, size_t size);
  Status EndFile(unsigned mode, std::optional<timespec> mtime);
  Status EntryDone(uint64_t entries);
  // A whole file whose content equals the reuse directory's file at `path`:
  // linked from there (TreeWriter::LinkFromReuse), else written from `data`.
  Status LinkOrWrite(const std::string& path, unsigned mode, std::optional<timespec> mtime,
                     std::vector<char> data);
  // A whole file held in memory, written.
  Status WriteWhole(const std::string& path, unsigned mode, std::optional<timespec> mtime,
                    std::vector<char> data);
  // After Finish(): the files linked instead of written, and their bytes.
  uint64_t linked_files() const { return linked_files_; }
  uint64_t linked_bytes() const { return linked_bytes_; }

  // Waits until everything queued is written; returns the first failure.
  Status Finish();
  // Abandons what is queued and waits for the thread to stop.
  void Stop() { Join(true); }

 private:
  static constexpr size_t kChunkBytes = 1 << 20;
  static constexpr size_t kMaxBytesInFlight = 16 << 20;
  static constexpr size_t kMaxOpsInFlight = 4096;

  enum class Kind { kDirectory, kBeginFile, kData, kEndFile, kHardlink, kEntryDone, kLinkOrWrite };
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

  Status FlushChunk();

  std::vector<char> TakeSpareChunk();

  Status Push(Op op);

  void Join(bool abandon);

  void Fail(Status st);

  bool Progress();

  Status Apply(Op& op);

  Status ApplyLinkOrWrite(Op& op);

  void Run();

  TreeWriter& writer_;
  const ExtractProgress& on_progress_;
  std::vector<char> chunk_;  // reading thread only
  // Writer thread only:
  uint64_t entries_done_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t linked_files_ = 0;
  uint64_t linked_bytes_ = 0;

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
// Reading (archive_reader.cpp).

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string ArchiveErrorText(archive* a);

// The decompression filters Reprise reads (gzip; bzip2 and xz when built in).
[[nodiscard]] Status AddFilters(archive* a);

// `tar_only`: the streaming scan, which must not read a zip as a stream (a
// zip's directory, with the modes, is at its end).
Result<ArchivePtr> NewReader(bool tar_only = false);

// Reads the special headers (pax, GNU long names) in front of the entries at
// `offsets` again, from the uncompressed stream: libarchive cuts their values
// at a NUL without a word. `open` opens the raw reader on the same bytes.
Status CheckTarHeaders(const std::vector<int64_t>& offsets,
                       const std::function<int(archive*)>& open);

// The zip checks libarchive cannot make (see CheckZipEntryTypes) on an open
// archive file.
Status CheckZipFile(int fd, uint64_t size, const ArchiveLimits& limits);

// The shared read-validate loop: every entry checked before anything is
// written for it.
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
  Result<Manifest> Run(archive* a);

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
  void NoteHeader(archive* a, archive_entry* entry);

  Status HandleEntry(archive* a, archive_entry* entry, uint64_t index);

  Status HandleEntryInner(archive* a, archive_entry* entry, uint64_t index, std::string& path);

  // Checks the byte limits for `total` uncompressed bytes so far.
  Status CheckTotals(uint64_t entry_bytes, uint64_t total);

  Status Consume(Sha256& hasher, const void* data, size_t size, uint64_t& pos);

  Status ZeroFill(Sha256& hasher, uint64_t count, uint64_t& pos);

  Status HandleFile(archive* a, archive_entry* entry, const std::string& path, unsigned mode);

  // True when the file entry at `path` may be reused from options_.reuse: it
  // is then held in reuse_data_ until its hash is known.
  bool ReuseCandidate(const std::string& path, unsigned mode, uint64_t declared) const;

  // Stops holding the current file in memory: it is written as usual.
  Status SpillReuseData(const std::string& path);

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
  // The current file's data while it may still be reused (see ReuseCandidate).
  bool holding_ = false;
  std::string holding_path_;
  std::vector<char> reuse_data_;
};

// An archive file opened for reading; owns the fd.
struct OpenedArchive {
  std::unique_ptr<ArchiveInput> gzip;  // set: the reader reads a gzip archive's inflated tar
  ArchivePtr reader;
  int fd = -1;
  uint64_t size = 0;
  ~OpenedArchive() {
    reader.reset();
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` for reading with NewReader() (tar only for a gzip archive,
// which ISA-L inflates: see archive_input.h); fails for anything but a
// regular file.
Status OpenArchiveFile(const std::filesystem::path& path, OpenedArchive& out);

// Reads the opened file with `reader`, then makes the tar checks libarchive
// cannot make on the same fd.
Result<Manifest> RunOnFile(ArchiveReader& reader, OpenedArchive& opened);

// True when libarchive, reading the file as ScanArchive and ExtractArchive do
// (zip too, with seeking), takes it for a tar: then a streaming scan of the
// same bytes read it with the same format reader.
Result<bool> ReadsAsTar(const std::filesystem::path& path);

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

}  // namespace archive_internal
}  // namespace reprise
