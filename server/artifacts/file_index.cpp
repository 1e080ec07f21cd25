// FileIndex (file_index.h): the per-build file indexes and contents derived
// from the blob store.
#include "server/artifacts/file_index.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/fs.h"
#include "common/log.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// Makes every directory of the extracted tree writable and searchable by
// its owner, so that it can be removed whatever modes the archive gave it.
void RemoveTree(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  fs::remove_all(dir, ec);
}

// The blob hash an index file is named by; empty for any other name (e.g. an
// index being written).
std::string IndexBlob(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.size() != 64 + 5 || name.substr(64) != ".json") return "";
  std::string sha = name.substr(0, 64);
  return BlobStore::IsValidHash(sha) ? sha : "";
}

// The contents listed by the indexes under `index_dir`: those of the indexes
// of `of` into `only_of` (when given), every other one into `others`. An
// index removed meanwhile lists nothing; one that cannot be read is an error.
Status ListedContents(const fs::path& index_dir, const std::set<std::string>& of,
                      std::set<std::string>* only_of, std::set<std::string>& others) {
  std::error_code ec;
  fs::directory_iterator it(index_dir, ec);
  if (ec) return IoError("cannot list " + index_dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string blob = IndexBlob(it->path());
    if (blob.empty()) continue;
    auto text = ReadFileToString(it->path());
    if (!text.ok()) {
      if (!fs::exists(it->path(), ec)) continue;
      return text.status();
    }
    auto manifest = ManifestFromJson(*text);
    if (!manifest.ok())
      return manifest.status().WithContext("reading the file index " + it->path().string());
    std::set<std::string>* into = of.count(blob) ? only_of : &others;
    if (into == nullptr) continue;
    for (const ManifestEntry& e : manifest->entries)
      if (e.type == EntryType::kFile) into->insert(e.sha256);
  }
  if (ec) return IoError("cannot list " + index_dir.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

FileIndex::FileIndex(const BlobStore& blobs, fs::path root, ArchiveLimits limits,
                     std::chrono::seconds collect_grace)
    : blobs_(blobs), root_(std::move(root)), limits_(limits), collect_grace_(collect_grace) {}

Result<std::unique_ptr<FileIndex>> FileIndex::Open(const BlobStore& blobs, ArchiveLimits limits,
                                                   std::chrono::seconds collect_grace) {
  const fs::path root = blobs.root() / "files";
  std::error_code ec;
  for (const char* sub : {"index", "sha256", "tmp"}) {
    fs::create_directories(root / sub, ec);
    if (ec) return IoError("cannot create " + (root / sub).string() + ": " + ec.message());
  }
  // Unfinished derivations: nothing refers to them. Only old ones go:
  // another server sharing ROOT may be deriving right now.
  for (const auto& e : fs::directory_iterator(root / "tmp", ec)) {
    std::error_code age_ec;
    auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), age_ec);
    if (!age_ec && age > std::chrono::hours(1)) RemoveTree(e.path());
  }
  std::unique_ptr<FileIndex> index(new FileIndex(blobs, root, limits, collect_grace));
  index->worker_ = std::thread([raw = index.get()] { raw->Work(); });
  return index;
}

FileIndex::~FileIndex() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

fs::path FileIndex::IndexPath(std::string_view sha256) const {
  return root_ / "index" / (std::string(sha256) + ".json");
}

fs::path FileIndex::FilePath(std::string_view sha256) const {
  return root_ / "sha256" / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

void FileIndex::DeriveLater(std::string_view sha256) {
  if (!BlobStore::IsValidHash(sha256)) return;
  std::error_code ec;
  if (fs::exists(IndexPath(sha256), ec)) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_ || !pending_.insert(std::string(sha256)).second) return;
    queue_.emplace_back(sha256);
  }
  cv_.notify_all();
}

bool FileIndex::Pending(std::string_view sha256) const {
  std::lock_guard<std::mutex> g(mu_);
  return pending_.count(std::string(sha256)) > 0;
}

void FileIndex::Work() {
  // A derivation inflates a whole archive: it yields to requests and
  // deployments (the priority of this thread only).
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  for (;;) {
    std::string next;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || collect_queued_; });
      if (stopping_) return;
      if (queue_.empty()) {
        collect_queued_ = false;
        lk.unlock();
        auto freed = Collect();
        if (!freed.ok()) log::Warn("files.collect-failed", {{"error", freed.status().ToString()}});
        continue;
      }
      next = queue_.front();
      queue_.pop_front();
    }
    // A failure leaves no index: agents fetch the whole archive then.
    (void)Derive(next);
    std::lock_guard<std::mutex> g(mu_);
    pending_.erase(next);
  }
}

Status FileIndex::Derive(std::string_view sha256) {
  if (!BlobStore::IsValidHash(sha256)) return InvalidArgument("invalid blob hash");
  std::error_code ec;
  if (fs::exists(IndexPath(sha256), ec)) return Status::Ok();
  REPRISE_ASSIGN_OR_RETURN(fs::path blob, blobs_.Path(sha256));
  if (!blobs_.Exists(sha256)) return NotFound("artifact blob " + std::string(sha256));
  std::lock_guard<std::mutex> storing(store_mu_);
  if (fs::exists(IndexPath(sha256), ec)) return Status::Ok();
  const fs::path tree = root_ / "tmp" / ("derive-" + RandomHex(8));
  auto manifest = ExtractArchive(blob, tree, limits_, {false, false});
  if (!manifest.ok()) return manifest.status();
  Status stored = StoreContents(tree, *manifest);
  RemoveTree(tree);
  REPRISE_RETURN_IF_ERROR(stored);
  // The contents reach the disk before the index that lists them.
  if (blobs_.options().fsync) {
    int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::syncfs(fd);
      ::close(fd);
    }
  }
  REPRISE_RETURN_IF_ERROR(WriteFileAtomic(IndexPath(sha256), ManifestToJson(*manifest), 0444));
  // Retention removed the blob meanwhile: its index would keep its contents.
  if (!blobs_.Exists(sha256)) {
    Forget(sha256);
    return NotFound("artifact blob " + std::string(sha256) + " was removed while derived");
  }
  return Status::Ok();
}

Status FileIndex::StoreContents(const fs::path& tree, const Manifest& manifest) const {
  std::error_code ec;
  for (const ManifestEntry& e : manifest.entries) {
    if (e.type != EntryType::kFile) continue;
    const fs::path to = FilePath(e.sha256);
    // A content reused: its change time is renewed, so that a collection on
    // another server sharing ROOT spares it until this index appears.
    if (::chmod(to.c_str(), 0444) == 0) continue;
    fs::create_directories(to.parent_path(), ec);
    const fs::path from = tree / e.path;
    // The extraction hashed these bytes: the name is their SHA-256.
    if (::chmod(from.c_str(), 0444) != 0 ||
        (::link(from.c_str(), to.c_str()) != 0 && errno != EEXIST)) {
      return IoError("cannot store " + e.path + " of the file index: " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Result<std::string> FileIndex::Index(std::string_view sha256) const {
  if (!BlobStore::IsValidHash(sha256)) return InvalidArgument("invalid blob hash");
  std::error_code ec;
  const fs::path p = IndexPath(sha256);
  if (!fs::exists(p, ec)) return NotFound("no file index for blob " + std::string(sha256));
  return ReadFileToString(p);
}

Result<fs::path> FileIndex::File(std::string_view file_sha256) const {
  if (!BlobStore::IsValidHash(file_sha256)) return InvalidArgument("invalid file hash");
  const fs::path p = FilePath(file_sha256);
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(p, ec))) {
    return NotFound("no stored file " + std::string(file_sha256));
  }
  return p;
}

void FileIndex::Forget(std::string_view sha256) const {
  if (!BlobStore::IsValidHash(sha256)) return;
  std::error_code ec;
  fs::remove(IndexPath(sha256), ec);
}

void FileIndex::ForgetAndCollectLater(std::string_view sha256) {
  Forget(sha256);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_) return;
    collect_queued_ = true;
  }
  cv_.notify_all();
}

Result<uint64_t> FileIndex::Collect() {
  std::lock_guard<std::mutex> storing(store_mu_);
  std::set<std::string> listed;
  REPRISE_RETURN_IF_ERROR(ListedContents(root_ / "index", {}, nullptr, listed));
  uint64_t freed = 0;
  std::error_code ec;
  const auto now = std::chrono::system_clock::now();
  fs::directory_iterator shards(root_ / "sha256", ec);
  if (ec) return IoError("cannot list " + (root_ / "sha256").string() + ": " + ec.message());
  for (; shards != fs::directory_iterator(); shards.increment(ec)) {
    std::error_code file_ec;
    for (const auto& f : fs::directory_iterator(shards->path(), file_ec)) {
      if (listed.count(f.path().filename().string())) continue;
      struct stat st {};
      if (::lstat(f.path().c_str(), &st) != 0) continue;
      // The change time: set when the content was linked or reused, unlike
      // the modification time, which the archive gave.
      const auto changed = std::chrono::system_clock::from_time_t(st.st_ctim.tv_sec);
      if (now - changed < collect_grace_) continue;
      if (::unlink(f.path().c_str()) == 0) freed += static_cast<uint64_t>(st.st_size);
    }
  }
  if (freed > 0) log::Info("files.collected", {{"bytes", std::to_string(freed)}});
  return freed;
}

Result<uint64_t> FileIndex::BytesOnlyOf(const fs::path& blob_root,
                                        const std::set<std::string>& blobs) {
  const fs::path root = blob_root / "files";
  std::error_code ec;
  if (blobs.empty() || !fs::is_directory(root / "index", ec)) return uint64_t{0};
  std::set<std::string> only, others;
  REPRISE_RETURN_IF_ERROR(ListedContents(root / "index", blobs, &only, others));
  uint64_t bytes = 0;
  for (const std::string& sha : only) {
    if (others.count(sha)) continue;
    struct stat st {};
    const fs::path p = root / "sha256" / sha.substr(0, 2) / sha;
    if (::lstat(p.c_str(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
  }
  return bytes;
}

}  // namespace reprise
