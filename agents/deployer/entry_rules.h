// The safety rules for archive entries, independent of libarchive: path
// normalisation and the in-archive namespace (which paths are directories,
// files, symlinks) used to refuse escapes and name clashes.
//
// EntryTable is a plain value; not thread-safe. The free functions are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/status.h"
#include "common/utf8.h"

namespace reprise {

inline constexpr size_t kMaxEntryPathBytes = 4095;
inline constexpr size_t kMaxPathComponentBytes = 255;
inline constexpr size_t kMaxPathDepth = 256;      // components
inline constexpr int kMaxSymlinkExpansions = 40;  // as Linux's MAXSYMLINKS
// Bounds the work of checking one archive, so a crafted archive cannot make
// validation itself the attack (deep paths, long symlink chains).
inline constexpr uint64_t kMaxTotalPathBytes = 256ULL << 20;
inline constexpr uint64_t kMaxSymlinkResolutionWork = 1ULL << 31;  // bytes looked up

// Renders an entry name for a message: quoted; control bytes and bytes that
// are not part of well-formed UTF-8 as \xNN, so a message never carries raw
// invalid bytes.
std::string QuoteEntryName(std::string_view raw);

// Normalises an archive path ("./a//b/" -> "a/b", "./" -> ""). Returns kUnsafe
// for NUL, backslashes, names that are not UTF-8, absolute or drive paths ("/x", "C:x"), ".."
// components and over-long or over-deep paths. The empty result stands for the destination root.
Result<std::string> NormaliseEntryPath(std::string_view raw);

// Where a symlink target points, resolved lexically from the link's directory
// and through the symlinks in `symlinks` (path -> target), like the kernel
// would in the extracted tree. Returns the resolved relative path ("" = root)
// or kUnsafe if it leaves the root, is absolute, or loops. `work`, when given,
// accumulates the bytes looked up (see kMaxSymlinkResolutionWork).
Result<std::string> ResolveSymlinkTarget(
    std::string_view link_path, std::string_view target,
    const std::unordered_map<std::string, std::string>& symlinks, uint64_t* work = nullptr);

// The namespace of one archive as it is read, entry by entry. Add* checks the
// entry against what came before and records it; FinishChecks() checks what
// can only be checked once all entries are known (symlink resolution).
class EntryTable {
 public:
  // At most `max_nodes` paths, implied directories included (kUnsafe).
  explicit EntryTable(uint64_t max_nodes = UINT64_MAX) : max_nodes_(max_nodes) {}

  // `path` is normalised and non-empty. Implied parent directories are added.
  // Returns kUnsafe for duplicates, a parent that is not a directory (e.g. a
  // write through a symlink), or a non-directory where a directory was implied.
  Status AddDirectory(const std::string& path, unsigned mode);
  Status AddFile(const std::string& path, unsigned mode);
  Status AddSymlink(const std::string& path, const std::string& target);
  // `target` is normalised; it must be an earlier regular file (or a hardlink
  // to one). Returns the regular file's path.
  Result<std::string> AddHardlink(const std::string& path, const std::string& target);

  // Records the data of the file added last at `path`.
  void SetFileData(const std::string& path, uint64_t size, std::string sha256);

  // Resolves every symlink against the complete table.
  Status FinishChecks() const;

  // Builds the manifest: sorted entries, counts, hash.
  Manifest BuildManifest() const;

  const std::unordered_map<std::string, std::string>& symlinks() const { return symlinks_; }
  // Directories (explicit and implied) in the order they were added.
  const std::vector<std::string>& directories() const { return directories_; }

 private:
  struct Node {
    EntryType type = EntryType::kDirectory;
    bool implied = false;  // a directory only implied by a deeper entry
    unsigned mode = 0;
    uint64_t size = 0;
    std::string sha256;
    std::string link_target;  // symlink target, or the hardlinked file's path
  };
  Status AddParents(const std::string& path);
  Status AddNode(const std::string& path, Node node);
  Status Record(std::string path, Node node);

  std::unordered_map<std::string, Node> nodes_;
  std::unordered_map<std::string, std::string> symlinks_;
  std::vector<std::string> directories_;
  uint64_t max_nodes_;
  uint64_t path_bytes_ = 0;
};

}  // namespace reprise
