#include "common/fs.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "tests/temp_dir.h"

namespace reprise {

TEST_CASE("safe relative paths") {
  CHECK(IsSafeRelativePath("a/b/c.txt"));
  CHECK(IsSafeRelativePath("a..b/c"));
  CHECK_FALSE(IsSafeRelativePath(""));
  CHECK_FALSE(IsSafeRelativePath("/etc/passwd"));
  CHECK_FALSE(IsSafeRelativePath("../x"));
  CHECK_FALSE(IsSafeRelativePath("a/../../x"));
  CHECK_FALSE(IsSafeRelativePath("a/.."));
  CHECK_FALSE(IsSafeRelativePath("a\\b"));
  CHECK_FALSE(IsSafeRelativePath("C:evil"));
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
