// The engine's records: deployment log lines (batched, one transaction per
// flush), audit entries of what the server does by itself, writes retried
// until they land (Persist), and the cache of parsed release specs.
// Threading: Log/Audit/Persist are called from any engine thread; FlushLogs
// runs on the log flusher thread (LogFlushLoop) and on final transitions.
// pending_mu guards pending_lines, flush_mu orders batches, specs_mu the cache.

#include "common/log.h"
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;

void DeploymentEngine::Impl::Log(int64_t id, const std::string& target, const std::string& level,
                                 const std::string& text) {
  {
    std::lock_guard lock(pending_mu);
    pending_lines.push_back({id, 0, Now(), target, level, text});
  }
  // No wake-up: the flusher writes what gathered every 50 ms, and a final
  // transition writes the lines with the result. A transaction (an fsync)
  // per line would hold the store's write lock against the deployment's
  // own transitions on its critical path.
}

void DeploymentEngine::Impl::FlushLogs() {
  std::lock_guard flushing(flush_mu);
  std::vector<DeploymentLogRecord> batch;
  {
    std::lock_guard lock(pending_mu);
    batch.swap(pending_lines);
  }
  if (batch.empty()) return;
  Status st = store->AppendDeploymentLogs(batch);
  if (!st.ok()) {
    // Kept for the next flush (one every 50 ms), a few times at most.
    bool keep = ++log_write_failures < kWriteAttempts;
    log::Warn("engine.log-write-failed", {{"lines", batch.size()},
                                          {"outcome", keep ? "retrying" : "lost"},
                                          {"error", st.ToString()}});
    if (keep) {
      std::lock_guard lock(pending_mu);
      pending_lines.insert(pending_lines.begin(), batch.begin(), batch.end());
      return;
    }
  }
  log_write_failures = 0;
  log_cv.notify_all();
}

void DeploymentEngine::Impl::LogFlushLoop() {
  std::unique_lock lock(pending_mu);
  while (true) {
    pending_cv.wait_for(lock, std::chrono::milliseconds(50));
    bool stop;
    {
      std::lock_guard l(mu);
      stop = stopping;
    }
    lock.unlock();
    FlushLogs();
    lock.lock();
    if (stop && pending_lines.empty()) return;
  }
}

AuditRecord DeploymentEngine::Impl::AuditOf(const std::string& actor, const std::string& action,
                                            int64_t id, const std::string& summary) {
  return {0, Now(), actor, action, "deployment " + std::to_string(id), summary};
}

// For what the server does by itself (expiry, recovery, automation); a
// user's change is audited in its own transaction (Store::Atomically).
void DeploymentEngine::Impl::Audit(const std::string& actor, const std::string& action, int64_t id,
                                   const std::string& summary) {
  AuditRecord entry = AuditOf(actor, action, id, summary);
  Status st = Persist("the audit entry '" + action + "' of deployment " + std::to_string(id),
                      [&] { return store->AppendAudit(entry); });
  if (!st.ok()) Log(id, "", "error", "the audit entry '" + action + "' was lost: " + st.message());
}

Result<std::shared_ptr<const AppSpec>> DeploymentEngine::Impl::Spec(const std::string& app,
                                                                    const std::string& release) {
  {
    std::lock_guard lock(specs_mu);
    auto it = specs.find({app, release});
    if (it != specs.end()) return it->second;
  }
  auto spec = ReleaseSpec(*store, app, release);
  if (!spec.ok()) return spec.status();
  auto shared = std::make_shared<const AppSpec>(std::move(spec).value());
  std::lock_guard lock(specs_mu);
  if (specs.size() > 1000) specs.clear();
  specs[{app, release}] = shared;
  return shared;
}

// Waits before retry `n` (1, 2, ...): 100 ms, 200 ms, 400 ms on the
// engine's clock (a test's fake clock must be moved; at most 30 s of real
// time are spent waiting for it). False when the engine stops.
bool DeploymentEngine::Impl::Backoff(int n) {
  auto delay = std::chrono::milliseconds(100) * (1 << std::min(n - 1, 4));
  TimePoint until = clock->Now() + delay;
  auto give_up = std::chrono::steady_clock::now() +
                 std::max<std::chrono::milliseconds>(delay, std::chrono::seconds(30));
  std::unique_lock lock(mu);
  while (!stopping && clock->Now() < until && std::chrono::steady_clock::now() < give_up)
    retry_cv.wait_for(lock, std::chrono::milliseconds(10));
  return !stopping;
}

// Runs `write` until it succeeds, kWriteAttempts times at most; each
// refusal, and giving up, is said on stderr naming `what`.
Status DeploymentEngine::Impl::Persist(const std::string& what,
                                       const std::function<Status()>& write) {
  Status st = write();
  for (int attempt = 2; !st.ok() && attempt <= kWriteAttempts; ++attempt) {
    log::Warn("engine.write-failed", {{"what", what},
                                      {"attempt", attempt - 1},
                                      {"attempts", kWriteAttempts},
                                      {"error", st.ToString()}});
    if (!Backoff(attempt - 1)) break;
    st = write();
  }
  if (!st.ok()) log::Error("engine.write-lost", {{"what", what}, {"error", st.ToString()}});
  return st;
}

}  // namespace reprise
