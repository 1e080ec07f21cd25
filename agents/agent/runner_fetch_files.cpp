// deploy-artifact's update path: a new release directory built from the
// build's file index instead of its archive. The unchanged files are
// hard-linked from an intact release on the target; only the others are
// fetched from the server, by their sha256, and each is checked against it
// as it arrives. The index itself must hash to the build's manifest hash,
// so the tree built is the build's, entry for entry.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>
#include <unordered_map>

#include "agents/agent/content_check.h"
#include "agents/agent/file_io.h"
#include "agents/agent/runner_internal.h"
#include "common/crypto.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace agent_runner;  // this module's own internals

// What an index may weigh (JSON of ~200 bytes an entry, under max_entries).
constexpr uint64_t kMaxIndexBytes = 128ull << 20;
// Hashes per files_get, so that the list fits in one frame's payload.
constexpr size_t kFilesPerRequest = 100'000;

// Reads `stream` to its end into `out`, refusing more than `max` bytes.
Status ReadAll(BlobStream& stream, uint64_t max, std::string& out) {
  for (;;) {
    auto chunk = stream.Read();
    if (!chunk.ok()) {
      Status transfer = stream.Abandon();
      return transfer.ok() ? chunk.status() : transfer;
    }
    if (chunk->empty()) break;
    if (out.size() + chunk->size() > max) {
      (void)stream.Abandon();
      return TooLarge("the file index is larger than " + std::to_string(max) + " bytes");
    }
    out.append(*chunk);
  }
  return stream.Abandon();
}

// The limits an extraction of the archive would enforce.
Status CheckLimits(const Manifest& index, const ArchiveLimits& limits) {
  if (index.entries.size() > limits.max_entries) return Unsafe("the build exceeds max_entries");
  if (index.total_bytes > limits.max_total_bytes) {
    return Unsafe("the build exceeds max_total_bytes");
  }
  for (const ManifestEntry& e : index.entries) {
    if (e.size > limits.max_entry_bytes) return Unsafe(e.path + " exceeds max_entry_bytes");
  }
  return Status::Ok();
}

// Which files come from the intact release and which from the server.
struct FetchPlan {
  std::vector<const ManifestEntry*> linked;  // same path, mode, size and sha256
  std::vector<std::string> fetch;            // distinct sha256s, in index order
  // The entries each fetched sha256 becomes (the first is written, the
  // others copied from it: one inode per entry, as an extraction makes).
  std::unordered_map<std::string, std::vector<const ManifestEntry*>> writes;
  uint64_t fetch_bytes = 0;
  uint64_t linked_bytes = 0;
};

FetchPlan MakePlan(const Manifest& index, const ReuseSource& reuse) {
  FetchPlan plan;
  for (const ManifestEntry& e : index.entries) {
    if (e.type != EntryType::kFile) continue;
    auto it = reuse.files.find(e.path);
    if (it != reuse.files.end() && it->second.mode == e.mode && it->second.size == e.size &&
        it->second.sha256 == e.sha256) {
      plan.linked.push_back(&e);
      plan.linked_bytes += e.size;
      continue;
    }
    auto& writes = plan.writes[e.sha256];
    if (writes.empty()) {
      plan.fetch.push_back(e.sha256);
      plan.fetch_bytes += e.size;
    }
    writes.push_back(&e);
  }
  return plan;
}

// An open directory; every descriptor close-on-exec (steps fork meanwhile).
Fd OpenDir(const fs::path& dir) {
  return Fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// True when the entry's path under `dest` was made a hard link of the same
// path under `source` and is a regular file of the entry's mode and size
// (else nothing is left there). Relative to the two release directories:
// no walk of the whole path per file.
Result<bool> LinkUnchanged(int source, int dest, const ManifestEntry& e) {
  // No AT_SYMLINK_FOLLOW: a symlink planted at the source is linked as a
  // symlink, which the check refuses.
  if (::linkat(source, e.path.c_str(), dest, e.path.c_str(), 0) != 0) return false;
  struct stat st;
  if (::fstatat(dest, e.path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
      (st.st_mode & 07777) == e.mode && static_cast<uint64_t>(st.st_size) == e.size) {
    return true;
  }
  if (::unlinkat(dest, e.path.c_str(), 0) != 0) {
    return IoError(ErrnoText("removing the link " + e.path));
  }
  return false;
}

// What linking the unchanged files did: the entries linked (count and
// bytes), those whose check refused them, or an error.
struct LinkOutcome {
  Status status;
  uint64_t files = 0;
  uint64_t bytes = 0;
  std::vector<const ManifestEntry*> refused;
};

LinkOutcome LinkAllUnchanged(int source, int dest,
                             const std::vector<const ManifestEntry*>& entries) {
  LinkOutcome out;
  for (const ManifestEntry* e : entries) {
    auto linked = LinkUnchanged(source, dest, *e);
    if (!linked.ok()) {
      out.status = linked.status();
      return out;
    }
    if (*linked) {
      ++out.files;
      out.bytes += e->size;
    } else {
      out.refused.push_back(e);
    }
  }
  return out;
}

// Copies the file `from` (written by this operation) to the new path `to`
// with `mode`, both under `dir`.
Status CopyFile(int dir, const std::string& from, const std::string& to, unsigned mode) {
  Fd in(::openat(dir, from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.ok()) return IoError(ErrnoText("reading " + from));
  Fd out(::openat(dir, to.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.ok()) return IoError(ErrnoText("creating " + to));
  REPRISE_RETURN_IF_ERROR(CopyBytes(in.get(), out.get(), to));
  if (::fchmod(out.get(), mode) != 0) return IoError(ErrnoText("chmod " + to));
  return Status::Ok();
}

// Splits the concatenated contents of `shas` into their files under `dest`
// (a directory fd). The bytes are checked by a ContentCheck beside it.
class FileReceiver {
 public:
  FileReceiver(int dest, const FetchPlan& plan, const std::vector<std::string>& shas)
      : dest_(dest), plan_(plan), shas_(shas) {}
  ~FileReceiver() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Take(std::string_view data) {
    for (;;) {
      if (fd_ < 0) {
        if (next_ == shas_.size()) break;
        REPRISE_RETURN_IF_ERROR(Open());
      }
      if (left_ == 0) {
        REPRISE_RETURN_IF_ERROR(Close());
        continue;
      }
      if (data.empty()) break;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left_, data.size()));
      REPRISE_RETURN_IF_ERROR(WriteAll(fd_, data.data(), n, First().path));
      left_ -= n;
      data.remove_prefix(n);
    }
    if (!data.empty()) return Conflict("the server sent more bytes than the files asked for");
    return Status::Ok();
  }

  Status End() {
    REPRISE_RETURN_IF_ERROR(Take({}));
    if (fd_ >= 0 || next_ != shas_.size()) {
      return Conflict("the server sent fewer bytes than the files asked for");
    }
    return Status::Ok();
  }

 private:
  const ManifestEntry& First() const { return *plan_.writes.at(shas_[next_]).front(); }

  Status Open() {
    const ManifestEntry& e = First();
    fd_ =
        ::openat(dest_, e.path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd_ < 0) return IoError(ErrnoText("creating " + e.path));
    left_ = e.size;
    return Status::Ok();
  }

  // The file is complete: given its mode, and copied to the other entries
  // with the same content.
  Status Close() {
    const ManifestEntry& e = First();
    const bool moded = ::fchmod(fd_, e.mode) == 0;
    ::close(fd_);
    fd_ = -1;
    if (!moded) return IoError(ErrnoText("chmod " + e.path));
    const auto& all = plan_.writes.at(shas_[next_]);
    for (size_t i = 1; i < all.size(); ++i) {
      REPRISE_RETURN_IF_ERROR(CopyFile(dest_, e.path, all[i]->path, all[i]->mode));
    }
    ++next_;
    return Status::Ok();
  }

  int dest_;
  const FetchPlan& plan_;
  const std::vector<std::string>& shas_;
  size_t next_ = 0;
  int fd_ = -1;
  uint64_t left_ = 0;
};

// The links and symlinks of the index, once every file is in place
// (symlinks last: nothing is created through one).
Status MakeLinks(const Manifest& index, int dest) {
  for (const ManifestEntry& e : index.entries) {
    if (e.type != EntryType::kHardlink) continue;
    if (::linkat(dest, e.link_target.c_str(), dest, e.path.c_str(), 0) != 0)
      return IoError(ErrnoText("linking " + e.path));
  }
  for (const ManifestEntry& e : index.entries) {
    if (e.type != EntryType::kSymlink) continue;
    if (::symlinkat(e.link_target.c_str(), dest, e.path.c_str()) != 0)
      return IoError(ErrnoText("creating symlink " + e.path));
  }
  return Status::Ok();
}

// The release directory and its subdirectories, as the index lists them.
Status MakeDirectories(const Manifest& index, const fs::path& dest) {
  if (::mkdir(dest.c_str(), 0755) != 0) return IoError(ErrnoText("creating " + dest.string()));
  Fd dir = OpenDir(dest);
  if (dir.get() < 0) return IoError(ErrnoText("opening " + dest.string()));
  for (const ManifestEntry& e : index.entries) {
    if (e.type != EntryType::kDirectory) continue;
    if (::mkdirat(dir.get(), e.path.c_str(), 0700) != 0 ||
        ::fchmodat(dir.get(), e.path.c_str(), e.mode, 0) != 0)
      return IoError(ErrnoText("creating directory " + e.path));
  }
  return Status::Ok();
}

// One files_get: the sha256s asked for, and their bytes as they arrive.
struct FileTransfer {
  std::vector<std::string> shas;
  std::unique_ptr<BlobStream> stream;
};

// Writes the files of `transfer` under `dest` as their bytes arrive, while
// a ContentCheck hashes the same bytes on its own thread: the transfer
// succeeds only when every file has its sha256.
Status ReceiveFiles(FileTransfer& transfer, const FetchPlan& plan, int dest,
                    const CancelToken& cancel) {
  std::vector<ContentCheck::File> expected;
  expected.reserve(transfer.shas.size());
  for (const std::string& sha : transfer.shas) {
    const ManifestEntry& e = *plan.writes.at(sha).front();
    expected.push_back({sha, e.size, e.path});
  }
  ContentCheck check(std::move(expected));
  FileReceiver receiver(dest, plan, transfer.shas);
  BlobStream& stream = *transfer.stream;
  for (;;) {
    auto chunk = stream.ReadOwned();
    Status st = chunk.ok() ? Status::Ok() : chunk.status();
    if (st.ok() && cancel.IsCancelled()) st = Cancelled("cancelled during the transfer");
    if (st.ok() && chunk->empty()) break;
    if (st.ok()) {
      auto bytes = std::make_shared<const std::string>(std::move(*chunk));
      check.Push(bytes);
      st = receiver.Take(*bytes);
    }
    if (!st.ok()) {
      Status transfer_status = stream.Abandon();
      return transfer_status.ok() || st.code() == Code::kCancelled ? st : transfer_status;
    }
  }
  REPRISE_RETURN_IF_ERROR(stream.Abandon());
  REPRISE_RETURN_IF_ERROR(check.Finish());
  return receiver.End();
}

}  // namespace

Result<Manifest> AgentRunner::Impl::FetchIndex(const Layout& l, const DeployArtifactOp& op,
                                               BlobSource& blobs, const ArchiveLimits& limits,
                                               const CancelToken& cancel, bool* served) {
  *served = false;
  if (op.manifest_hash.empty()) return Manifest{};  // nothing to check an index against
  REPRISE_ASSIGN_OR_RETURN(
      std::unique_ptr<BlobStream> stream,
      blobs.StreamFiles(op.sha256, {}, l.tmp() / ("index-" + RandomHex(4)), cancel, nullptr));
  if (!stream) return Manifest{};
  *served = true;
  std::string text;
  REPRISE_RETURN_IF_ERROR(ReadAll(*stream, kMaxIndexBytes, text));
  REPRISE_ASSIGN_OR_RETURN(Manifest index, ManifestFromJson(text));
  if (index.manifest_hash != op.manifest_hash) {
    return Conflict("the server's file index of artifact " + op.artifact +
                    " is not the build's manifest");
  }
  REPRISE_RETURN_IF_ERROR(CheckLimits(index, limits));
  return index;
}

Result<std::optional<Manifest>> AgentRunner::Impl::FetchChangedFiles(
    const Layout& l, const DeployArtifactOp& op, BlobSource& blobs, const fs::path& dest,
    const ArchiveLimits& limits, const ReuseSource& reuse, ExtractStats& stats,
    const RunnerLog& log, const CancelToken& cancel, const ProgressFn& report) {
  bool served = false;
  REPRISE_ASSIGN_OR_RETURN(Manifest index, FetchIndex(l, op, blobs, limits, cancel, &served));
  if (!served) return std::optional<Manifest>();
  FetchPlan plan = MakePlan(index, reuse);
  log(LogLevel::kInfo, "fetching " + std::to_string(plan.fetch.size()) + " changed files (" +
                           std::to_string(plan.fetch_bytes) + " bytes) of artifact " + op.artifact +
                           " by sha256; " + std::to_string(plan.linked.size()) +
                           " unchanged files stay");
  report({"extract", 0, 0, 0, 0});
  std::vector<std::string> fetch = plan.fetch;
  // The first files are asked for before the tree is made: the server reads
  // and sends them while the directories and links are made here (what
  // arrives meanwhile waits in memory, bounded).
  FileTransfer first;
  if (!fetch.empty()) {
    first.shas.assign(fetch.begin(), fetch.begin() + static_cast<std::ptrdiff_t>(
                                                         std::min(fetch.size(), kFilesPerRequest)));
    REPRISE_ASSIGN_OR_RETURN(
        first.stream, blobs.StreamFiles(op.sha256, first.shas, l.tmp() / "files", cancel, report));
    if (!first.stream) return Unavailable("the server stopped serving files");
  }
  REPRISE_RETURN_IF_ERROR(MakeDirectories(index, dest));
  Fd dest_dir = OpenDir(dest);
  Fd source_dir = OpenDir(reuse.dir);
  if (dest_dir.get() < 0) return IoError(ErrnoText("opening " + dest.string()));
  if (source_dir.get() < 0) return IoError(ErrnoText("opening " + reuse.dir.string()));
  // The links are made on a thread of their own while the first request's
  // files are written (different entries of the new tree).
  LinkOutcome links;
  std::thread linker(
      [&] { links = LinkAllUnchanged(source_dir.get(), dest_dir.get(), plan.linked); });
  Status first_status;
  if (first.stream) first_status = ReceiveFiles(first, plan, dest_dir.get(), cancel);
  linker.join();
  REPRISE_RETURN_IF_ERROR(first_status);
  REPRISE_RETURN_IF_ERROR(links.status);
  stats.linked_files += links.files;
  stats.linked_bytes += links.bytes;
  size_t received = first.shas.size();  // contents in place
  // Rare: only when a link was refused is the first request looked up.
  std::set<std::string> in_place;
  if (!links.refused.empty()) in_place.insert(first.shas.begin(), first.shas.end());
  for (const ManifestEntry* e : links.refused) {
    // Not the file the release's manifest lists: fetched like a change, or
    // copied from the same content the first request brought.
    auto& writes = plan.writes[e->sha256];
    if (in_place.count(e->sha256)) {
      const ManifestEntry& written = *writes.front();
      REPRISE_RETURN_IF_ERROR(CopyFile(dest_dir.get(), written.path, e->path, e->mode));
      continue;
    }
    if (writes.empty()) fetch.push_back(e->sha256);
    writes.push_back(e);
  }
  // The rest: past the first request's list, and what failed to link.
  for (size_t from = first.shas.size(); from < fetch.size(); from += kFilesPerRequest) {
    if (cancel.IsCancelled()) return Cancelled("cancelled");
    FileTransfer next;
    next.shas.assign(fetch.begin() + static_cast<std::ptrdiff_t>(from),
                     fetch.begin() + static_cast<std::ptrdiff_t>(
                                         std::min(fetch.size(), from + kFilesPerRequest)));
    REPRISE_ASSIGN_OR_RETURN(
        next.stream, blobs.StreamFiles(op.sha256, next.shas, l.tmp() / "files", cancel, report));
    if (!next.stream) return Unavailable("the server stopped serving files");
    REPRISE_RETURN_IF_ERROR(ReceiveFiles(next, plan, dest_dir.get(), cancel));
    received += next.shas.size();
  }
  // The tree is not scanned again (the index is its manifest): a content
  // the plan needs and no request brought would leave an entry out.
  if (received != fetch.size()) {
    return Internal("the release lacks " + std::to_string(fetch.size() - received) +
                    " contents of the build");
  }
  REPRISE_RETURN_IF_ERROR(MakeLinks(index, dest_dir.get()));
  if (cancel.IsCancelled()) return Cancelled("cancelled");
  return std::optional<Manifest>(std::move(index));
}

Result<Manifest> AgentRunner::Impl::BuildRelease(
    const Layout& l, const DeployArtifactOp& op, BlobSource& blobs, const fs::path& dest,
    const ArchiveLimits& limits, const ReuseRelease* reuse, ExtractStats& stats, bool& by_files,
    const RunnerLog& log, const CancelToken& cancel, const ProgressFn& report) {
  by_files = false;
  if (reuse) {
    auto built =
        FetchChangedFiles(l, op, blobs, dest, limits, *reuse->source, stats, log, cancel, report);
    if (built.ok() && *built) {
      by_files = true;
      return std::move(**built);
    }
    if (!built.ok()) {
      if (built.status().code() == Code::kCancelled) return built.status();
      // The archive stays the truth: whatever failed, it is fetched whole.
      std::error_code ec;
      fs::remove_all(dest, ec);
      stats = {};
      log(LogLevel::kWarning, "fetching only the changed files failed (" +
                                  built.status().message() + "): fetching the whole archive");
    }
  }
  // Durability: one syncfs after the extraction instead of an fsync per
  // file and directory (thousands of journal commits). It also flushes
  // other dirty data of that filesystem, which a busy target pays for.
  return FetchAndExtract(l, op, blobs, dest, limits,
                         {false, true, reuse ? reuse->source.get() : nullptr, &stats}, log, cancel,
                         report);
}

}  // namespace reprise
