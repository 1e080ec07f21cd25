// Small filesystem helpers with durable semantics (fsync where it matters).
// All functions are thread-safe as far as the OS calls they make are.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace reprise {

Result<std::string> ReadFileToString(const std::filesystem::path& path);

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over
// `path` and fsyncs the directory: readers see the old or the new content,
// never a mix. `mode` is applied before the rename.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data,
                       unsigned mode = 0644);

Status FsyncPath(const std::filesystem::path& path);
Status FsyncDir(const std::filesystem::path& dir);

// True when `rel` is a safe relative path: not empty, not absolute, no ".."
// components, no backslashes, no NUL, no drive letters.
bool IsSafeRelativePath(std::string_view rel);

// Sets FD_CLOEXEC on `fd`, for descriptors whose creator cannot ask for it at
// creation (Asio opens and accepts sockets without SOCK_CLOEXEC). False with
// errno set when fcntl fails.
bool SetCloseOnExec(int fd);

}  // namespace reprise
