// RollbackRecords: the server's side of selective rollback records
// (docs/rollback-records.md): creating one from a succeeded deployment D
// (eligibility, what each target ran before, the components, the selection),
// testing the connection (agents, writable roots, drift from D's files),
// submitting, approving or rejecting, executing through the deployment engine
// and validating the result against the composed manifest. Every transition
// is a compare-and-set in the store written with its audit entry.
//
// Thread-safety: every method may be called from any thread at once (the
// store, the agent port and the engine are thread-safe; no state of its own).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/engine/engine.h"
#include "server/store/store.h"

namespace reprise {

class AgentPort;
class BlobStore;

struct RollbackSelection {
  std::vector<std::string> components;  // narrow to these paths or directories (empty: all)
  std::vector<std::string> exclude;     // then leave these out
};

// What one approval needs: `count` decisions from users with `role` (never
// the submitter).
struct RollbackApprovalRule {
  Role role = Role::kReleaseManager;
  int count = 1;
  std::string Describe() const;
};

// The composed manifest of an executed rollback record on `target` whose
// hash is `manifest_hash` (what the target's agent reports after the
// execution): Verify files checks against it. None when no record matches.
std::optional<Manifest> FindComposedManifest(Store& store, const std::string& target,
                                             const std::string& manifest_hash);

class EventBus;

class RollbackRecords {
 public:
  // Status changes are published on `events` when set.
  RollbackRecords(Store& store, AgentPort& agents, BlobStore& blobs, DeploymentEngine& engine,
                  const Clock& clock, EventBus* events = nullptr);

  // A draft record of deployment `deployment_id`. kFailedPrecondition (409)
  // naming why when it is not eligible; kInvalidArgument for a selection
  // path that is unsafe or names nothing; kPermissionDenied without what
  // re-deploying on the stage needs.
  [[nodiscard]] Result<RollbackRecord> Create(const Actor& actor, int64_t deployment_id,
                                              const RollbackSelection& selection,
                                              const std::string& comment);
  // The record, its status brought up to date with its execution.
  [[nodiscard]] Result<RollbackRecord> Get(int64_t id);
  // A new selection (only while draft).
  [[nodiscard]] Result<RollbackRecord> Reselect(const Actor& actor, int64_t id,
                                                const RollbackSelection& selection);
  // Asks each target's agent; the result is kept on the record.
  [[nodiscard]] Result<RollbackRecord> TestConnection(const Actor& actor, int64_t id);
  [[nodiscard]] Result<RollbackRecord> Submit(const Actor& actor, int64_t id,
                                              const std::string& comment);
  [[nodiscard]] Result<RollbackRecord> Decide(const Actor& actor, int64_t id, bool approve,
                                              const std::string& comment);
  // Checks the connection again (refused on drift), then requests the
  // execution (now, or at `at`).
  // Refused (kInvalidArgument naming them) when irreversible steps ran since
  // what the targets ran before D and `acknowledge_irreversible` is false.
  [[nodiscard]] Result<RollbackRecord> Execute(const Actor& actor, int64_t id,
                                               std::optional<TimePoint> at,
                                               bool acknowledge_irreversible);
  // The irreversible steps that ran on the record's targets since what each
  // of them ran before D was current: the record does not undo them.
  [[nodiscard]] Result<std::vector<IrreversibleStepRecord>> IrreversibleSteps(
      const RollbackRecord& record);
  [[nodiscard]] Result<RollbackRecord> Validate(const Actor& actor, int64_t id);

  [[nodiscard]] Result<RollbackApprovalRule> ApprovalRule(const RollbackRecord& record);

 private:
  Status MayExecute(const Actor& actor, const RollbackRecord& record);
  Status Audit(const Actor& actor, const std::string& action, int64_t id,
               const std::string& summary);
  // The record as stored now; its change is published when its status is
  // no longer `before`.
  Result<RollbackRecord> Reread(const std::string& actor, const std::string& before, int64_t id);

  Store& store_;
  AgentPort& agents_;
  BlobStore& blobs_;
  DeploymentEngine& engine_;
  const Clock& clock_;
  EventBus* events_;
};

}  // namespace reprise
