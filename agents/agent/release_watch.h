// ReleaseWatch: keeps "nothing below this release changed since it was
// verified" current while the agent runs, so re-deploying a cached release
// does not have to walk its tree (TreeStamp) first.
//
// Arming a release directory puts an inotify watch on every entry below it
// (directories for names created, removed or renamed in them; every file and
// symlink inode itself, so a change made through a hard link anywhere, e.g.
// in another release sharing the inode, is reported too), and only then
// takes its tree stamp: when that equals the stamp recorded at verification,
// the release counts as unchanged until any event arrives for one of its
// watches (or the event queue overflows). Any change before the watches were
// in place shows in the stamp; any change after shows as an event. Events
// are read before each answer, and the kernel queues them within the system
// call that made the change, so nothing made before a question goes
// unanswered. What inotify does not report: writes through a shared
// writable memory map, and changes on another machine through a network
// filesystem; RunnerOptions::watch_releases turns the watch off.
// After a restart nothing is armed: the first re-deploy walks the tree.
//
// Thread-safety: every method may be called from any thread; arming runs on
// the watch's own thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace reprise {
namespace agent_runner {

// Lowers the calling thread's scheduling priority (nice 10): for work that
// follows an operation (arming, stamping), so that it gives way on a busy
// machine to what reports the operation's result.
void BackgroundPriority();

class ReleaseWatch {
 public:
  // The tree stamp recorded for a release at its verification ("" if none).
  using RecordedStamp = std::function<std::string()>;

  ReleaseWatch();  // without inotify (refused, no room), nothing is ever armed
  ~ReleaseWatch();
  ReleaseWatch(const ReleaseWatch&) = delete;
  ReleaseWatch& operator=(const ReleaseWatch&) = delete;

  // True when `dir` was armed with the tree stamp `stamp` and no change
  // below it was reported since.
  bool UnchangedSince(const std::filesystem::path& dir, const std::string& stamp);

  // Arms `dir` on the watch's thread, unless it is armed already with the
  // stamp `recorded` returns. `recorded` is called there, after the stamp.
  void ArmLater(const std::filesystem::path& dir, RecordedStamp recorded);

 private:
  struct Release {
    std::string stamp;  // armed with it; "" when not armed
    bool arming = false;
    bool changed = false;  // an event arrived while arming
    // The directory armed: another one put at its path (a parent renamed
    // away and a copy put in its place) is not watched.
    uint64_t dev = 0;
    uint64_t ino = 0;
  };
  void Loop();
  void Arm(const std::filesystem::path& dir, const RecordedStamp& recorded);
  bool WatchTree(const std::filesystem::path& dir);
  void DrainLocked();
  void ChangedLocked(int wd);

  int fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::deque<std::pair<std::filesystem::path, RecordedStamp>> queue_;
  std::map<std::string, Release> releases_;
  std::map<int, std::set<std::string>> owners_;  // watch -> the release dirs below which it is
  std::thread thread_;
};

}  // namespace agent_runner
}  // namespace reprise
