// Releases that share files: each release's stored manifest (what a later
// release may reuse), the choice of the release to reuse from, and keeping
// tree stamps true when Reprise itself changes the link count of a shared
// inode (which moves its ctime in every release holding it). Declared in
// runner_internal.h.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "agents/agent/runner_internal.h"
#include "common/fs.h"

namespace reprise {
namespace agent_runner {

namespace fs = std::filesystem;

namespace {

// In a directory of their own: no release name can make one a metadata file.
fs::path ManifestPath(const Layout& l, const std::string& name) {
  return l.meta() / "manifests" / (name + ".json");
}

// True when the regular file `p`, or one below the directory `p`, has more
// than one link (bounded: a tree of more than `budget` entries counts as
// sharing, which only costs a re-stamp).
bool SharesInodes(const fs::path& p, int budget = 200'000) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return false;
  if (S_ISREG(st.st_mode)) return st.st_nlink > 1;
  if (!S_ISDIR(st.st_mode)) return false;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (--budget <= 0) return true;
    struct stat entry;
    if (::lstat(it->path().c_str(), &entry) == 0 && S_ISREG(entry.st_mode) && entry.st_nlink > 1)
      return true;
  }
  return false;
}

}  // namespace

Status WriteReleaseManifest(const Layout& l, const std::string& name, const Manifest& manifest,
                            Durable durable) {
  std::error_code ec;
  fs::create_directories(ManifestPath(l, name).parent_path(), ec);
  if (ec) return IoError("cannot create " + ManifestPath(l, name).parent_path().string());
  return ReplaceFile(ManifestPath(l, name), ManifestToJson(manifest), durable);
}

Result<Manifest> ReadReleaseManifest(const Layout& l, const std::string& name,
                                     const std::string& manifest_hash) {
  REPRISE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(ManifestPath(l, name)));
  REPRISE_ASSIGN_OR_RETURN(Manifest manifest, ManifestFromJson(text));
  if (manifest.manifest_hash != manifest_hash)
    return FailedPrecondition("the stored manifest of release " + name +
                              " is not the one its metadata names");
  return manifest;
}

void RemoveReleaseManifest(const Layout& l, const std::string& name) {
  std::error_code ec;
  fs::remove(ManifestPath(l, name), ec);
}

std::vector<std::string> IntactReleases(const Layout& l, const std::string& except,
                                        ReleaseWatch* watch) {
  std::vector<std::string> intact;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(l.releases(), ec)) {
    const std::string name = e.path().filename().string();
    if (name == except || !fs::is_directory(e.symlink_status(ec))) continue;
    auto meta = ReadMeta(l, name);
    if (!meta.ok() || meta->tree_stamp.empty()) continue;
    if (watch && watch->UnchangedSince(e.path(), meta->tree_stamp)) {
      intact.push_back(name);  // the watch says so without a walk
      continue;
    }
    auto stamp = TreeStamp(e.path());
    if (stamp.ok() && *stamp == meta->tree_stamp) intact.push_back(name);
  }
  std::sort(intact.begin(), intact.end());
  return intact;
}

void Restamp(const Layout& l, const std::vector<std::string>& names) {
  std::error_code ec;
  for (const std::string& name : names) {
    const fs::path dir = l.releases() / name;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) continue;
    auto meta = ReadMeta(l, name);
    auto stamp = TreeStamp(dir);
    if (!meta.ok() || !stamp.ok()) continue;
    meta->tree_stamp = *stamp;
    (void)WriteMeta(l, *meta);
  }
}

void SettleStamps(const Layout& l, const std::vector<std::string>& names, const StampBound& bound) {
  if (ClockSetBackSince(bound)) return;  // ctimes tell nothing now
  std::error_code ec;
  for (const std::string& name : names) {
    const fs::path dir = l.releases() / name;
    if (!fs::is_directory(fs::symlink_status(dir, ec))) continue;
    auto meta = ReadMeta(l, name);
    auto stamp = TreeStampUnchangedSince(dir, bound.ctime);
    if (!meta.ok() || !stamp.ok()) continue;  // changed since: it keeps a stamp that fails
    meta->tree_stamp = *stamp;
    // One sync, not two: a crash may lose the new stamp (the old one fails:
    // "extract again"), never leave a torn file.
    (void)WriteMeta(l, *meta, Durable::kContent);
  }
}

std::shared_ptr<const ReuseSource> ReuseSourceCache::Get(const fs::path& dir,
                                                         const std::string& manifest_hash) const {
  std::lock_guard<std::mutex> g(mu_);
  for (const Entry& e : entries_) {
    if (e.source->dir == dir && e.manifest_hash == manifest_hash) return e.source;
  }
  return nullptr;
}

void ReuseSourceCache::Put(const std::string& manifest_hash,
                           std::shared_ptr<const ReuseSource> source) {
  std::lock_guard<std::mutex> g(mu_);
  std::erase_if(entries_, [&](const Entry& e) { return e.source->dir == source->dir; });
  entries_.push_back({manifest_hash, std::move(source)});
  while (entries_.size() > kEntries) entries_.pop_front();
}

std::optional<ReuseRelease> PickReuseSource(const Layout& l, const std::vector<std::string>& intact,
                                            const std::string& except, ReuseSourceCache& cache) {
  // The live release first (the build before this one, most likely), then
  // the previous one, then the newest of the history.
  DeployState st = ReadState(l);
  std::vector<std::string> order{st.current, st.previous};
  order.insert(order.end(), st.history.rbegin(), st.history.rend());
  std::set<std::string> tried;
  for (const std::string& name : order) {
    if (name.empty() || name == except || !tried.insert(name).second) continue;
    if (std::find(intact.begin(), intact.end(), name) == intact.end()) continue;
    auto meta = ReadMeta(l, name);
    if (!meta.ok()) continue;
    const fs::path dir = l.releases() / name;
    if (auto cached = cache.Get(dir, meta->manifest_hash)) return ReuseRelease{name, cached};
    auto manifest = ReadReleaseManifest(l, name, meta->manifest_hash);
    if (!manifest.ok()) continue;
    auto source = std::make_shared<const ReuseSource>(ReuseSource::FromManifest(dir, *manifest));
    cache.Put(meta->manifest_hash, source);
    return ReuseRelease{name, std::move(source)};
  }
  return std::nullopt;
}

std::vector<std::string> StampsAffectedBy(const Layout& l, const fs::path& p) {
  const fs::path releases = l.releases().lexically_normal();
  const fs::path target = p.lexically_normal();
  if (!IsWithin(target, releases) || target == releases) return {};
  const std::string release = target.lexically_relative(releases).begin()->string();
  if (!SharesInodes(target)) return {};
  // The release written into changes (its stamp must say so); the others
  // only see a link count move.
  return IntactReleases(l, release);
}

void CleanTmpKeepingStamps(const Layout& l) {
  std::error_code ec;
  const bool leftovers = fs::is_directory(l.tmp(), ec) && !fs::is_empty(l.tmp(), ec) && !ec;
  // Leftovers may hold links to released files (an interrupted extraction,
  // a release being removed): removing them moves those inodes' ctime.
  std::vector<std::string> intact;
  if (leftovers) intact = IntactReleases(l);
  CleanTmp(l);
  if (leftovers) Restamp(l, intact);
}

}  // namespace agent_runner
}  // namespace reprise
