// DeploymentEngine's life cycle (Start, Stop, Tick, WaitIdle) and what it
// reads back to callers: gate states, where builds are deployed, a running
// deployment's manual step and transfer progress, and waiting for log lines.
// The engine's rooms: requests.cpp (user requests), permissions.cpp,
// gates.cpp, scheduler.cpp, dispatcher.cpp, run.cpp, journal.cpp,
// recovery.cpp, read_back.cpp; the shared state is engine_internal.h.
// Threading: Start/Stop from one thread; the rest from any thread (they take
// `mu` or `log_mu` briefly, or a Running's own mu).
#include "server/engine/engine.h"

#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "server/engine/engine_internal.h"

namespace reprise {

using namespace engine_internal;
using nlohmann::json;

DeploymentEngine::DeploymentEngine() : impl_(std::make_shared<Impl>()) {}

DeploymentEngine::~DeploymentEngine() { Stop(); }

Result<std::unique_ptr<DeploymentEngine>> DeploymentEngine::Start(EngineOptions options) {
  if (options.store == nullptr) return InvalidArgument("the engine needs a store");
  std::unique_ptr<DeploymentEngine> engine(new DeploymentEngine());
  Impl& impl = *engine->impl_;
  impl.o = options;
  impl.store = options.store;
  impl.clock = options.clock ? options.clock : &SystemClock::Instance();
  if (options.lease <= options.lease_renew || options.lease_renew.count() <= 0)
    return InvalidArgument("the lease (" + std::to_string(options.lease.count()) +
                           " ms) must be longer than its renewal period (" +
                           std::to_string(options.lease_renew.count()) + " ms)");
  impl.server_id = options.server_id.empty() ? "engine-" + RandomHex(6) : options.server_id;
  impl.renewed_at = impl.clock->Now();
  impl.RenewLeases();  // present (and known to others) before taking anything over
  impl.Recover();
  impl.FlushLogs();  // what recovery found is in the log before anyone can ask
  impl.threads.emplace_back([&impl] { impl.LogFlushLoop(); });
  impl.threads.emplace_back([&impl] { impl.LeaseLoop(); });
  if (options.start_threads) {
    impl.loop = std::make_unique<EngineLoop>(
        *impl.clock, [&impl] { impl.OnDeadline(); }, [&impl] { impl.OnClockSet(); });
    // Deployment windows open with time: waiting ones are re-checked.
    impl.loop->Every(options.gate_recheck, [&impl] {
      impl.last_recheck = impl.clock->Now();
      impl.RecheckWaiting();
      impl.Dispatch();
    });
    // Due while the server was down: fired (or expired) at once, then the
    // timer is armed for the next one.
    impl.loop->Post([&impl] { impl.OnDeadline(); });
    impl.loop->Start();
    impl.threads.emplace_back([&impl] { impl.ReadBackLoop(); });
  }
  return engine;
}

void DeploymentEngine::Stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping && impl_->threads.empty()) return;
    impl_->stopping = true;
    for (auto& [id, r] : impl_->running) r->cancel.Cancel();
  }
  impl_->log_cv.notify_all();
  impl_->pending_cv.notify_all();
  impl_->read_back_cv.notify_all();
  impl_->slot_cv.notify_all();
  impl_->retry_cv.notify_all();
  impl_->lease_cv.notify_all();
  if (impl_->loop) impl_->loop->Stop();
  // Running deployments end as interrupted (their cancel token is set).
  std::map<int64_t, std::thread> runs;
  {
    std::lock_guard lock(impl_->mu);
    runs.swap(impl_->run_threads);
    impl_->ended_runs.clear();
  }
  for (auto& [id, t] : runs)
    if (t.joinable()) t.join();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  impl_->threads.clear();
  impl_->FlushLogs();
  // Gone: other servers need not wait for this one's presence to lapse.
  auto left = impl_->store->TryTakeLease(Impl::kPresencePrefix + impl_->server_id, impl_->server_id,
                                         impl_->Now(), 0);
  (void)left;
}

void DeploymentEngine::Tick() {
  Impl& impl = *impl_;
  if (impl.loop)
    impl.loop->RunAndWait([&impl] { impl.Tick(); });
  else
    impl.Tick();
}

void DeploymentEngine::BeginShutdown() {
  impl_->shutting_down = true;
  impl_->log_cv.notify_all();
}

bool DeploymentEngine::ShuttingDown() const { return impl_->shutting_down; }
const std::string& DeploymentEngine::ServerId() const { return impl_->server_id; }
Store* DeploymentEngine::engine_store() const { return impl_->store; }
const Clock& DeploymentEngine::engine_clock() const { return *impl_->clock; }

bool DeploymentEngine::WaitIdle(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    impl_->Wake();
    auto active = impl_->store->ListDeployments({"", "", {"queued", "running"}}, {1, 0});
    if (active.ok() && active->empty()) return true;
    std::unique_lock lock(impl_->mu);
    impl_->idle_cv.wait_for(lock, std::chrono::milliseconds(50));
  }
  return false;
}

Result<std::vector<GateState>> DeploymentEngine::Gates(const DeploymentRecord& d) {
  auto spec = ReleaseSpec(*impl_->store, d.application, d.release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(d.stage);
  if (stage == nullptr) return NotFound("stage '" + d.stage + "' not found");
  auto gates = EvaluateGates(*impl_->store, *impl_->clock, d, *spec, *stage, nullptr);
  if (impl_->o.agents != nullptr && Impl::StagePlanNeeds(*spec, *stage).touches_targets)
    gates.push_back(AgentsGate(*impl_->o.agents, SplitCsv(d.targets_csv)));
  return gates;
}

Result<std::vector<StageView>> DeploymentEngine::DeployedWhere(const std::string& app) {
  Store& store = *impl_->store;
  auto a = store.GetApplication(app);
  if (!a.ok()) return a.status();
  auto spec = ParseAppSpec(a->spec_json, "application spec");
  if (!spec.ok()) return spec.status();
  json holds = json::parse(a->hold_json, nullptr, false);
  std::vector<StageView> out;
  for (const auto& s : spec->pipeline) {
    StageView v;
    v.stage = s.stage;
    v.environment = s.environment;
    v.is_protected = s.is_protected;
    v.auto_promote = s.auto_promote;
    if (holds.is_object() && holds.contains(s.stage)) v.hold_json = holds[s.stage].dump();
    auto current = store.CurrentBuilds(app, s.stage);
    if (!current.ok()) return current.status();
    for (const auto& t : s.targets) {
      TargetCurrent c{t, "", 0, 0, 0, ""};
      for (const auto& cur : *current)
        if (cur.target == t) c = cur;
      v.targets.push_back(c);
    }
    auto builds = store.SucceededBuilds(app, s.stage, 11);
    if (!builds.ok()) return builds.status();
    for (const auto& b : *builds) {
      bool is_current = std::any_of(
          v.targets.begin(), v.targets.end(),
          [&](const TargetCurrent& c) { return c.release == b.release && c.build == b.build; });
      if (!is_current && v.rollback_candidates.size() < 10) v.rollback_candidates.push_back(b);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::optional<PendingManual> DeploymentEngine::Manual(int64_t id) const {
  std::shared_ptr<Running> r = impl_->FindRunning(id);
  if (!r) return std::nullopt;
  std::lock_guard lock(r->mu);
  return r->manual;
}

std::optional<TransferProgress> DeploymentEngine::Progress(int64_t id,
                                                           const std::string& target) const {
  std::shared_ptr<Running> r = impl_->FindRunning(id);
  if (!r) return std::nullopt;
  std::lock_guard lock(r->mu);
  auto p = r->progress.find(target);
  if (p == r->progress.end()) return std::nullopt;
  return p->second;
}

void DeploymentEngine::ReportProgress(const std::string& target, const TransferProgress& progress) {
  std::shared_ptr<Running> r;
  {
    std::lock_guard lock(impl_->mu);
    auto t = impl_->target_deployment.find(target);
    if (t == impl_->target_deployment.end()) return;
    auto it = impl_->running.find(t->second);
    if (it == impl_->running.end()) return;
    r = it->second;
  }
  std::lock_guard lock(r->mu);
  r->progress[target] = progress;
}

int64_t DeploymentEngine::AddLogListener(std::function<void()> listener) {
  return impl_->log_cv.Add(std::move(listener));
}

void DeploymentEngine::RemoveLogListener(int64_t handle) { impl_->log_cv.Remove(handle); }

bool DeploymentEngine::WaitForLog(int64_t id, int64_t after_seq,
                                  std::chrono::milliseconds timeout) const {
  auto has_news = [&] {
    auto lines = impl_->store->ListDeploymentLog(id, after_seq, 1);
    if (lines.ok() && !lines->empty()) return true;
    auto d = impl_->store->GetDeployment(id);
    return !d.ok() || IsFinal(d->status);
  };
  if (has_news()) return true;
  std::unique_lock lock(impl_->log_mu);
  if (impl_->shutting_down) return false;
  impl_->log_cv.wait_for(lock, timeout);
  lock.unlock();
  return has_news();
}

}  // namespace reprise
