// Store: the durable state of a Reprise server, behind an interface so the
// engine and API do not depend on SQLite (a PostgreSQL store can be added
// beside SqliteStore without touching them).
//
// Records are plain values. JSON-valued fields (variables, specs, manifests,
// execution contexts) are kept as canonical JSON text; the store does not
// interpret them. Times are milliseconds since the Unix epoch, UTC.
//
// Thread-safety: every method is safe to call from any thread; each call is
// atomic (one IMMEDIATE transaction for writes). Atomically() groups several
// calls, e.g. a change and its audit entry, into one transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace reprise {

enum class Role { kViewer = 0, kDeployer = 1, kReleaseManager = 2, kAdmin = 3 };
const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct Page {
  int64_t limit = 100;  // 1..1000
  int64_t offset = 0;
};

struct EnvironmentRecord {
  std::string name;
  std::string variables_json = "{}";
  int64_t updated_at = 0;
};

struct TargetRecord {
  std::string name;
  std::string environment;
  std::string agent;
  std::string path;
  std::string variables_json = "{}";
  int64_t updated_at = 0;
};

struct AgentRecord {
  std::string name;
  std::string status;  // pending | approved | refused
  std::string secret_hash;  // HMAC key material is never stored in clear
  std::string key_fingerprint;
  std::string version;
  int64_t created_at = 0;
  int64_t last_seen = 0;
  std::string public_key;  // PEM or hex, as the agent hub chooses
};

struct EnrollTokenRecord {
  std::string token_hash;  // SHA-256 of the token
  bool pre_approved = false;
  std::string created_by;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  std::string used_by;  // agent names that used it, comma-separated
};

struct ApplicationRecord {
  std::string name;
  int64_t spec_version = 0;
  std::string spec_json;  // canonical JSON of the parsed spec
  std::string spec_text;  // as submitted (YAML or JSON)
  int64_t updated_at = 0;
  std::string updated_by;
  std::string hold_json = "{}";  // per stage: automatic-promotion holds after rollbacks
};

struct ReleaseRecord {
  std::string application;
  std::string number;
  int64_t spec_version = 0;
  std::string snapshot_json;  // the application spec (pipeline + plans) when created
  std::string variables_json = "{}";
  int64_t created_at = 0;
  std::string created_by;
};

struct BuildRecord {
  std::string application;
  std::string release;
  int64_t number = 0;
  std::string variables_json = "{}";
  int64_t created_at = 0;
  std::string created_by;
  // Sealed by hand (POST .../seal); 0: not.
  int64_t sealed_at = 0;
  std::string sealed_by = "";
  // Read only: the build's first deployment (0: none). Requesting one seals it.
  int64_t first_deployment_id = 0;

  bool sealed() const { return sealed_at != 0 || first_deployment_id != 0; }
};

// Why a sealed build takes no artifacts: "sealed by alice at <time>" or
// "deployed in #7"; empty when it is not sealed.
std::string SealedReason(const BuildRecord& build);

struct ArtifactRecord {
  std::string application;
  std::string release;
  int64_t build = 0;
  std::string name;
  std::string sha256;
  int64_t size = 0;
  int64_t file_count = 0;
  std::string manifest_json;
  int64_t created_at = 0;
  std::string created_by;
  // When retention removed the bytes (0: present). The record stays as a
  // tombstone: only the identical bytes can be stored under it again.
  int64_t blob_removed_at = 0;
};

struct UserRecord {
  std::string name;
  Role role = Role::kViewer;
  std::string password_hash;  // empty: no password login
  int64_t created_at = 0;
};

struct TokenRecord {
  int64_t id = 0;
  std::string user;
  std::string name;
  std::string token_hash;  // SHA-256 of the token; the token itself is never stored
  int64_t created_at = 0;
};

struct AuditRecord {
  int64_t id = 0;
  int64_t at = 0;
  std::string actor;
  std::string action;   // e.g. "application.put"
  std::string subject;  // e.g. "shop"
  std::string summary;
};

// One execution of a build's plan on one stage.
struct DeploymentRecord {
  int64_t id = 0;
  std::string application;
  std::string release;
  int64_t build = 0;
  std::string stage;
  std::string kind;    // promote | redeploy | rollback
  std::string status;  // scheduled | waiting | queued | running | succeeded | failed |
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

struct DeploymentFilter {
  std::string application;
  std::string stage;
  std::vector<std::string> statuses;  // any of; empty: all
  bool oldest_first = false;          // default: newest first
  std::string target = "";            // requested with this target among its targets
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

// A permission held by one user on one environment beside their role.
struct GrantRecord {
  std::string environment;
  std::string user;
  std::string permission;  // redeploy
  std::string granted_by;
  int64_t granted_at = 0;
};

struct AuditFilter {
  std::string action_prefix;
  std::string subject;
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema version after migrations.
  virtual int64_t SchemaVersion() = 0;
  // "ok" when the database answers.
  virtual Status Ping() = 0;

  virtual Status PutEnvironment(const EnvironmentRecord& env) = 0;
  virtual Result<EnvironmentRecord> GetEnvironment(const std::string& name) = 0;
  virtual Result<std::vector<EnvironmentRecord>> ListEnvironments(const Page& page) = 0;

  virtual Status PutTarget(const TargetRecord& target) = 0;
  virtual Result<TargetRecord> GetTarget(const std::string& name) = 0;
  virtual Result<std::vector<TargetRecord>> ListTargets(const Page& page) = 0;

  virtual Status PutAgent(const AgentRecord& agent) = 0;
  virtual Result<AgentRecord> GetAgent(const std::string& name) = 0;
  virtual Result<std::vector<AgentRecord>> ListAgents(const Page& page) = 0;

  virtual Status CreateEnrollToken(const EnrollTokenRecord& token) = 0;
  virtual Result<EnrollTokenRecord> FindEnrollToken(const std::string& token_hash) = 0;
  // Appends `agent` to the token's used_by list.
  virtual Status MarkEnrollTokenUsed(const std::string& token_hash, const std::string& agent) = 0;

  // Stores a new spec version of the application (version = previous + 1).
  virtual Result<ApplicationRecord> PutApplication(const ApplicationRecord& app) = 0;
  virtual Result<ApplicationRecord> GetApplication(const std::string& name) = 0;
  virtual Result<std::vector<ApplicationRecord>> ListApplications(const Page& page) = 0;

  // kAlreadyExists when the number is taken in that application.
  virtual Status CreateRelease(const ReleaseRecord& release) = 0;
  virtual Result<ReleaseRecord> GetRelease(const std::string& app, const std::string& number) = 0;
  virtual Result<std::vector<ReleaseRecord>> ListReleases(const std::string& app,
                                                         const Page& page) = 0;

  // Assigns the next build number of the release atomically and returns the record.
  virtual Result<BuildRecord> CreateBuild(const BuildRecord& build) = 0;
  virtual Result<BuildRecord> GetBuild(const std::string& app, const std::string& release,
                                       int64_t number) = 0;
  virtual Result<std::vector<BuildRecord>> ListBuilds(const std::string& app,
                                                     const std::string& release,
                                                     const Page& page) = 0;

  // Seals the build by hand (idempotent). Returns true when sealed now, false
  // when it was sealed by hand already; kNotFound for an unknown build.
  virtual Result<bool> SealBuild(const std::string& app, const std::string& release, int64_t number,
                                 int64_t at, const std::string& by) = 0;

  // Immutability lives here: the same (build, name) with another sha256 is
  // kConflict (also when its blob was removed); with the same sha256 it is a
  // no-op that returns false. A new name on a sealed build (BuildRecord::
  // sealed(), checked in the same transaction) is kFailedPrecondition.
  // Returns true when the record was added.
  virtual Result<bool> AddArtifact(const ArtifactRecord& artifact) = 0;
  // Clears the tombstone of artifact `name` when it records `sha256` and its
  // blob was removed; true when it did (the caller has stored the bytes).
  virtual Result<bool> RestoreArtifactBlob(const std::string& app, const std::string& release,
                                           int64_t build, const std::string& name,
                                           const std::string& sha256) = 0;
  // Retention: marks the blobs of the build's artifacts removed at `at`,
  // keeping the records, unless a deployment of the build is still to run
  // (scheduled, waiting, queued, running); then changes nothing and returns
  // false.
  virtual Result<bool> MarkArtifactBlobsRemoved(const std::string& app, const std::string& release,
                                                int64_t build, int64_t at) = 0;
  virtual Result<ArtifactRecord> GetArtifact(const std::string& app, const std::string& release,
                                             int64_t build, const std::string& name) = 0;
  virtual Result<std::vector<ArtifactRecord>> ListArtifacts(const std::string& app,
                                                           const std::string& release,
                                                           int64_t build) = 0;
  // Removes a build's artifact records. Retention does not use it: it keeps
  // the records (MarkArtifactBlobsRemoved).
  virtual Status DeleteArtifacts(const std::string& app, const std::string& release,
                                 int64_t build) = 0;
  // Every build of every application, oldest first (retention).
  virtual Result<std::vector<BuildRecord>> ListAllBuilds() = 0;
  // Every sha256 referenced by an artifact record whose blob is not removed.
  virtual Result<std::vector<std::string>> ReferencedBlobs() = 0;
  // Every artifact record of these bytes (the same archive uploaded under
  // several builds or names), tombstones included, oldest first; empty when
  // there is none.
  virtual Result<std::vector<ArtifactRecord>> FindArtifactsBySha256(const std::string& sha256) = 0;

  // kAlreadyExists when taken.
  virtual Status CreateUser(const UserRecord& user) = 0;
  virtual Result<UserRecord> GetUser(const std::string& name) = 0;
  virtual Result<std::vector<UserRecord>> ListUsers(const Page& page) = 0;

  virtual Result<TokenRecord> CreateToken(const TokenRecord& token) = 0;
  // Looks a token up by its hash; kNotFound when unknown.
  virtual Result<TokenRecord> FindTokenByHash(const std::string& token_hash) = 0;

  // ---- deployments
  // Assigns the id.
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

  // ---- grants
  // Returns true when added, false when the user held it already.
  virtual Result<bool> PutGrant(const GrantRecord& grant) = 0;
  // Returns true when removed, false when the user did not hold it.
  virtual Result<bool> DeleteGrant(const std::string& environment, const std::string& user,
                                   const std::string& permission) = 0;
  // By user, then permission.
  virtual Result<std::vector<GrantRecord>> ListGrants(const std::string& environment) = 0;
  virtual Result<bool> HasGrant(const std::string& environment, const std::string& user,
                                const std::string& permission) = 0;

  virtual Status AppendAudit(const AuditRecord& entry) = 0;

  // Runs `body` in one IMMEDIATE transaction: the writes it makes through
  // this store from this thread commit together when it returns OK, and none
  // does when it returns an error (or throws). A write inside that fails is
  // undone alone and its error returned to `body`. Other threads' calls wait
  // until it ends, so `body` must not wait for them. Used to record a change
  // together with its audit entry: neither is ever kept without the other.
  [[nodiscard]] virtual Status Atomically(const std::function<Status()>& body) = 0;
  // Newest first.
  virtual Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& filter,
                                                    const Page& page) = 0;
};

struct SqliteStoreOptions {
  std::string path;  // the database file; created when missing
  int busy_timeout_ms = 5000;
};

// Opens (creating if needed) and migrates the SQLite database.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

}  // namespace reprise
