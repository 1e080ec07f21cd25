// Running operations (caller threads): each goes to the target's agent, or
// to the in-process local agent, and its log lines, progress and outcome come
// back; cancelling sends `cancel` and waits for the agent to confirm.
#include <nlohmann/json.hpp>

#include "server/hub/agent_hub_internal.h"

namespace reprise {

using namespace hub_internal;

namespace {

using json = nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

Status AgentHub::Impl::ResolveTarget(const TargetInfo& in, std::string* agent, std::string* path) {
  *agent = in.agent;
  *path = in.path;
  if (agent->empty() || path->empty()) {
    auto rec = o.store->GetTarget(in.name);
    if (!rec.ok()) return rec.status().WithContext("target " + in.name);
    if (agent->empty()) *agent = rec->agent;
    if (path->empty()) *path = rec->path;
  }
  if (agent->empty()) return FailedPrecondition("target " + in.name + " has no agent");
  return Status::Ok();
}

Result<fs::path> AgentHub::Impl::LocalRoot(const std::string& target, const std::string& path) {
  auto root = local_runner->ResolveTargetRoot(path);
  if (root.ok()) return root;
  std::string hint = root.status().code() == Code::kPermissionDenied
                         ? " (reprise-server --local-agent-root sets that root)"
                         : "";
  return Status(root.status().code(), "target " + target + ": " + root.status().message() + hint);
}

std::shared_ptr<Conn> AgentHub::Impl::OnlineConn(const std::string& agent, Status* why) {
  std::lock_guard<std::mutex> g(mu);
  auto it = online.find(agent);
  if (it == online.end()) {
    *why = Unavailable("agent " + agent + " is offline");
    return nullptr;
  }
  if (!it->second->approved) {
    *why = Unavailable("agent " + agent + " is not approved");
    return nullptr;
  }
  return it->second;
}

namespace {

// An agent's log line into the step's log (process output kept apart).
void WriteLine(StepLog& log, LogLevel level, std::string_view text) {
  if (level == LogLevel::kOutput) {
    log.Output(text);
  } else {
    log.Write(level, text);
  }
}

}  // namespace

OperationOutcome AgentHub::Impl::RunOp(const TargetInfo& target, const ResolvedOperation& op,
                                       const DeployLabel& label, StepLog& log,
                                       const CancelToken& cancel) {
  std::string agent, path;
  Status st = ResolveTarget(target, &agent, &path);
  if (!st.ok()) return OperationOutcome::Error(st);
  ProgressFn progress;
  if (o.on_progress) {
    progress = [this, name = target.name](const TransferProgress& p) { o.on_progress(name, p); };
  }
  OperationOutcome out = agent == kLocalAgent
                             ? RunLocal(target.name, path, op, label, log, cancel, progress)
                             : RunRemote(agent, path, op, label, log, cancel, progress);
  log.FinishOutput();
  return out;
}

OperationOutcome AgentHub::Impl::RunLocal(const std::string& target, const std::string& path,
                                          const ResolvedOperation& op, const DeployLabel& label,
                                          StepLog& log, const CancelToken& cancel,
                                          const ProgressFn& progress) {
  if (!o.local_agent || !local_runner) {
    return OperationOutcome::Error(Unavailable("the local agent is not enabled"));
  }
  auto root = LocalRoot(target, path);
  if (!root.ok()) {
    if (root.status().code() == Code::kPermissionDenied) {
      return OperationOutcome::Failed(root.status().message());
    }
    return OperationOutcome::Error(root.status());
  }
  StoreSource source(o.blobs);
  RunnerLog rlog = [&log](LogLevel level, std::string_view text) { WriteLine(log, level, text); };
  return local_runner->Run(path, op, label, source, rlog, cancel, progress);
}

OperationOutcome AgentHub::Impl::RunRemote(const std::string& agent, const std::string& path,
                                           const ResolvedOperation& op, const DeployLabel& label,
                                           StepLog& log, const CancelToken& cancel,
                                           const ProgressFn& progress) {
  Status why;
  auto c = OnlineConn(agent, &why);
  if (!c) return OperationOutcome::Error(why);

  const uint64_t id = next_id++;
  json opj = json::parse(OperationToJson(op));
  std::string payload;
  std::string payload_what = "write-file content";
  if (auto* w = std::get_if<WriteFileOp>(&op)) {
    payload = w->content;  // raw bytes, not JSON text
    opj["content"] = "";
  }
  // A composed manifest may outgrow the header: it goes in the payload.
  auto* compose = std::get_if<ComposeReleaseOp>(&op);
  if (compose) {
    payload = compose->manifest_json;
    opj["manifest_json"] = "";
    payload_what = "compose-release: the composed manifest";
  }
  // An operation too large for one frame fails on its own; the connection
  // and the agent's other work are not affected.
  if (payload.size() > protocol::kMaxPayloadBytes) {
    return OperationOutcome::Failed(
        payload_what + " of " + std::to_string(payload.size()) + " bytes exceeds the " +
        std::to_string(protocol::kMaxPayloadBytes) + "-byte limit of a remote agent");
  }
  protocol::Run run{id, path, label.release, label.build, Dump(opj), std::nullopt};
  // Limits for what the agent extracts: the build, or A's artifact when the
  // target no longer has A's release.
  if (label.limits && (std::holds_alternative<DeployArtifactOp>(op) || compose))
    run.limits = ArchiveLimitsToJson(*label.limits);
  std::string header = protocol::Encode(run);
  if (header.size() > protocol::kMaxHeaderBytes) {
    return OperationOutcome::Failed(std::string(OperationKind(op)) + ": the operation takes " +
                                    std::to_string(header.size()) + " bytes to send, over the " +
                                    std::to_string(protocol::kMaxHeaderBytes) +
                                    "-byte limit of a remote agent");
  }

  auto p = std::make_shared<PendingOp>();
  p->conn_id = c->id;
  p->agent = agent;
  if (auto* d = std::get_if<DeployArtifactOp>(&op)) p->sha256 = d->sha256;
  if (compose) p->sha256 = compose->source_sha256;  // A's artifact, when A's release is gone
  {
    std::lock_guard<std::mutex> g(mu);
    ops[id] = p;
  }
  Status sent = c->ch->Send(std::move(header), std::move(payload));
  if (!sent.ok()) {
    std::lock_guard<std::mutex> g(mu);
    ops.erase(id);
    return OperationOutcome::Failed(std::string(OperationKind(op)) + ": " + sent.message());
  }
  OperationOutcome result = AwaitOutcome(c, *p, id, log, cancel, progress);
  {
    std::lock_guard<std::mutex> g(mu);
    ops.erase(id);
  }
  return result;
}

OperationOutcome AgentHub::Impl::AwaitOutcome(const std::shared_ptr<Conn>& c, PendingOp& p,
                                              uint64_t id, StepLog& log, const CancelToken& cancel,
                                              const ProgressFn& progress) {
  const std::string& agent = p.agent;
  std::optional<Steady::time_point> cancel_sent;
  while (true) {
    std::deque<std::pair<LogLevel, std::string>> logs;
    std::optional<TransferProgress> prog;
    std::optional<OperationOutcome> result;
    bool lost = false;
    {
      std::unique_lock<std::mutex> lk(p.m);
      p.cv.wait_for(lk, std::chrono::milliseconds(100),
                    [&] { return !p.logs.empty() || p.progress || p.result || p.lost; });
      logs.swap(p.logs);
      prog.swap(p.progress);
      result = p.result;
      lost = p.lost;
    }
    for (auto& [level, text] : logs) WriteLine(log, level, text);
    if (prog && progress) progress(*prog);
    if (result) return *result;
    if (lost) {
      return OperationOutcome::Error(
          Unavailable("agent " + agent + " disconnected during the operation"));
    }
    if (cancel.IsCancelled()) {
      if (!cancel_sent) {
        cancel_sent = Steady::now();
        SendControl(c, protocol::Cancel{id});
      } else if (Steady::now() - *cancel_sent > std::chrono::seconds(10)) {
        return OperationOutcome::Error(
            Cancelled("cancelled; agent " + agent + " did not confirm in time"));
      }
    }
  }
}

Operations& AgentHub::operations() { return *impl_->default_ops; }

std::unique_ptr<Operations> AgentHub::OperationsFor(const ExecutionContext& context) {
  return std::make_unique<Impl::HubOps>(impl_.get(),
                                        impl_->DeployLabelFor(context.release, context.build));
}

}  // namespace reprise
