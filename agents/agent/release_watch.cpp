// ReleaseWatch (release_watch.h): inotify watches on every entry of the
// armed release directories, and the background thread that arms them.
#include "agents/agent/release_watch.h"

#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include "agents/deployer/archive.h"

namespace reprise {
namespace agent_runner {

namespace fs = std::filesystem;

namespace {

// The directory at `dir` now ({0, 0} when there is none).
std::pair<uint64_t, uint64_t> Identity(const fs::path& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {0, 0};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

// Everything that changes what TreeStamp sees (names, content, mode,
// owner, times, link count), and a file closed after being opened for
// writing. Reads are not reported.
constexpr uint32_t kChanges = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                              IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF;

// A release with more entries than this is not armed (it is stamped instead).
constexpr int kMaxEntries = 1'000'000;
// Events read per pass; the drain loop is bounded by passes too.
constexpr size_t kBufferBytes = 64 * 1024;
constexpr int kMaxDrainPasses = 10'000;

}  // namespace

void BackgroundPriority() {
  // Per thread on Linux; raising the nice value needs no privilege.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
}

ReleaseWatch::ReleaseWatch() {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  thread_ = std::thread([this] { Loop(); });
}

ReleaseWatch::~ReleaseWatch() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

bool ReleaseWatch::UnchangedSince(const fs::path& dir, const std::string& stamp) {
  std::lock_guard lock(mu_);
  if (fd_ < 0 || stamp.empty()) return false;
  DrainLocked();
  auto it = releases_.find(dir.string());
  if (it == releases_.end() || it->second.arming || it->second.stamp != stamp) return false;
  return Identity(dir) == std::pair{it->second.dev, it->second.ino};
}

void ReleaseWatch::ArmLater(const fs::path& dir, RecordedStamp recorded) {
  if (fd_ < 0) return;
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(dir, std::move(recorded));
  }
  cv_.notify_all();
}

// Arms what is queued; between requests, reads the events now and then so
// the kernel's queue does not overflow while nobody asks.
void ReleaseWatch::Loop() {
  BackgroundPriority();
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (fd_ >= 0) DrainLocked();
      continue;
    }
    auto [dir, recorded] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Arm(dir, recorded);
    lock.lock();
  }
}

void ReleaseWatch::Arm(const fs::path& dir, const RecordedStamp& recorded) {
  const std::string key = dir.string();
  {
    std::lock_guard lock(mu_);
    DrainLocked();
    Release& r = releases_[key];
    if (!r.stamp.empty()) {
      std::string now = recorded();
      if (now == r.stamp) return;  // armed, and nothing changed since
    }
    r = Release{"", true, false, 0, 0};
  }
  // The watches first, then the stamp: a change before a watch shows in the
  // stamp, a change after it as an event.
  const auto identity = Identity(dir);
  const bool watched = identity.second != 0 && WatchTree(dir);
  auto stamp = watched ? TreeStamp(dir) : Result<std::string>(std::string());
  std::string wanted = watched ? recorded() : std::string();
  std::lock_guard lock(mu_);
  DrainLocked();
  Release& r = releases_[key];
  const bool unchanged = watched && stamp.ok() && !stamp->empty() && *stamp == wanted &&
                         !r.changed && Identity(dir) == identity;
  r = Release{unchanged ? wanted : "", false, false, identity.first, identity.second};
}

// A watch on `dir` and every entry below it, each noted as `dir`'s. False
// when one could not be added (no room for more watches, a tree too large,
// an entry that vanished): then `dir` is not armed.
bool ReleaseWatch::WatchTree(const fs::path& dir) {
  const std::string key = dir.string();
  auto add = [&](const fs::path& p) {
    int wd = ::inotify_add_watch(fd_, p.c_str(), kChanges | IN_DONT_FOLLOW | IN_MASK_ADD);
    if (wd < 0) return false;
    std::lock_guard lock(mu_);
    owners_[wd].insert(key);
    return true;
  };
  if (!add(dir)) return false;
  std::error_code ec;
  int entries = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (++entries > kMaxEntries || !add(it->path())) return false;
  }
  return !ec;
}

void ReleaseWatch::DrainLocked() {
  alignas(inotify_event) char buf[kBufferBytes];
  for (int pass = 0; pass < kMaxDrainPasses; ++pass) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN: all read
    }
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      if (e->mask & IN_Q_OVERFLOW) {
        // Events were lost: nothing armed can be trusted any more.
        for (auto& [name, r] : releases_) r = Release{"", r.arming, true, r.dev, r.ino};
        continue;
      }
      ChangedLocked(e->wd);
      if (e->mask & IN_IGNORED) owners_.erase(e->wd);  // the watch is gone
    }
  }
  // Still events after every pass: treat as lost.
  for (auto& [name, r] : releases_) r = Release{"", r.arming, true, r.dev, r.ino};
}

void ReleaseWatch::ChangedLocked(int wd) {
  auto it = owners_.find(wd);
  if (it == owners_.end()) return;
  for (const std::string& dir : it->second) {
    auto r = releases_.find(dir);
    if (r == releases_.end()) continue;
    r->second.stamp.clear();
    r->second.changed = true;
  }
}

}  // namespace agent_runner
}  // namespace reprise
