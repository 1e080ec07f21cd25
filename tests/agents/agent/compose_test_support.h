// Test support for compose-release: trees with modes, symlinks and
// directories written to disk (then packed with CreateTarGz), the composed
// manifest computed the way the server does (D's manifest with the chosen
// components taken back to A's entries, directories adjusted), and the
// compose-release operation that asks for it.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agents/deployer/archive.h"
#include "planner/operations.h"

namespace reprise::compose_testing {

namespace fs = std::filesystem;

struct Item {
  enum Kind { kFile, kLink, kDir } kind = kFile;
  std::string content;  // file content, or symlink target
  unsigned mode = 0644;
};
inline Item File(std::string content, unsigned mode = 0644) {
  return {Item::kFile, std::move(content), mode};
}
inline Item Link(std::string target) { return {Item::kLink, std::move(target), 0777}; }
inline Item Dir(unsigned mode = 0755) { return {Item::kDir, "", mode}; }

// Writes `items` under `dir` (parents first: a map is in path order).
inline void WriteTree(const fs::path& dir, const std::map<std::string, Item>& items) {
  fs::create_directories(dir);
  for (const auto& [path, item] : items) {
    fs::path p = dir / path;
    fs::create_directories(p.parent_path());
    if (item.kind == Item::kDir) {
      fs::create_directories(p);
      ::chmod(p.c_str(), item.mode);
    } else if (item.kind == Item::kLink) {
      fs::create_symlink(item.content, p);
    } else {
      std::ofstream(p, std::ios::binary) << item.content;
      ::chmod(p.c_str(), item.mode);
    }
  }
}

// D's manifest with `reverts` applied: a delete drops the entry, an override
// or restore takes A's; a restore's missing parents come from A; directories
// neither A has nor anything still needs are dropped.
inline Manifest ComposeManifest(const Manifest& a, const Manifest& d,
                                const std::vector<RevertEntry>& reverts) {
  std::map<std::string, ManifestEntry> out, in_a;
  for (const auto& e : d.entries) out[e.path] = e;
  for (const auto& e : a.entries) in_a[e.path] = e;
  for (const auto& r : reverts) {
    if (r.type == "delete") {
      out.erase(r.path);
      continue;
    }
    out[r.path] = in_a.at(r.path);
    for (fs::path p = fs::path(r.path).parent_path(); !p.empty(); p = p.parent_path()) {
      if (!out.count(p.string())) out[p.string()] = in_a.at(p.string());
    }
  }
  // Directories only D had and nothing is left in: deepest first.
  std::vector<std::string> dirs;
  for (const auto& [path, e] : out) {
    if (e.type == EntryType::kDirectory && !in_a.count(path)) dirs.push_back(path);
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    auto next = out.upper_bound(*it);
    if (next == out.end() || next->first.rfind(*it + "/", 0) != 0) out.erase(*it);
  }
  Manifest m;
  for (auto& [path, e] : out) {
    m.entries.push_back(e);
    if (e.type == EntryType::kFile || e.type == EntryType::kHardlink) ++m.file_count;
    if (e.type == EntryType::kFile) m.total_bytes += e.size;
  }
  m.manifest_hash = ComputeManifestHash(m.entries);
  return m;
}

// A release on the target as compose-release names it; `sha256` is its
// artifact's (only the source's is sent).
struct TargetRelease {
  std::string release;
  const Manifest& manifest;
  std::string sha256 = "";
};

// The compose-release `name` of `base` with `reverts` taken back to
// `source`'s versions (artifact "web"), promising the `composed` tree.
inline ComposeReleaseOp ComposeOp(const TargetRelease& base, const TargetRelease& source,
                                  const std::vector<RevertEntry>& reverts, const Manifest& composed,
                                  std::string name) {
  ComposeReleaseOp op;
  op.base_release = base.release;
  op.base_manifest_hash = base.manifest.manifest_hash;
  op.source_release = source.release;
  op.source_artifact = "web";
  op.source_sha256 = source.sha256;
  op.source_manifest_hash = source.manifest.manifest_hash;
  op.reverts = reverts;
  op.manifest_json = ManifestToJson(composed);
  op.name = std::move(name);
  return op;
}

}  // namespace reprise::compose_testing
