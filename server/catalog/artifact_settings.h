// The operator's artifact settings as reprise-server flags: what an uploaded
// archive may hold (ArchiveLimits), how large an upload body may be, and the
// retention policy POST /api/v1/admin/retention uses for the fields a request
// leaves out. README.md ("Configuration") and docs/artifacts.md list them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/status.h"
#include "server/catalog/retention.h"

namespace reprise {

// The flags' help text, one flag per line, for --help.
const char* ArtifactFlagsUsage();

// True for --artifact-* and --retention-* flags; each takes one value.
bool IsArtifactFlag(std::string_view flag);

// Those flags' names, without the leading "--", and their defaults.
std::vector<std::pair<std::string, std::string>> ArtifactFlagNames();

// Applies one of those flags. `value` may be null (missing). Sizes are bytes
// with an optional binary suffix (K, M, G, T: 64M is 64 MiB). Errors are
// kInvalidArgument naming the flag and what it takes.
Status ApplyArtifactFlag(std::string_view flag, const char* value, ArchiveLimits& limits,
                         uint64_t& max_artifact_bytes, RetentionPolicy& retention);

// Parses a size such as "4096", "64M" or "8G" (binary multiples).
Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace reprise
