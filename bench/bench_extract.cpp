// bench_extract: times ExtractArchive or ScanArchive (+ the blob's SHA-256)
// once and prints the seconds; bench/run_extract.sh repeats and compares.
//
//   bench_extract extract ARCHIVE DEST_DIR [--fsync]
//   bench_extract scan ARCHIVE
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "agents/deployer/archive.h"
#include "common/crypto.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_extract extract ARCHIVE DEST [--fsync] | scan ARCHIVE\n");
    return 2;
  }
  const std::string mode = argv[1];
  const auto start = std::chrono::steady_clock::now();
  std::string detail;
  if (mode == "extract" && argc >= 4) {
    reprise::ExtractOptions options;
    options.fsync = argc >= 5 && std::strcmp(argv[4], "--fsync") == 0;
    auto m = reprise::ExtractArchive(argv[2], argv[3], {}, options);
    if (!m.ok()) {
      std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
      return 1;
    }
    detail = std::to_string(m->file_count) + " files";
  } else if (mode == "scan") {
    auto m = reprise::ScanArchive(argv[2]);
    auto sha = reprise::Sha256File(argv[2]);
    if (!m.ok() || !sha.ok()) {
      std::fprintf(stderr, "%s %s\n", m.status().ToString().c_str(),
                   sha.status().ToString().c_str());
      return 1;
    }
    detail = std::to_string(m->file_count) + " files";
  } else {
    return 2;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.3f %s\n", seconds, detail.c_str());
  return 0;
}
