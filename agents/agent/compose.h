// The tree work of compose-release (selective rollback records), without
// the release store around it: copying a release into a new directory,
// taking chosen components back to an earlier release's versions, and
// checking the result against the composed manifest. runner_compose.cpp
// wraps it with the per-root lock, the sources, the switch and the history.
//
// Every path is opened relative to a directory fd with O_NOFOLLOW: nothing
// is read or written through a symlink of either tree, so a link in a
// release cannot lead a revert out of the directory being built.
//
// Thread-safety: stateless functions; concurrent calls on different
// destination directories are fine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/status.h"
#include "planner/operations.h"

namespace reprise::agent_runner {

// True for a single directory name the agent may use under releases/:
// [A-Za-z0-9._+-], not "." or "..", at most 255 bytes.
bool IsReleaseDirName(std::string_view name);

struct RevertCounts {
  uint64_t deletes = 0, overrides = 0, restores = 0;
  uint64_t total() const { return deletes + overrides + restores; }
};
RevertCounts CountReverts(const std::vector<RevertEntry>& reverts);

// Copies the tree below `from` into `to` (which must not exist; its parent
// must): file contents are copied (never hard-linked, so a change in one
// release cannot appear in another), with their modes and modification
// times; symlinks are copied as symlinks; directories get their modes once
// filled. Anything else (a device, a FIFO) is refused. Checks `cancel`
// between entries (kCancelled).
[[nodiscard]] Status CopyReleaseTree(const std::filesystem::path& from,
                                     const std::filesystem::path& to, const CancelToken& cancel);

// Applies `reverts` to the tree in `dir`, in that order: every delete
// removes its file or link; every override (which must be there) and
// restore (which must not) is replaced by `source`'s version: the file's
// content and mode, or the symlink. `source` may be empty only when every
// revert is a delete. Then the directories are shaped after `composed`:
// missing ones are created with its modes, and empty ones it does not list
// (a directory only D had, emptied by the deletes) are removed. Errors name
// the component (kFailedPrecondition for a component that is not as its
// type says, kInvalidArgument for an unsafe path).
[[nodiscard]] Status ApplyReverts(const std::filesystem::path& dir,
                                  const std::filesystem::path& source,
                                  const std::vector<RevertEntry>& reverts,
                                  const Manifest& composed);

// Re-hashes everything below `dir` against `composed`: kFailedPrecondition
// naming what differs (the first few paths) unless every entry matches and
// nothing is extra.
[[nodiscard]] Status VerifyComposedTree(const std::filesystem::path& dir, const Manifest& composed);

}  // namespace reprise::agent_runner
