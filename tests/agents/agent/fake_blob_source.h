// FakeBlobSource: archives built from trees (with modes and symlinks),
// served to an AgentRunner the way a remote agent's channel serves them.
// Not thread-safe; one per test.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "agents/agent/runner.h"
#include "agents/deployer/archive.h"
#include "common/crypto.h"

namespace reprise::testing {

class FakeBlobSource : public BlobSource {
 public:
  explicit FakeBlobSource(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
  }

  // Makes a tar.gz of `files` (mode 0644 unless `modes` says otherwise) and
  // `symlinks` (path -> target); returns its sha256.
  std::string Add(const std::map<std::string, std::string>& files,
                  const std::map<std::string, unsigned>& modes = {},
                  const std::map<std::string, std::string>& symlinks = {}) {
    namespace fs = std::filesystem;
    fs::path tree = dir_ / ("tree" + std::to_string(n_));
    for (const auto& [p, c] : files) {
      fs::create_directories((tree / p).parent_path());
      std::ofstream(tree / p, std::ios::binary) << c;
      auto mode = modes.find(p);
      fs::permissions(tree / p, fs::perms(mode == modes.end() ? 0644 : mode->second));
    }
    for (const auto& [p, target] : symlinks) fs::create_symlink(target, tree / p);
    fs::path out = dir_ / ("a" + std::to_string(n_++) + ".tar.gz");
    REQUIRE(CreateTarGz(tree, out).ok());
    std::string sha = *Sha256File(out);
    archives_[sha] = out;
    return sha;
  }

  Result<Fetched> Fetch(const std::string& sha256, const std::filesystem::path& cache_path,
                        const CancelToken&, const ProgressFn& progress) override {
    namespace fs = std::filesystem;
    ++fetches;
    auto it = archives_.find(sha256);
    if (it == archives_.end()) return NotFound("no blob " + sha256);
    fs::path src = it->second;
    if (corrupt) {
      src = dir_ / "corrupt";
      std::ofstream(src, std::ios::binary) << "not an archive at all";
    }
    fs::copy_file(src, cache_path, fs::copy_options::overwrite_existing);
    uint64_t size = fs::file_size(cache_path);
    if (progress) progress({"transfer", size, size, 0, 0});
    return Fetched{cache_path, false};
  }

  int fetches = 0;       // how many times Fetch was called
  bool corrupt = false;  // Fetch serves bytes that are no archive

 private:
  std::filesystem::path dir_;
  int n_ = 0;
  std::map<std::string, std::filesystem::path> archives_;
};

}  // namespace reprise::testing
