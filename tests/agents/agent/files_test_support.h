// Shared by the tests of updates by changed files (file_fetch_test.cpp,
// files_get_test.cpp): a hub that keeps file indexes, and large contents.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "server/artifacts/file_index.h"
#include "tests/server/hub/hub_test_support.h"

namespace reprise::testing {

// For HubFixture's options hook: the hub keeps file indexes in `files`
// (opened on the hub's blob store).
inline void KeepFileIndexes(AgentHubOptions& o, std::unique_ptr<FileIndex>& files) {
  auto opened = FileIndex::Open(*o.blobs);
  REQUIRE(opened.ok());
  files = std::move(opened).value();
  o.files = files.get();
}

// 1 MiB, different for each `i`.
inline std::string LargeContent(int i) {
  std::string content(1 << 20, static_cast<char>('a' + i));
  content.replace(0, 16, "large file " + std::to_string(i) + "    ");
  return content;
}

}  // namespace reprise::testing
