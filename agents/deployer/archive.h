// Secure archive reading and extraction (tar, tar.gz, tar.bz2, tar.xz, zip).
//
// This is the only place that talks to libarchive. Every entry of an archive is
// validated before anything is written: paths are normalised and must stay
// inside the destination, links must resolve inside it, only regular files,
// directories, symlinks and hardlinks are accepted, and the limits in
// ArchiveLimits are enforced on the actual (not the declared) byte counts. A
// single refused entry refuses the whole archive, and the Status message names
// that entry. See docs/artifacts.md for the full list of rules.
//
// All functions are stateless and thread-safe: concurrent calls on different
// archives / destinations are fine (no chdir, no umask, no process-wide state).
// ExtractArchive writes on a helper thread of its own while it reads.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace reprise {

// Limits on what an archive holds. Exceeding any of them refuses the archive
// with Code::kUnsafe (422), naming the entry where the limit was passed and
// the limit ("limit max_entries"). The size of the archive itself is the
// caller's limit (an upload's body limit, 413).
struct ArchiveLimits {
  uint64_t max_entries = 200'000;
  uint64_t max_total_bytes = 8ULL << 30;  // uncompressed, all regular files
  uint64_t max_entry_bytes = 8ULL << 30;  // uncompressed, one file
  // Uncompressed bytes / archive file size. Only enforced once the uncompressed
  // total exceeds ratio_check_min_bytes, so small, very compressible archives
  // (a config file of spaces) are not refused.
  double max_compression_ratio = 200.0;
  uint64_t ratio_check_min_bytes = 64ULL << 20;
};

enum class EntryType { kFile, kDirectory, kSymlink, kHardlink };

std::string_view EntryTypeName(EntryType type);  // "file", "dir", "symlink", "hardlink"

struct ManifestEntry {
  std::string path;  // normalised, relative, no trailing slash: "bin/tool"
  EntryType type = EntryType::kFile;
  // Permission bits as written (0..0777). Directories always carry u+rwx and
  // files u+r so the agent can validate and clean up what it deployed.
  unsigned mode = 0;
  uint64_t size = 0;        // files and hardlinks (the linked file's size)
  std::string sha256;       // files and hardlinks (the linked file's content)
  std::string link_target;  // symlink target as stored; hardlink: the linked entry's path

  friend bool operator==(const ManifestEntry&, const ManifestEntry&) = default;
};

// What an archive contains, sorted by path. Directories that the archive only
// implies (a/b with no a/ entry) are listed with mode 0755, so a manifest
// describes the extracted tree exactly.
struct Manifest {
  std::vector<ManifestEntry> entries;
  // SHA-256 of the canonical serialisation (see ComputeManifestHash).
  std::string manifest_hash;
  uint64_t file_count = 0;   // regular files and hardlinks
  uint64_t total_bytes = 0;  // sum of regular file sizes (hardlinks not counted twice)

  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// Canonical form: "reprise-manifest-v1\n" then, per entry in path order,
// type NUL mode(octal) NUL size NUL sha256 NUL path NUL link_target NUL "\n".
// Paths and targets cannot contain NUL, so the encoding is unambiguous.
std::string ComputeManifestHash(const std::vector<ManifestEntry>& sorted_entries);

std::string ManifestToJson(const Manifest& manifest);
// Parses and checks the JSON form: paths must be safe, types known, hashes
// well-formed, and the stored manifest_hash (if any) must match the entries.
Result<Manifest> ManifestFromJson(std::string_view json);

// Reads `archive` (format and compression detected from the content; raw or
// unknown formats are refused) and validates every entry without writing
// anything. Errors: kUnsafe (a refused entry, a zip bomb, a limit),
// kInvalidArgument (corrupt or unsupported archive), kIo / kNotFound (cannot read).
[[nodiscard]] Result<Manifest> ScanArchive(const std::filesystem::path& archive,
                                           const ArchiveLimits& limits = {});

// The same, for an archive held in memory (the fuzzer uses it).
[[nodiscard]] Result<Manifest> ScanArchiveBuffer(std::string_view archive_bytes,
                                                 const ArchiveLimits& limits = {});

// Scans an archive while its bytes arrive (an upload), with exactly the rules
// and the result of ScanArchive, so that receiving and scanning overlap
// instead of adding up. Feed() hands the bytes to a scanner thread of its own
// through a bounded buffer (at most 3 MiB; Feed blocks while the scanner is
// behind), so memory stays flat. A gzip stream is inflated on a further
// thread, at most 4 MiB ahead of the scanner thread (which parses the tar and
// hashes the entries). Only a tar (plain or compressed) can be read
// as a stream: a zip keeps its directory, with the entries' modes, at its end.
// For a zip or anything else that is not a tar, the scanner stops at once and
// Finish() runs ScanArchive on the complete file instead. Once the scan has
// ended (the end of the archive, or a refused entry) further bytes are dropped.
//
// While streaming, the compression ratio is checked against the bytes received
// so far, which is stricter than ScanArchive's check against the whole file;
// when it refuses, the scanner stops and Finish() runs ScanArchive on the
// complete file, so the answer is ScanArchive's and a declared length the
// client may lie about plays no part.
//
// Thread-safety: Feed() and Finish() are called from one thread.
class ArchiveStreamScanner {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ArchiveStreamScanner>> Start(
      const ArchiveLimits& limits);
  // Abandons an unfinished scan and waits for its thread.
  ~ArchiveStreamScanner();
  ArchiveStreamScanner(const ArchiveStreamScanner&) = delete;
  ArchiveStreamScanner& operator=(const ArchiveStreamScanner&) = delete;

  // The next bytes of the archive.
  void Feed(const char* data, size_t size);
  // No more bytes: the scan goes on with what it has without waiting for
  // Finish(), so the caller can do something else meanwhile (make the file
  // durable). Idempotent; Finish() calls it.
  void EndInput();
  // No more bytes: waits for the scan and returns its result. `complete_file`
  // holds every byte fed, complete (flushed); it is read only to confirm that
  // it reads as a tar, or scanned in full when the stream was not a tar or
  // was refused for its compression ratio.
  [[nodiscard]] Result<Manifest> Finish(const std::filesystem::path& complete_file);

 private:
  struct State;
  explicit ArchiveStreamScanner(std::unique_ptr<State> state);
  void Run();
  void Push();

  std::unique_ptr<State> state_;
  std::thread thread_;
};

// A tree already on disk whose files an extraction may reuse instead of
// writing them (an incremental release directory): an archive entry that is
// a regular file with the same path, mode, size and SHA-256 as one listed
// here becomes a hard link to that file. The entry's data is still read and
// hashed, and the link is made only when the hash matches, so the result has
// exactly the manifest and bytes of a fresh extraction; only the writes are
// saved. A reused file keeps the modification time it has in `dir` (one inode,
// one mtime). The caller vouches that the files under `dir` still have the
// listed content (the agent checks the release's tree stamp first); the link
// is checked to be a regular file of the listed mode and size, else the entry
// is written as usual.
struct ReuseSource {
  struct File {
    unsigned mode = 0;
    uint64_t size = 0;
    std::string sha256;
  };
  std::filesystem::path dir;
  std::unordered_map<std::string, File> files;  // by manifest path

  // The regular files (and hardlinks) of `manifest`, which describes `dir`.
  static ReuseSource FromManifest(std::filesystem::path dir, const Manifest& manifest);
};

// What an extraction did beyond its manifest.
struct ExtractStats {
  uint64_t linked_files = 0;  // entries hard-linked from ReuseSource::dir
  uint64_t linked_bytes = 0;
};

struct ExtractOptions {
  // fsync every file, then every directory (deepest first), then dest's parent
  // when dest was created. Deploys need it; tests and benchmarks do not.
  bool fsync = false;
  // Set regular files' mtime from the archive.
  bool keep_mtime = true;
  // Files to take from a tree on disk instead of writing them (not owned).
  const ReuseSource* reuse = nullptr;
  // Filled in when set (not owned).
  ExtractStats* stats = nullptr;
};

// Called after every entry is written and every 8 MiB of data, with the
// entries and bytes written so far. It runs on the extraction's writer thread
// (not the caller's), one call at a time. Returning false cancels the
// extraction: kCancelled, and what was written is removed.
using ExtractProgress = std::function<bool(uint64_t entries, uint64_t bytes)>;

// Extracts `archive` into `dest_dir`, which must be an empty directory or not
// exist yet (then it is created; its parent must exist). Entries are
// validated by the same code as ScanArchive before they are written; on any
// error everything written is removed again (dest is left empty, or removed if
// this call created it). Nothing outside dest_dir is ever written: every path
// is opened relative to a directory fd with O_NOFOLLOW / O_EXCL, and symlinks
// are created last, after the whole archive was validated.
// Returns the manifest of what was written (equal to ScanArchive's).
// Extra errors: kFailedPrecondition when dest_dir is not empty.
[[nodiscard]] Result<Manifest> ExtractArchive(const std::filesystem::path& archive,
                                              const std::filesystem::path& dest_dir,
                                              const ArchiveLimits& limits = {},
                                              const ExtractOptions& options = {},
                                              const ExtractProgress& on_progress = nullptr);

// An archive whose bytes are still arriving (a download), for
// ExtractArchiveStream. Called on the extracting thread only.
class ArchiveSource {
 public:
  virtual ~ArchiveSource() = default;
  // The next bytes, valid until the next call; empty at the end. Blocks
  // until bytes arrive. An error (a transfer cut, a wrong sha256) ends the
  // extraction with that error.
  virtual Result<std::string_view> Read() = 0;
  // The archive's size as far as known (the announced size), for the
  // compression ratio.
  virtual uint64_t Size() const = 0;
  // Waits until every byte has arrived and returns the complete file, for
  // the checks that read the archive again and for archives that cannot be
  // read as a stream.
  virtual Result<std::filesystem::path> Complete() = 0;
};

// ExtractArchive while the archive arrives: a gzip archive (a tar.gz) is
// inflated and written as its bytes come, on this thread and the writer's;
// anything else is extracted from source.Complete() as ExtractArchive does.
// Same rules, checks and result as ExtractArchive on the complete file
// (the ratio is checked against source.Size()). The caller must still check
// that the complete archive is the one it wanted (its sha256): the
// extraction may end before the last bytes are read.
[[nodiscard]] Result<Manifest> ExtractArchiveStream(ArchiveSource& source,
                                                    const std::filesystem::path& dest_dir,
                                                    const ArchiveLimits& limits = {},
                                                    const ExtractOptions& options = {},
                                                    const ExtractProgress& on_progress = nullptr);

struct PathProblem {
  std::string path;
  std::string detail;  // "content differs", "mode 0644, expected 0755", ...
  friend bool operator==(const PathProblem&, const PathProblem&) = default;
};

struct ValidationReport {
  std::vector<std::string> missing;  // in the manifest, not on disk
  std::vector<PathProblem> changed;  // type, mode, size, content or link target differ
  std::vector<std::string> extra;    // on disk, not in the manifest
  uint64_t files_checked = 0;
  bool ok() const { return missing.empty() && changed.empty() && extra.empty(); }
};

// Re-hashes every file under `dir` and compares the tree with `manifest`.
// Symlinks on disk are never followed. Errors only when `dir` itself cannot
// be read; per-path problems go into the report.
[[nodiscard]] Result<ValidationReport> ValidateTree(const std::filesystem::path& dir,
                                                    const Manifest& manifest);

// A cheap fingerprint of everything below `dir` (not `dir` itself): the
// path, type, mode, size, mtime, ctime and inode number of every entry, one
// lstat each, no content read. Writing, truncating, chmod-ing, adding,
// removing or replacing anything below `dir` changes it (ctime cannot be set
// back by a user); reading does not. Taken right after an extraction was
// verified, it tells later whether the tree is still exactly that one.
[[nodiscard]] Result<std::string> TreeStamp(const std::filesystem::path& dir);

// TreeStamp, unless `dir` or an entry below it changed after `bound` (its
// ctime is later; the filesystem's clock): then kFailedPrecondition. Every
// change moves the ctime of the inode changed (a name added or removed: of
// its directory) to the filesystem's current time, so with `bound` a
// filesystem time taken after the tree was last changed on purpose, this
// tells whether anyone changed it since, however much later it is called.
[[nodiscard]] Result<std::string> TreeStampUnchangedSince(const std::filesystem::path& dir,
                                                          const timespec& bound);

// Writes the tree under `source_dir` as a gzip-compressed pax tar to `out`
// (entries in path order, relative paths, no owner names): the demo and the
// benchmarks build artifacts with it. Symlinks are stored as symlinks.
[[nodiscard]] Status CreateTarGz(const std::filesystem::path& source_dir,
                                 const std::filesystem::path& out);

}  // namespace reprise
