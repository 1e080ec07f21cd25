// TreeSnapshot: what a deploy must reproduce exactly, entry by entry: the
// type and mode of every entry below a directory, a file's SHA-256, a
// symlink's target. Two trees are the same deploy when their snapshots are
// equal.
#pragma once

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>

#include "common/crypto.h"

namespace reprise::testing {

inline std::map<std::string, std::string> TreeSnapshot(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st;
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    std::string desc = std::to_string(st.st_mode);  // type and permission bits
    if (S_ISREG(st.st_mode)) {
      auto sha = Sha256File(it->path());
      REQUIRE(sha.ok());
      desc += " " + *sha;
    }
    if (S_ISLNK(st.st_mode)) desc += " -> " + fs::read_symlink(it->path()).string();
    out[it->path().lexically_relative(dir).generic_string()] = desc;
  }
  return out;
}

}  // namespace reprise::testing
