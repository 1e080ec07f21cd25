// Verified byte-identical deployments: is what is on a target exactly the
// build it claims to run? The target's agent says which artifact (by SHA-256)
// its `current` release was extracted from; identical bytes have identical
// manifests, so the manifest stored with any artifact record of that SHA-256
// is the one to check against. The agent then re-hashes every file under
// `current` (AgentHub::Validate) and reports what is missing, changed or
// extra.
//
// Thread-safety: VerifyTarget may be called from any thread (the hub and the
// store are thread-safe); the routes hold pointers to `hub`, `store` and
// `clock`, which must outlive them. nlohmann/json stays in the .cpp file.
#pragma once

#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/http/http_types.h"

namespace reprise {

class AgentHub;
class Store;

struct TargetVerification {
  std::string target;
  std::string agent;
  std::string release;      // the label of the current release ("" when deployed without one)
  std::string build;        // as the agent reports it: "2"
  std::string artifact;     // the artifact's name
  std::string sha256;       // the artifact's SHA-256
  std::string release_dir;  // the agent's release directory that `current` points to
  ValidationReport report;
};

// Errors, each naming what was wrong: kNotFound for an unknown target;
// kUnavailable when the target's agent is offline, not approved or not
// enabled (the local agent); kFailedPrecondition when nothing is deployed on
// the target, the agent does not know the artifact of its current release,
// or no artifact record of that SHA-256 is left (retention removed the
// build); kConflict when `current` was switched while the files were checked.
[[nodiscard]] Result<TargetVerification> VerifyTarget(AgentHub& hub, Store& store,
                                                      const std::string& target);

// The audit summary of a verification: "ok, 5 files; 1.0.0 build 2" or
// "3 problems (1 missing, 1 changed, 1 extra); 1.0.0 build 2".
std::string VerificationSummary(const TargetVerification& verification);

// POST /api/v1/targets/{target}/validate (deployer; audited as
// `target.validate`): {target, agent, release, build, artifact, sha256,
// release_dir, ok, files_checked, missing: [path], changed: [{path, problem}],
// extra: [path]}.
std::vector<Route> TargetValidateRoutes(AgentHub& hub, Store& store, const Clock& clock);

}  // namespace reprise
