// libFuzzer target for the archive layer: any input must be scanned and
// extracted without crashing, and when ScanArchive accepts an archive,
// ExtractArchive must accept it too, return the same manifest and write
// nothing beside its destination. The streaming scan uploads use must give
// the same answer as the scan.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "agents/deployer/archive.h"

namespace {

namespace fs = std::filesystem;

const fs::path& WorkDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("reprise-archive-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d / "parent");
    return d;
  }();
  return dir;
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  reprise::ArchiveLimits limits;
  limits.max_entries = 2000;
  limits.max_total_bytes = 32 << 20;
  limits.max_entry_bytes = 16 << 20;
  limits.ratio_check_min_bytes = 1 << 20;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  auto scanned = reprise::ScanArchiveBuffer(bytes, limits);

  const fs::path archive = WorkDir() / "input.bin";
  const fs::path parent = WorkDir() / "parent";
  const fs::path dest = parent / "dest";
  {
    std::ofstream out(archive, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto extracted = reprise::ExtractArchive(archive, dest, limits);
  Check(scanned.ok() == extracted.ok(), "scan and extract disagree");

  // As an upload scans it: fed in pieces while it arrives.
  auto scanner = reprise::ArchiveStreamScanner::Start(limits);
  Check(scanner.ok(), "cannot start a streaming scan");
  const size_t piece = 1 + (size > 0 ? data[0] : 0) * 64;
  for (size_t offset = 0; offset < bytes.size(); offset += piece)
    (*scanner)->Feed(bytes.data() + offset, std::min(piece, bytes.size() - offset));
  auto streamed = (*scanner)->Finish(archive);
  Check(streamed.ok() == scanned.ok(), "streaming scan and scan disagree");
  if (streamed.ok()) Check(*streamed == *scanned, "streaming scan and scan manifests differ");
  if (!streamed.ok())
    Check(streamed.status().code() == scanned.status().code(),
          "streaming scan and scan refuse with different codes");
  if (scanned.ok()) {
    Check(*scanned == *extracted, "scan and extract manifests differ");
    auto report = reprise::ValidateTree(dest, *extracted);
    Check(report.ok(), "cannot validate the extracted tree");
  } else {
    Check(!fs::exists(fs::symlink_status(dest)), "refused extraction left its destination");
  }
  // Nothing may appear beside dest.
  for (const auto& entry : fs::directory_iterator(parent))
    Check(entry.path() == dest, "something was written outside the destination");
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dest, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(dest, ec);
  return 0;
}
