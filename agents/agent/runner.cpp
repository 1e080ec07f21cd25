// AgentRunner: resolving a target root and dispatching each operation to the
// file that runs it (runner_deploy.cpp, runner_files.cpp, runner_exec.cpp,
// http_check.cpp) under the root's lock. The shared internals are in
// runner_internal.h.
#include "agents/agent/runner.h"

#include <mutex>
#include <type_traits>
#include <variant>

#include "agents/agent/http_check.h"
#include "agents/agent/runner_internal.h"

namespace reprise {

namespace fs = std::filesystem;
using namespace agent_runner;  // this module's own internals

AgentRunner::AgentRunner(RunnerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.watch_releases) impl_->watch = std::make_unique<ReleaseWatch>();
}
AgentRunner::~AgentRunner() = default;

AgentRunner::Impl::Impl() : settler_([this] { SettleLoop(); }) {}

AgentRunner::Impl::~Impl() {
  {
    std::lock_guard lock(settle_mu_);
    settle_stop_ = true;
  }
  settle_cv_.notify_all();
  settler_.join();
}

void AgentRunner::Impl::SettleLater(const Layout& l, std::vector<std::string> names,
                                    const StampBound& bound) {
  {
    std::lock_guard lock(settle_mu_);
    pending_[l.root.string()] = Pending{std::move(names), bound};
    if (!options.settle_stamps_in_background) return;
    settle_queue_.push_back(l.root);
  }
  settle_cv_.notify_all();
}

bool AgentRunner::Impl::SettlePending(const fs::path& root) {
  const std::string key = root.string();
  Pending p;
  {
    std::unique_lock lock(settle_mu_);
    // The settling thread works without the root's lock: wait for it.
    settled_cv_.wait(lock, [&] { return !settling_.count(key); });
    auto it = pending_.find(key);
    if (it == pending_.end()) return false;
    p = std::move(it->second);
    pending_.erase(it);
  }
  SettleStamps(Layout{root}, p.names, p.bound);
  return true;
}

bool AgentRunner::Impl::Unsettled(const fs::path& root) {
  std::lock_guard lock(settle_mu_);
  return pending_.count(root.string()) > 0 || settling_.count(root.string()) > 0;
}

// Settles each root queued, then arms the watch there; on stop, what is
// still queued is settled before the thread ends. Without the root's lock,
// so that reading the target's state does not wait: every operation that
// reads stamps or changes releases waits in SettlePending instead.
void AgentRunner::Impl::SettleLoop() {
  BackgroundPriority();
  std::unique_lock lock(settle_mu_);
  for (;;) {
    settle_cv_.wait(lock, [&] { return settle_stop_ || !settle_queue_.empty(); });
    if (settle_queue_.empty()) return;  // stopping, nothing left
    const fs::path root = std::move(settle_queue_.front());
    settle_queue_.pop_front();
    auto it = pending_.find(root.string());
    if (it == pending_.end()) continue;  // settled by an operation already
    Pending p = std::move(it->second);
    pending_.erase(it);
    settling_.insert(root.string());
    lock.unlock();
    SettleStamps(Layout{root}, p.names, p.bound);
    WatchReleases(Layout{root});
    lock.lock();
    settling_.erase(root.string());
    settled_cv_.notify_all();
  }
}

Result<fs::path> AgentRunner::ResolveTargetRoot(std::string_view target_path) const {
  if (target_path.empty()) return InvalidArgument("the target has no path");
  if (target_path.find('\0') != std::string_view::npos) return InvalidArgument("bad target path");
  fs::path p(target_path);
  std::error_code ec;
  fs::path allowed;
  if (!impl_->options.allowed_root.empty()) {
    allowed = fs::weakly_canonical(fs::absolute(impl_->options.allowed_root), ec);
    if (p.is_relative()) p = allowed / p;
  } else if (p.is_relative()) {
    return InvalidArgument("target path '" + std::string(target_path) + "' must be absolute");
  }
  p = p.lexically_normal();
  auto outside = [&] {
    return PermissionDenied("target path '" + std::string(target_path) +
                            "' is outside this agent's root " + allowed.string());
  };
  // Checked before the directory is created, so a refused target leaves
  // nothing behind, and again after, when symlinks on the way resolve.
  fs::path canon = fs::weakly_canonical(p, ec);
  if (ec) return IoError("target root " + p.string() + ": " + ec.message());
  if (!allowed.empty() && !IsWithin(canon, allowed)) return outside();
  fs::create_directories(p, ec);
  canon = fs::weakly_canonical(p, ec);
  if (ec) return IoError("target root " + p.string() + ": " + ec.message());
  if (!allowed.empty() && !IsWithin(canon, allowed)) return outside();
  if (!fs::is_directory(canon, ec)) {
    return FailedPrecondition("target root " + canon.string() + " is not a directory");
  }
  return canon;
}

void AgentRunner::CleanTemporaries(const fs::path& root) {
  auto lock = impl_->LockFor(root);
  std::lock_guard<std::mutex> g(*lock);
  impl_->SettlePending(root);
  CleanTmpKeepingStamps(Layout{root});
}

OperationOutcome AgentRunner::Run(std::string_view target_path, const ResolvedOperation& op,
                                  const DeployLabel& label, BlobSource& blobs, const RunnerLog& log,
                                  const CancelToken& cancel, const ProgressFn& progress) {
  auto root_or = ResolveTargetRoot(target_path);
  if (!root_or.ok()) {
    if (root_or.status().code() == Code::kPermissionDenied)
      return OperationOutcome::Failed(root_or.status().message());
    return OperationOutcome::Error(root_or.status());
  }
  const fs::path root = *root_or;
  if (cancel.IsCancelled()) return OperationOutcome::Error(Cancelled("cancelled before start"));
  auto lock = impl_->LockFor(root);
  std::unique_lock<std::mutex> guard(*lock);
  // The stamps an earlier deploy left to take, before anything reads them.
  impl_->SettlePending(root);

  OperationOutcome out = std::visit(
      [&](const auto& o) -> OperationOutcome {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, DeployArtifactOp>) {
          return impl_->Deploy(root, o, label, blobs, log, cancel, progress);
        } else if constexpr (std::is_same_v<T, ComposeReleaseOp>) {
          return impl_->Compose(root, o, label, blobs, log, cancel, progress);
        } else if constexpr (std::is_same_v<T, WriteFileOp>) {
          return RunWriteFile(root, o, log);
        } else if constexpr (std::is_same_v<T, EnsureDirOp>) {
          return RunEnsureDir(root, o, log);
        } else if constexpr (std::is_same_v<T, DeleteOp>) {
          return RunDelete(root, o, log);
        } else if constexpr (std::is_same_v<T, ExecOp>) {
          guard.unlock();  // a long-running process must not block the target's state
          return impl_->Exec(root, o, log, cancel);
        } else if constexpr (std::is_same_v<T, HttpCheckOp>) {
          guard.unlock();  // only talks to the network; retries may take a while
          return RunHttpCheck(o, log, cancel);
        } else {
          return OperationOutcome::Failed(std::string(OperationKind(op)) +
                                          " does not run on agents");
        }
      },
      op);
  // Whatever the operation changed, the releases verified now are watched
  // from here on (in the background; once settled, when stamps are pending).
  if (!impl_->Unsettled(root)) impl_->WatchReleases(Layout{root});
  return out;
}

bool AgentRunner::WatchedUnchanged(std::string_view target_path, const std::string& release) {
  auto root = ResolveTargetRoot(target_path);
  if (!root.ok() || !impl_->watch) return false;
  const Layout l{*root};
  auto meta = ReadMeta(l, release);
  return meta.ok() && impl_->watch->UnchangedSince(l.releases() / release, meta->tree_stamp);
}

void AgentRunner::Impl::WatchReleases(const Layout& l) {
  if (!watch) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(l.releases(), ec)) {
    if (!e.is_directory(ec)) continue;
    const std::string name = e.path().filename().string();
    watch->ArmLater(e.path(), [l, name] {
      auto meta = ReadMeta(l, name);
      return meta.ok() ? meta->tree_stamp : std::string();
    });
  }
}

}  // namespace reprise
