// The CLI's configuration file, written by `reprise login`: the server and
// the token, one "key = value" line each. It holds a secret, so it is
// created with mode 0600 (never readable by others, not even for a moment)
// and a file others could read, or owned by someone else, is refused.
//
// Thread-safety: plain functions; concurrent writers each replace the file
// whole (rename), the last one wins.
#pragma once

#include <string>

#include "common/status.h"

namespace reprise::cli {

struct ConfigFile {
  std::string server;
  std::string token;
};

// An absent file is an empty ConfigFile; an unsafe or malformed one an error
// naming the file and what is wrong.
[[nodiscard]] Result<ConfigFile> ReadConfigFile(const std::string& path);

// Writes the file atomically with mode 0600, creating its directory (0700).
[[nodiscard]] Status WriteConfigFile(const std::string& path, const ConfigFile& config);

// Removes the file; true when there was one.
[[nodiscard]] Result<bool> RemoveConfigFile(const std::string& path);

}  // namespace reprise::cli
