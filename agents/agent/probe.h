// The probe operation: before a deployment changes any target, the server
// asks each target's agent whether it can write the target root and how much
// room is left there (docs/agents.md "Probe"). Both the remote agent and the
// in-process local agent answer it through AgentRunner::Probe.
//
// Thread-safety: the free functions are thread-safe; ProbeRoot may run while
// a deployment writes the same root (it only adds and removes one file of
// its own, beside .reprise/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace reprise {

struct ProbeReport {
  bool writable = false;
  std::string problem;      // why the root cannot be written ("" when writable)
  uint64_t free_bytes = 0;  // available to the agent on the root's file system
  // Release directories present under .reprise/releases (a deployment of one
  // of them only switches `current`: it needs no room).
  std::vector<std::string> cached_releases;
};

// Probes `root` (an existing directory): creates a temporary file directly
// under it, writes a byte, removes it; reads free space with statvfs. Never
// fails: what went wrong is the report's problem.
ProbeReport ProbeRoot(const std::filesystem::path& root);

// A report for a root that could not even be resolved or created.
ProbeReport UnwritableRoot(std::string problem);

// JSON forms used by the agent protocol.
std::string ProbeReportToJson(const ProbeReport& report);
[[nodiscard]] Result<ProbeReport> ProbeReportFromJson(std::string_view json);

}  // namespace reprise
