// ReleaseWatch on real directories: an armed release counts as unchanged
// until anything below it changes, through any path (a hard link in another
// tree included); a tree that changed before it was armed is never armed.
#include "agents/agent/release_watch.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

#include "agents/deployer/archive.h"
#include "tests/agents/agent/write_in_place.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using agent_runner::ReleaseWatch;
using testing::WaitUntil;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Two release trees sharing the inode of a/shared.txt, as an incremental
// deploy leaves them; `one` armed with its stamp.
struct Armed {
  TempDir tmp;
  fs::path one = tmp.path() / "releases/one";
  fs::path two = tmp.path() / "releases/two";
  std::string stamp;
  ReleaseWatch watch;
  Armed() {
    Write(one / "a/shared.txt", "shared\n");
    Write(one / "a/own.txt", "own\n");
    Write(one / "b/deep/file.txt", "deep\n");
    fs::create_directories(two / "a");
    fs::create_hard_link(one / "a/shared.txt", two / "a/shared.txt");
    stamp = *TreeStamp(one);
    watch.ArmLater(one, [s = stamp] { return s; });
    REQUIRE(WaitUntil([&] { return watch.UnchangedSince(one, stamp); }));
  }
};

void ChangeIsSeen(const std::function<void(Armed&)>& change) {
  Armed a;
  change(a);
  // The kernel queued the event within the change's system call: no wait.
  CHECK_FALSE(a.watch.UnchangedSince(a.one, a.stamp));
  // And the stamp agrees that the tree is not the verified one.
  CHECK(*TreeStamp(a.one) != a.stamp);
}

TEST_CASE("an armed release is unchanged until something below it changes") {
  Armed a;
  CHECK(a.watch.UnchangedSince(a.one, a.stamp));
  CHECK_FALSE(a.watch.UnchangedSince(a.one, "another stamp"));
  CHECK_FALSE(a.watch.UnchangedSince(a.two, a.stamp));  // never armed
  // Reading changes nothing.
  std::ifstream in(a.one / "b/deep/file.txt");
  std::string line;
  std::getline(in, line);
  CHECK(a.watch.UnchangedSince(a.one, a.stamp));
}

TEST_CASE("a write in place, with the modification time put back, is seen") {
  ChangeIsSeen([](Armed& a) { testing::WriteInPlace(a.one / "b/deep/file.txt"); });
}

TEST_CASE("a write through a hard link in another release is seen") {
  ChangeIsSeen([](Armed& a) { Write(a.two / "a/shared.txt", "changed through two\n"); });
}

TEST_CASE("a hard link made outside the releases, and a write through it, are seen") {
  Armed a;
  const fs::path outside = a.tmp.path() / "elsewhere.txt";
  fs::create_hard_link(a.one / "a/own.txt", outside);
  CHECK_FALSE(a.watch.UnchangedSince(a.one, a.stamp));  // the link count moved
  // Armed again with the link in place: the write alone is seen too.
  const std::string linked = *TreeStamp(a.one);
  a.watch.ArmLater(a.one, [linked] { return linked; });
  REQUIRE(WaitUntil([&] { return a.watch.UnchangedSince(a.one, linked); }));
  Write(outside, "changed from outside\n");
  CHECK_FALSE(a.watch.UnchangedSince(a.one, linked));
}

TEST_CASE("chmod, a new file, a removed file and a rename are seen") {
  ChangeIsSeen([](Armed& a) {
    fs::permissions(a.two / "a/shared.txt", fs::perms(0600), fs::perm_options::replace);
  });
  ChangeIsSeen([](Armed& a) { Write(a.one / "b/deep/new.txt", "new\n"); });
  ChangeIsSeen([](Armed& a) { fs::remove(a.one / "a/own.txt"); });
  ChangeIsSeen([](Armed& a) { fs::rename(a.one / "a/own.txt", a.one / "b/own.txt"); });
}

TEST_CASE("a copy put at an armed release's path, its parent renamed away, is not armed") {
  Armed a;
  const fs::path moved = a.tmp.path() / "moved";
  fs::rename(a.tmp.path() / "releases", moved);  // no event below the armed directory
  fs::create_directories(a.one.parent_path());
  fs::copy(moved / "one", a.one, fs::copy_options::recursive);
  Write(a.one / "a/own.txt", "edited in the copy\n");
  CHECK_FALSE(a.watch.UnchangedSince(a.one, a.stamp));
}

TEST_CASE("a release that changed before it was armed is not armed") {
  TempDir tmp;
  const fs::path one = tmp.path() / "one";
  const fs::path two = tmp.path() / "two";
  Write(one / "f.txt", "one\n");
  Write(two / "f.txt", "two\n");
  const std::string verified = *TreeStamp(one);
  Write(one / "f.txt", "changed while nobody watched\n");
  ReleaseWatch watch;
  watch.ArmLater(one, [verified] { return verified; });
  const std::string two_stamp = *TreeStamp(two);
  watch.ArmLater(two, [two_stamp] { return two_stamp; });
  // Armed in order: once `two` is, `one` was tried.
  REQUIRE(WaitUntil([&] { return watch.UnchangedSince(two, two_stamp); }));
  CHECK_FALSE(watch.UnchangedSince(one, verified));
  CHECK_FALSE(watch.UnchangedSince(one, *TreeStamp(one)));
}

TEST_CASE("a release changed and stamped again is armed again with its new stamp") {
  Armed a;
  Write(a.one / "a/own.txt", "changed\n");
  CHECK_FALSE(a.watch.UnchangedSince(a.one, a.stamp));
  const std::string again = *TreeStamp(a.one);
  a.watch.ArmLater(a.one, [again] { return again; });
  REQUIRE(WaitUntil([&] { return a.watch.UnchangedSince(a.one, again); }));
  CHECK_FALSE(a.watch.UnchangedSince(a.one, a.stamp));
}

}  // namespace
}  // namespace reprise
