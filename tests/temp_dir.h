// TempDir: a fresh directory, removed with everything in it on destruction.
// For hermetic tests. Not thread-safe; one per test.
//
// It lies under $REPRISE_TEST_TMPDIR when set, else under /dev/shm when that
// is a writable directory, else under $TMPDIR. Tests write SQLite files and
// deploy trees that the code under test fsyncs; on a memory file system those
// syncs cost nothing, and the tests wait for behaviour instead of for disks.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace reprise {

// Where TempDirs are made (see above).
inline std::filesystem::path TestTempRoot() {
  if (const char* dir = std::getenv("REPRISE_TEST_TMPDIR"); dir != nullptr && *dir != '\0')
    return dir;
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK | X_OK) == 0)
    return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (TestTempRoot() / "reprise-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    // Tests may leave read-only directories behind; make them writable first.
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec))
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
    }
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace reprise

#include <fstream>
#include <sstream>

namespace reprise {
// The whole file, or "" when it cannot be read.
inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
// Writes `text` to `p`, replacing it.
inline void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}
}  // namespace reprise
