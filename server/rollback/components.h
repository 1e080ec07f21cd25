// Selective rollback components: what a succeeded deployment D changed on one
// target, computed from the manifest of what the target ran before (Ma, A's
// tree; absent when it ran nothing) and D's manifest (Md), and the composed
// manifest: D's tree with the selected components reverted.
//
//   delete    in Md, not in Ma      the rollback removes it
//   override  in both, differing    the rollback puts A's version back
//   restore   in Ma, not in Md      the rollback puts A's version back
//
// Only non-directory entries (file, symlink, hardlink) are components.
// Directories follow: one only D has that is empty after the selected deletes
// is removed; one a restored entry needs is created with Ma's mode.
//
// Pure functions on values: thread-safe, no I/O.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/status.h"

namespace reprise {

struct RollbackComponent {
  std::string path;  // a manifest path: relative, e.g. "bin/tool"
  std::string type;  // delete | override | restore
  bool selected = true;
  std::optional<ManifestEntry> base;    // D's entry (absent for restore)
  std::optional<ManifestEntry> source;  // A's entry (absent for delete)
  friend bool operator==(const RollbackComponent&, const RollbackComponent&) = default;
};

// The components of one target, in path order, all selected. `previous` is
// null when the target ran nothing before D.
std::vector<RollbackComponent> ComputeComponents(const Manifest* previous,
                                                 const Manifest& deployed);

// True when the selection path `selector` names `path` itself or a directory
// above it ("bin" names "bin/tool"; "bin/" too; "" or "." names everything).
bool SelectorMatches(std::string_view selector, std::string_view path);

// Narrows the selection: with `include` non-empty only components some
// include names stay selected; then every component an exclude names is
// deselected. Returns the selectors (of either list) that named a component
// here, so a caller spanning targets can refuse a selector naming nothing.
std::set<std::string> ApplySelection(std::vector<RollbackComponent>& components,
                                     const std::vector<std::string>& include,
                                     const std::vector<std::string>& exclude);

// Checks a selection path from outside: relative, no "..", no NUL, at most
// 4096 bytes. kInvalidArgument naming `field`.
[[nodiscard]] Status CheckSelector(std::string_view selector, std::string_view field);

// D's manifest with the selected components reverted (entries from
// `previous`, or removed) and the directory rules applied; its hash, file
// count and total bytes computed again. kFailedPrecondition when the
// selection cannot be composed (a restored entry needs a directory where D
// keeps a non-directory, or a directory that still holds kept entries must go
// for a restored file), naming the path and what to select.
[[nodiscard]] Result<Manifest> ComposeManifest(const Manifest* previous, const Manifest& deployed,
                                               const std::vector<RollbackComponent>& components);

struct ComponentCounts {
  int64_t total = 0;
  int64_t selected = 0;
  int64_t deletes = 0;    // selected deletes
  int64_t overrides = 0;  // selected overrides
  int64_t restores = 0;   // selected restores
};
ComponentCounts CountComponents(const std::vector<RollbackComponent>& components);

}  // namespace reprise
