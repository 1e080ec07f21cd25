#include "common/fs.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace reprise {

TEST_CASE("safe relative paths") {
  for (const std::string& ok : std::vector<std::string>{"a/b/c.txt", "a..b/c"})
    CHECK_MESSAGE(IsSafeRelativePath(ok), ok);
  for (const std::string& bad :
       std::vector<std::string>{"", "/etc/passwd", "../x", "a/../../x", "a/..", "a\\b", "C:evil"})
    CHECK_MESSAGE(!IsSafeRelativePath(bad), bad);
}

TEST_CASE("atomic write replaces content and sets mode") {
  TempDir dir;
  auto p = dir.path() / "f.txt";
  REQUIRE(WriteFileAtomic(p, "one", 0600).ok());
  REQUIRE(WriteFileAtomic(p, "two", 0600).ok());
  auto r = ReadFileToString(p);
  REQUIRE(r.ok());
  CHECK(*r == "two");
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()),
                      std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("reading a missing file is an io error naming it") {
  auto r = ReadFileToString("/nonexistent/reprise-test");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kIo);
  CHECK(r.status().message().find("/nonexistent/reprise-test") != std::string::npos);
}

}  // namespace reprise
