// WriteInPlace: a change on a target that only the ctime (and an inotify
// watch) can tell: one byte written in place, the modification time put
// back. Shared by the release-watch and incremental-release tests.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace reprise::testing {

inline void WriteInPlace(const std::filesystem::path& p) {
  struct stat before;
  REQUIRE(::lstat(p.c_str(), &before) == 0);
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, "X", 1, 0) == 1);
  timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::futimens(fd, times) == 0);
  ::close(fd);
}

}  // namespace reprise::testing
