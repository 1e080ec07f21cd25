// RollbackRecordStore: the rollback-record aggregate of the store: selective
// rollback records of succeeded deployments, their targets (what D left and
// what ran before, the composed manifest), components and selection,
// approvals, the connection check and the validation file.
// Thread-safety: implementations are safe to call from any thread (see
// store.h). Status changes are compare-and-set, like deployments'.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

// Statuses: draft -> pending-approval -> approved | rejected;
// approved -> scheduled | executing -> executed | failed;
// executed -> validated | validation-failed (validate may run again).
struct RollbackRecord {
  int64_t id = 0;
  int64_t deployment_id = 0;  // D
  std::string application;
  std::string stage;
  std::string release;  // D's build
  int64_t build = 0;
  std::string status = "draft";
  std::string comment;
  std::string created_by;
  int64_t created_at = 0;
  std::string submitted_by;
  int64_t submitted_at = 0;
  std::string executed_by;  // who asked for the execution
  int64_t executed_at = 0;  // when it was asked for
  int64_t execution_deployment_id = 0;
  int64_t scheduled_at = 0;  // 0: now
  int64_t finished_at = 0;   // when the execution ended
  std::string validated_by;
  int64_t validated_at = 0;
  std::string validation_json;  // the validation file (JSON), "" before any
  std::string connection_json;  // the last connection check, "" before any
  int64_t connection_checked_at = 0;
  bool connection_ok = false;
  std::string error;  // why the execution failed
  // Counted from the components (read-only).
  int64_t components_total = 0;
  int64_t components_selected = 0;
};

// One target of a record: what D left there and what ran before (A).
struct RollbackRecordTarget {
  int64_t record_id = 0;
  std::string target;
  std::string release_dir;             // Rd
  std::string manifest_json;           // Md
  std::string manifest_hash;           // Md's hash
  std::string artifact;                // D's artifact name
  int64_t previous_deployment_id = 0;  // A's deployment; 0: nothing ran before
  std::string previous_release;
  int64_t previous_build = 0;
  std::string previous_release_dir;    // Ra
  std::string previous_artifact;       // A's artifact name
  std::string previous_sha256;         // A's artifact blob
  std::string previous_manifest_json;  // Ma ("" when A is absent)
  std::string previous_manifest_hash;
  std::string composed_manifest_json;  // for the current selection
  std::string composed_manifest_hash;
};

struct RollbackComponentRecord {
  std::string target;
  std::string path;
  std::string type;  // delete | override | restore
  bool selected = true;
};

struct RollbackApprovalRecord {
  std::string user;
  std::string decision;  // approved | rejected
  std::string comment;
  int64_t at = 0;
};

struct RollbackRecordFilter {
  std::string application;
  std::string stage;
  std::vector<std::string> statuses;  // any of; empty: all
  int64_t from = 0;                   // created at or after (0: any)
  int64_t to = 0;                     // created before (0: any)
  int64_t deployment_id = 0;          // of this D (0: any)
};

// The fields a transition sets; empty / zero ones are left as they are.
struct RollbackRecordChange {
  std::string submitted_by;
  int64_t submitted_at = 0;
  std::string executed_by;
  int64_t executed_at = 0;
  int64_t execution_deployment_id = 0;
  int64_t scheduled_at = 0;
  int64_t finished_at = 0;
  std::string validated_by;
  int64_t validated_at = 0;
  std::string validation_json;
  std::string error;
};

class RollbackRecordStore {
 public:
  virtual ~RollbackRecordStore() = default;

  // Stores a new record (status as given) with its targets and components.
  virtual Result<RollbackRecord> CreateRollbackRecord(
      const RollbackRecord& record, const std::vector<RollbackRecordTarget>& targets,
      const std::vector<RollbackComponentRecord>& components) = 0;
  virtual Result<RollbackRecord> GetRollbackRecord(int64_t id) = 0;
  // Newest first.
  virtual Result<std::vector<RollbackRecord>> ListRollbackRecords(
      const RollbackRecordFilter& filter, const Page& page) = 0;
  // The record whose execution is this deployment; kNotFound if none.
  virtual Result<RollbackRecord> FindRollbackRecordByExecution(int64_t deployment_id) = 0;
  virtual Result<std::vector<RollbackRecordTarget>> ListRollbackRecordTargets(int64_t id) = 0;
  // In target, then path order.
  virtual Result<std::vector<RollbackComponentRecord>> ListRollbackComponents(int64_t id) = 0;
  // Replaces the selection and the targets' composed manifests, only while
  // the record is a draft (compare-and-set): false when it is not.
  virtual Result<bool> SetRollbackSelection(int64_t id,
                                            const std::vector<RollbackComponentRecord>& components,
                                            const std::vector<RollbackRecordTarget>& composed) = 0;
  // Compare-and-set: moves the status to `to` only from one of `from`,
  // setting the change's fields. False when the status was not one of `from`.
  virtual Result<bool> TransitionRollbackRecord(int64_t id, const std::vector<std::string>& from,
                                                const std::string& to,
                                                const RollbackRecordChange& change) = 0;
  // A user's decision; one per user and record (kAlreadyExists for a second).
  virtual Status AddRollbackApproval(int64_t id, const RollbackApprovalRecord& approval) = 0;
  virtual Result<std::vector<RollbackApprovalRecord>> ListRollbackApprovals(int64_t id) = 0;
  // The result of a connection check (a JSON object) and whether it passed.
  virtual Status SetRollbackConnection(int64_t id, const std::string& json, bool ok,
                                       int64_t at) = 0;
};

}  // namespace reprise
