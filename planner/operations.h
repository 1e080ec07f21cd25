// The operations the executor hands to targets, with every variable already
// expanded, and the interfaces around running them:
//
//   ResolvedOperation  what to do on one target (values are real, secrets
//                      included: never log it unmasked)
//   Operations         runs a ResolvedOperation on a target; implemented by the
//                      agent hub (remote agent) and the local agent, a fake in tests
//   StepLog            where an operation writes its timestamped, masked log
//   CancelToken        cancellation and per-step deadlines
//
// Thread-safety: values are plain. CancelToken is thread-safe. A StepLog is
// used by one thread at a time. An Operations implementation must accept
// concurrent Run calls for different targets (parallel for-each-target).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/non_copyable.h"
#include "common/status.h"
#include "planner/execution_context.h"
#include "planner/plan.h"
#include "planner/variables.h"

namespace reprise {

// Paths are relative to the target's root directory (TargetInfo::path); the
// agent refuses unsafe ones.
struct DeployArtifactOp {
  std::string artifact;
  std::string sha256;  // from the execution context; the agent checks it
  std::string to;
  DeployMode mode = DeployMode::kAtomic;
  int keep = 3;
  // The build's manifest hash of this artifact (every entry's path, type,
  // mode, size and sha256), from the execution context: the tree the agent
  // extracts, or the cached release it switches to, must hash to it. Empty
  // for contexts stored before it was recorded.
  std::string manifest_hash = {};
  friend bool operator==(const DeployArtifactOp&, const DeployArtifactOp&) = default;
};
struct WriteFileOp {
  std::string path;
  std::string content;  // final bytes
  uint32_t mode = 0644;
  friend bool operator==(const WriteFileOp&, const WriteFileOp&) = default;
};
struct ExecOp {
  std::vector<std::string> argv;  // when empty, `command` runs under /bin/sh -c
  std::string command;
  int timeout_seconds = 0;  // 0: no limit of its own (the step deadline still applies)
  std::string cwd;          // relative to the target root; "" is the root
  std::map<std::string, std::string> env;
  std::vector<int> success_codes = {0};
  friend bool operator==(const ExecOp&, const ExecOp&) = default;
};
struct EnsureDirOp {
  std::string path;
  uint32_t mode = 0755;
  friend bool operator==(const EnsureDirOp&, const EnsureDirOp&) = default;
};
struct DeleteOp {
  std::string path;
  friend bool operator==(const DeleteOp&, const DeleteOp&) = default;
};
struct HttpCheckOp {
  std::string url;
  int expect_status = 200;
  int retries = 0;
  int delay_seconds = 1;
  int timeout_seconds = 10;
  friend bool operator==(const HttpCheckOp&, const HttpCheckOp&) = default;
};

// One component of a selective rollback: `path` (a manifest path, e.g.
// "bin/tool") goes back to what the earlier deployment A had.
struct RevertEntry {
  std::string path;
  std::string type;  // "delete" (A had none), "override" (A's version), "restore" (A's version)
  friend bool operator==(const RevertEntry&, const RevertEntry&) = default;
};
// Builds a new release from the live one (base_release, deployed by D) with
// the `reverts` taken back to A's versions, verifies it against the composed
// manifest and switches to it. Only the engine sends it (a selective
// rollback record); it is not a plan step.
struct ComposeReleaseOp {
  std::string to;                  // like DeployArtifactOp::to; "" = ROOT/current
  std::string base_release;        // D's release directory name; `current` must point to it
  std::string base_manifest_hash;  // D's manifest hash (the base release's metadata must match)
  // Where A's versions come from: A's cached release when the target still
  // has it, unchanged; otherwise A's artifact, fetched by sha256 through the
  // BlobSource and extracted to a temporary directory. All empty when A is
  // absent (then only "delete" reverts are possible).
  std::string source_release;
  std::string source_artifact;
  std::string source_sha256;
  std::string source_manifest_hash;  // A's tree must hash to it
  std::vector<RevertEntry> reverts;
  std::string manifest_json;  // the composed manifest (ManifestToJson); the result must match it
  std::string name;           // the new release directory name: "<base_release>+rr<record id>"
  int keep = 3;
  friend bool operator==(const ComposeReleaseOp&, const ComposeReleaseOp&) = default;
};

using ResolvedOperation = std::variant<DeployArtifactOp, WriteFileOp, ExecOp, EnsureDirOp, DeleteOp,
                                       HttpCheckOp, ComposeReleaseOp>;

// "deploy-artifact", "write-file", ... (the plan keyword).
std::string_view OperationKind(const ResolvedOperation& op);
// One line for logs and previews, e.g. "exec ./migrate.sh (cwd current)".
// Not masked: pass it through a Masker.
std::string DescribeOperation(const ResolvedOperation& op);
// A copy with every sensitive value replaced by "******" (for previews).
ResolvedOperation MaskOperation(const ResolvedOperation& op, const Masker& masker);

// {"type": "exec", "argv": [...], ...}; the agent protocol carries this.
// Decoding a compose-release is strict: unknown fields, fields of the wrong
// type and inconsistent values are refused with a message naming them.
std::string OperationToJson(const ResolvedOperation& op);
Result<ResolvedOperation> OperationFromJson(std::string_view json);

// Cancellation shared by a deployment and its steps. A child token is
// cancelled with its parent and also once its deadline (on the given clock)
// has passed. Operations poll IsCancelled() or block in WaitFor().
class CancelToken : NonCopyable {
 public:
  CancelToken();
  // A child: cancelled when `parent` is, or when `clock.Now() >= deadline`.
  // `parent` and `clock` must outlive the child.
  CancelToken(const CancelToken& parent, const Clock& clock, TimePoint deadline);

  void Cancel();
  bool IsCancelled() const;
  // True when this token (not its parent) ran out of time.
  bool DeadlineExceeded() const;
  std::optional<TimePoint> deadline() const { return deadline_; }

  // Blocks up to `duration` of real time; returns false early when cancelled.
  bool WaitFor(std::chrono::milliseconds duration) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  const CancelToken* parent_ = nullptr;
  const Clock* clock_ = nullptr;
  std::optional<TimePoint> deadline_;
};

enum class LogLevel { kInfo, kWarning, kError, kOutput };
std::string_view LogLevelName(LogLevel level);

// One log line of a deployment. `text` is already masked.
struct LogLine {
  TimePoint time;
  LogLevel level = LogLevel::kInfo;
  std::string step_id;  // Step::id, "" for lines about the whole plan
  SourcePosition position;
  std::string target;  // "" for plan-level lines
  std::string text;
};
using LogSink = std::function<void(const LogLine&)>;

// The log of one step on one target. Every line is masked and timestamped
// with the executor's clock before it reaches the sink.
class StepLog : NonCopyable {
 public:
  StepLog(const Clock& clock, const Masker& masker, std::string step_id, SourcePosition position,
          std::string target, LogSink sink);
  ~StepLog();

  void Info(std::string_view text) { Write(LogLevel::kInfo, text); }
  void Warning(std::string_view text) { Write(LogLevel::kWarning, text); }
  void Error(std::string_view text) { Write(LogLevel::kError, text); }
  void Write(LogLevel level, std::string_view text);

  // Process output in arbitrary chunks: split into lines, masked even when a
  // secret is split across chunks. Call FinishOutput() when the stream ends
  // (the destructor does too).
  void Output(std::string_view chunk);
  void FinishOutput();

 private:
  void EmitOutputLines(bool flush_partial);
  const Clock& clock_;
  const Masker& masker_;
  std::string step_id_;
  SourcePosition position_;
  std::string target_;
  LogSink sink_;
  StreamingMasker output_masker_;
  std::string output_line_;  // masked output not yet ended by a newline
};

// What became of one operation. A failure means the deployment failed (a
// non-zero exit, a failed check) and can be caught by `try`; an error means
// the orchestration broke (agent unreachable, protocol violation) and ends
// the deployment.
struct OperationOutcome {
  enum class Kind { kSucceeded, kFailed, kError };
  Kind kind = Kind::kSucceeded;
  std::string message;  // for kFailed
  Status error;         // for kError

  static OperationOutcome Succeeded() { return {}; }
  static OperationOutcome Failed(std::string message) {
    return {Kind::kFailed, std::move(message), Status()};
  }
  static OperationOutcome Error(Status status) { return {Kind::kError, "", std::move(status)}; }
  bool succeeded() const { return kind == Kind::kSucceeded; }
};

class Operations {
 public:
  virtual ~Operations() = default;
  // Runs `op` on `target`. Must return promptly (kFailed or kError with
  // Code::kCancelled) once `cancel` is cancelled or its deadline passes.
  // Called concurrently for different targets.
  virtual OperationOutcome Run(const TargetInfo& target, const ResolvedOperation& op, StepLog& log,
                               const CancelToken& cancel) = 0;
};

// A `manual` step: pauses the deployment until a user with `role` continues
// it. Implemented by the deployment engine.
struct ManualRequest {
  std::string step_id;
  SourcePosition position;
  std::string message;  // expanded and masked
  std::string role;     // "" : anyone who may deploy to the stage
};
class ManualContinuation {
 public:
  virtual ~ManualContinuation() = default;
  // kSucceeded when continued, kFailed (with who/why) when rejected, kError
  // when the wait itself broke. Must return once `cancel` is cancelled.
  virtual OperationOutcome WaitForContinue(const ManualRequest& request,
                                           const CancelToken& cancel) = 0;
};

}  // namespace reprise
