// BinDir: where the project's binaries are for tests that run them.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace reprise::testing {

// $REPRISE_BIN_DIR (ctest sets it), else ./bin.
inline std::filesystem::path BinDir() {
  const char* d = std::getenv("REPRISE_BIN_DIR");
  return d ? std::filesystem::path(d) : std::filesystem::path("bin");
}

}  // namespace reprise::testing
