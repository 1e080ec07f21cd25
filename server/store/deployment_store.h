// DeploymentStore: the deployment aggregate of the store: deployments, their
// targets, logs and approvals, scheduling, what each target holds (target
// states) and automatic-promotion holds.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

// One execution of a build's plan on one stage.
struct DeploymentRecord {
  int64_t id = 0;
  std::string application;
  std::string release;
  int64_t build = 0;
  std::string stage;
  std::string kind;          // promote | redeploy | rollback
  std::string status;        // scheduled | waiting | queued | running | succeeded | failed |
                             // cancelled | interrupted | expired
  int64_t scheduled_at = 0;  // 0: now
  int64_t expires_after_ms = 3600000;
  bool forced = false;
  std::string context_choice = "as-deployed";  // as-deployed | current
  std::string variables_json = "{}";           // the deployment scope
  std::string comment;
  std::string requested_by;
  int64_t created_at = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  std::string context_json;  // the resolved ExecutionContext, once started
  std::string error;         // why it failed, was cancelled or expired (masked)
  std::string targets_csv;   // the stage's targets when requested, in lock order
  bool automatic = false;    // created by auto-promotion
};

// Copies which deployment `d` is (its id, application, stage, release and
// build) into a record about it (a rollback record, an irreversible step).
template <typename Record>
void CopyDeploymentIdentity(const DeploymentRecord& d, Record& record) {
  record.deployment_id = d.id;
  record.application = d.application;
  record.stage = d.stage;
  record.release = d.release;
  record.build = d.build;
}

struct DeploymentFilter {
  std::string application;
  std::string stage;
  std::vector<std::string> statuses;  // any of; empty: all
  bool oldest_first = false;          // default: newest first
  std::string target = "";            // requested with this target among its targets
  // Case-insensitive: application, stage, target, requested_by and release
  // compare without regard to case ("automation" matches automatic ones).
  std::string requested_by = "";
  std::string release = "";
  int64_t build = 0;         // 0: any
  int64_t created_from = 0;  // unix ms, inclusive; 0: open
  int64_t created_to = 0;    // unix ms, exclusive; 0: open
};

// Where one due scheduled deployment goes when it fires.
struct ScheduledFiring {
  int64_t id = 0;
  std::string to;     // queued | waiting | expired | cancelled | failed
  std::string error;  // for a final status
};

struct DeploymentTargetRecord {
  int64_t deployment_id = 0;
  std::string target;
  std::string status;  // pending | running | succeeded | failed | cancelled | interrupted
  std::string message;
  std::string release_dir;
  std::string manifest_sha256;
  int64_t started_at = 0;
  int64_t finished_at = 0;
};

struct DeploymentLogRecord {
  int64_t deployment_id = 0;
  int64_t seq = 0;
  int64_t at = 0;
  std::string target;
  std::string level;  // info | warning | error | output
  std::string text;   // already masked
};

struct ApprovalRecord {
  int64_t id = 0;
  int64_t deployment_id = 0;
  std::string user;
  std::string decision;  // approved | rejected
  std::string comment;
  int64_t at = 0;
  bool revoked = false;
};

// A target's build as the deployments recorded it.
struct TargetCurrent {
  std::string target;
  std::string release;
  int64_t build = 0;
  int64_t deployment_id = 0;
  int64_t at = 0;
  std::string by;
};

// What one target holds, as recorded (target_states).
struct TargetStateRecord {
  std::string application;
  std::string stage;
  TargetCurrent current;
  std::string release_dir;  // the agent's release directory; "" when no agent reported one
};

// A build that succeeded on a stage, newest success first.
struct StageBuild {
  std::string release;
  int64_t build = 0;
  int64_t deployment_id = 0;
  int64_t at = 0;
  std::string by;
};

// An irreversible plan step that ran on a target (irreversible_steps): a
// rollback across it cannot undo it, or runs its undo steps.
struct IrreversibleStepRecord {
  int64_t id = 0;
  int64_t deployment_id = 0;
  std::string application;
  std::string stage;
  std::string release;
  int64_t build = 0;
  std::string step_id;   // "2", "3.1"
  std::string position;  // "plan deploy-web:4:3"
  std::string label;     // what ran, masked: "exec ./migrate.sh up"
  std::string target;
  int64_t ran_at = 0;   // unix ms, when the step started
  std::string outcome;  // succeeded | failed | cancelled | error
  std::string note;     // masked
  bool has_undo = false;
};

// A running deployment another server left behind (its lease lapsed), or
// this server did before a restart, now `interrupted`.
struct OrphanedDeployment {
  int64_t id = 0;
  std::string owner;  // the server id that ran it ("" before leases existed)
};

// Which running deployments InterruptOrphaned takes: those whose lease
// lapsed (a server's periodic takeover), or also the caller's own live ones
// (at its start, when nothing of its own runs yet).
enum class OrphanScope { kLapsed, kLapsedOrOwn };

// A named lease (server-local work one server does at a time, or a server's
// presence), live until `until` (unix ms).
struct LeaseRecord {
  std::string name;
  std::string owner;
  int64_t until = 0;
};

class DeploymentStore {
 public:
  virtual ~DeploymentStore() = default;

  virtual Result<DeploymentRecord> CreateDeployment(const DeploymentRecord& deployment) = 0;
  virtual Result<DeploymentRecord> GetDeployment(int64_t id) = 0;
  // Newest first.
  virtual Result<std::vector<DeploymentRecord>> ListDeployments(const DeploymentFilter& filter,
                                                                const Page& page) = 0;
  // Compare-and-set: changes the status to `to` only when it is one of
  // `from`, in one IMMEDIATE transaction, so each transition happens once.
  // Sets started_at / finished_at when given (non-zero) and `error` when
  // non-empty. Returns false when the status was not one of `from`.
  virtual Result<bool> TransitionDeployment(int64_t id, const std::vector<std::string>& from,
                                            const std::string& to, int64_t started_at = 0,
                                            int64_t finished_at = 0,
                                            const std::string& error = "") = 0;
  // Scheduled deployments due at or before `until` (unix ms), earliest first.
  virtual Result<std::vector<DeploymentRecord>> DueScheduled(int64_t until, int64_t limit) = 0;
  // The earliest scheduled time of any scheduled deployment; 0 when none.
  virtual Result<int64_t> NextScheduledAt() = 0;
  // Fires due scheduled deployments in one IMMEDIATE transaction: each one
  // still `scheduled` and due at or before `due_by` moves to its `to`
  // (queued, waiting, or a final status, which sets finished_at = `now` and
  // error). Returns the ids that moved; a deployment cancelled or moved
  // meanwhile does not.
  virtual Result<std::vector<int64_t>> FireScheduled(const std::vector<ScheduledFiring>& firings,
                                                     int64_t due_by, int64_t now) = 0;
  // The same compare-and-set for many deployments in one transaction;
  // returns the ids that moved.
  virtual Result<std::vector<int64_t>> TransitionDeployments(const std::vector<int64_t>& ids,
                                                             const std::vector<std::string>& from,
                                                             const std::string& to) = 0;
  // Moves a scheduled deployment (compare-and-set on status 'scheduled').
  virtual Result<bool> RescheduleDeployment(int64_t id, int64_t scheduled_at) = 0;
  virtual Status SetDeploymentContext(int64_t id, const std::string& context_json,
                                      const std::string& kind) = 0;
  // Starting to run, in one transaction: the resolved context and kind, and
  // each of `targets` written.
  virtual Status StartDeployment(int64_t id, const std::string& context_json,
                                 const std::string& kind,
                                 const std::vector<DeploymentTargetRecord>& targets) = 0;
  // Finishing, in one IMMEDIATE transaction: `logs` (lines of any
  // deployments) are appended, `targets` and `target_states` written, and the
  // status moves to `to` if it is one of `from` (with finished_at and error),
  // and only then `final_logs` are appended. Returns whether it moved.
  virtual Result<bool> FinishDeployment(int64_t id, const std::vector<std::string>& from,
                                        const std::string& to, int64_t finished_at,
                                        const std::string& error,
                                        const std::vector<DeploymentTargetRecord>& targets,
                                        const std::vector<TargetStateRecord>& target_states,
                                        const std::vector<DeploymentLogRecord>& logs,
                                        const std::vector<DeploymentLogRecord>& final_logs) = 0;
  virtual Status PutDeploymentTarget(const DeploymentTargetRecord& target) = 0;
  virtual Result<std::vector<DeploymentTargetRecord>> ListDeploymentTargets(int64_t id) = 0;
  // Appends a line and returns its sequence number (1, 2, ...).
  virtual Result<int64_t> AppendDeploymentLog(const DeploymentLogRecord& line) = 0;
  // Appends many lines (of any deployments) in one transaction, numbering
  // each deployment's lines on from its last one.
  virtual Status AppendDeploymentLogs(const std::vector<DeploymentLogRecord>& lines) = 0;
  virtual Result<std::vector<DeploymentLogRecord>> ListDeploymentLog(int64_t id, int64_t after_seq,
                                                                     int64_t limit) = 0;
  // Records a user's decision. A user holds at most one standing (not
  // revoked) decision per deployment: a second approval is kAlreadyExists; a
  // rejection replaces the user's standing approval (revoking it).
  virtual Result<ApprovalRecord> AddApproval(const ApprovalRecord& approval) = 0;
  virtual Result<std::vector<ApprovalRecord>> ListApprovals(int64_t deployment_id) = 0;
  // Revokes the user's standing approvals of a deployment; returns how many.
  virtual Result<int64_t> RevokeApprovals(int64_t deployment_id, const std::string& user) = 0;

  // What the targets of an application's stage hold (target_states).
  virtual Result<std::vector<TargetCurrent>> CurrentBuilds(const std::string& app,
                                                           const std::string& stage) = 0;
  // Records what a target holds now.
  virtual Status PutTargetState(const std::string& app, const std::string& stage,
                                const TargetCurrent& current, const std::string& release_dir) = 0;
  // kNotFound when nothing is recorded for the target.
  virtual Result<TargetStateRecord> GetTargetState(const std::string& target) = 0;
  // Forgets what the target held (its agent reports nothing deployed).
  virtual Status ClearTargetState(const std::string& target) = 0;
  // Builds that succeeded on the stage, newest success first, one entry each.
  virtual Result<std::vector<StageBuild>> SucceededBuilds(const std::string& app,
                                                          const std::string& stage,
                                                          int64_t limit) = 0;
  // The build's newest succeeded deployment to the stage; kNotFound if none.
  virtual Result<DeploymentRecord> LastSuccess(const std::string& app, const std::string& release,
                                               int64_t build, const std::string& stage) = 0;
  // The automatic-promotion holds of an application are ApplicationRecord's
  // hold_json, {"Stage": {...}}; each is changed alone, in one transaction,
  // so holds placed or cleared at the same time on other stages are kept.
  // Places (or replaces) the hold on `stage`; `hold_json` is a JSON object.
  virtual Status PlaceHold(const std::string& app, const std::string& stage,
                           const std::string& hold_json) = 0;
  // Returns true when removed, false when the stage had no hold.
  virtual Result<bool> ClearHold(const std::string& app, const std::string& stage) = 0;

  // ---- leases: several servers on one store (store_leases.cpp). A queued
  // or running deployment is held by the server named in its owner column
  // until its lease_until (unix ms); every change below is one write
  // transaction, which excludes every other writer of the store.
  //
  // Claims for `owner`, until `lease_until`, those of `ids` that are still
  // queued and not held by a live lease, keeping per-target FIFO across
  // servers: one is taken only when none of its targets belongs to a running
  // deployment, to a queued one held by a live lease (any server's), or to
  // an older queued one. Returns the ids claimed, in id order.
  virtual Result<std::vector<int64_t>> ClaimDeployments(const std::vector<int64_t>& ids,
                                                        const std::string& owner, int64_t now,
                                                        int64_t lease_until) = 0;
  // Extends the leases `owner` holds on `ids` (queued or running) to
  // `lease_until`; returns the ids not taken from `owner`: those renewed,
  // and those that ended or were released meanwhile while `owner`'s (their
  // owner is still `owner`, or nobody). One another server claimed or took
  // over (its owner is that server) is left out.
  virtual Result<std::vector<int64_t>> RenewDeploymentLeases(const std::vector<int64_t>& ids,
                                                             const std::string& owner,
                                                             int64_t lease_until) = 0;
  // Gives up `owner`'s leases on `ids` (they ended, or went back to waiting).
  virtual Status ReleaseDeploymentLeases(const std::vector<int64_t>& ids,
                                         const std::string& owner) = 0;
  // Every running deployment not in `running_here` whose lease lapsed before
  // `now` (or, with kLapsedOrOwn, whose owner is `owner`: left by this
  // server before a restart) becomes `interrupted` (finished_at `now`,
  // `error`, owner `owner`: the server that took it), in one transaction.
  // A deployment any server holds a live lease on is never taken with
  // kLapsed: it may have started after `running_here` was listed.
  virtual Result<std::vector<OrphanedDeployment>> InterruptOrphaned(
      const std::string& owner, int64_t now, const std::vector<int64_t>& running_here,
      const std::string& error, OrphanScope scope) = 0;
  // Takes (or renews) the named lease for `owner` until `until` when it is
  // free, lapsed before `now`, or already `owner`'s; returns whether `owner`
  // holds it now.
  virtual Result<bool> TryTakeLease(const std::string& name, const std::string& owner, int64_t now,
                                    int64_t until) = 0;
  // Who holds deployment `id` and until when (name: the id); owner "" when
  // nobody does. kNotFound when there is no such deployment.
  virtual Result<LeaseRecord> GetDeploymentLease(int64_t id) = 0;
  // Named leases live at `now` whose name starts with `prefix`, by name.
  virtual Result<std::vector<LeaseRecord>> LiveLeases(const std::string& prefix, int64_t now) = 0;

  // Keeps an irreversible step that ran (id and the given id are ignored).
  virtual Status AddIrreversibleStep(const IrreversibleStepRecord& step) = 0;
  // The irreversible steps that ran on the application's stage after
  // `after` (unix ms, exclusive), oldest first.
  virtual Result<std::vector<IrreversibleStepRecord>> ListIrreversibleSteps(
      const std::string& app, const std::string& stage, int64_t after) = 0;
};

}  // namespace reprise
