// ContentCheck: the files of a concatenation, each against its sha256, on
// the checker's own thread, whatever the chunk boundaries.
#include "agents/agent/content_check.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/crypto.h"

namespace reprise {
namespace {

std::vector<ContentCheck::File> Files(const std::vector<std::string>& contents) {
  std::vector<ContentCheck::File> files;
  for (size_t i = 0; i < contents.size(); ++i) {
    files.push_back({Sha256Hex(contents[i]), contents[i].size(), "f" + std::to_string(i)});
  }
  return files;
}

// Pushes `bytes` in chunks of `chunk` bytes.
void PushAll(ContentCheck& check, const std::string& bytes, size_t chunk) {
  for (size_t at = 0; at < bytes.size(); at += chunk) {
    check.Push(std::make_shared<const std::string>(bytes.substr(at, chunk)));
  }
}

// Ten files of 1 MiB and a few small and empty ones, as several chunks.
std::vector<std::string> Contents() {
  std::vector<std::string> contents;
  for (int i = 0; i < 10; ++i) contents.push_back(std::string(1 << 20, static_cast<char>('a' + i)));
  contents.insert(contents.begin() + 3, "");
  contents.push_back("tail");
  contents.push_back("");
  return contents;
}

std::string Joined(const std::vector<std::string>& contents) {
  std::string all;
  for (const auto& c : contents) all += c;
  return all;
}

TEST_CASE("files that arrive exactly pass, whatever the chunks") {
  for (size_t chunk : {size_t{1000}, size_t{4} << 20, size_t{20} << 20}) {
    ContentCheck check(Files(Contents()));
    PushAll(check, Joined(Contents()), chunk);
    CHECK(check.Finish().ok());
  }
  ContentCheck none({});
  CHECK(none.Finish().ok());
  ContentCheck empty(Files({"", ""}));
  CHECK(empty.Finish().ok());
}

TEST_CASE("a corrupt file in the middle of several chunks fails the whole, naming it") {
  auto contents = Contents();
  std::string all = Joined(contents);
  all[5 * (1 << 20) + 17] ^= 1;  // inside f6 (f3 is empty)
  ContentCheck check(Files(contents));
  PushAll(check, all, 4 << 20);
  Status st = check.Finish();
  CHECK(st.code() == Code::kConflict);
  CHECK(st.message().find("file f6 arrived with sha256 ") == 0);
}

TEST_CASE("too few or too many bytes fail") {
  auto contents = Contents();
  const std::string all = Joined(contents);
  {
    ContentCheck check(Files(contents));
    PushAll(check, all.substr(0, all.size() - 1), 1 << 20);
    CHECK(check.Finish().message() == "the server sent fewer bytes than the files asked for");
  }
  {
    ContentCheck check(Files(contents));
    PushAll(check, all + "x", 1 << 20);
    CHECK(check.Finish().message() == "the server sent more bytes than the files asked for");
  }
}

TEST_CASE("a check dropped before its end stops its thread") {
  ContentCheck check(Files(Contents()));
  PushAll(check, std::string(3 << 20, 'a'), 1 << 20);
}  // the destructor joins without Finish()

}  // namespace
}  // namespace reprise
