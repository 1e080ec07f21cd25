// exec: runs a process in the target root with a clean environment, streams
// its output to the log, and kills its process group on timeout, deadline or
// cancellation.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "agents/agent/runner_internal.h"
#include "common/fs.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using namespace agent_runner;  // this module's own internals

// What a step's process inherits from the agent: only what programs need to
// run (where to find commands, the home and temporary directories, locale and
// time zone). The agent's environment also holds its own secrets (the local
// agent runs inside the server, with REPRISE_ADMIN_TOKEN; a remote agent may
// have REPRISE_ENROLL_TOKEN), and a step's output goes into the deployment
// log, so nothing else is passed on; a step names what else it needs in its
// `env`.
std::map<std::string, std::string> ChildEnvironment() {
  static constexpr const char* kInherited[] = {
      "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"};
  std::map<std::string, std::string> env;
  for (const char* name : kInherited) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  return env;
}

}  // namespace

OperationOutcome AgentRunner::Impl::Exec(const fs::path& root, const ExecOp& op,
                                         const RunnerLog& log, const CancelToken& cancel) {
  fs::path cwd = root;
  if (!op.cwd.empty()) {
    if (!IsSafeRelativePath(op.cwd)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' escapes the target root");
    }
    std::error_code ec;
    fs::path c = fs::weakly_canonical(root / op.cwd, ec);
    if (ec || !IsWithin(c, root)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' escapes the target root");
    }
    if (!fs::is_directory(c, ec)) {
      return OperationOutcome::Failed("exec: cwd '" + op.cwd + "' is not a directory");
    }
    cwd = c;
  }
  std::vector<std::string> argv = op.argv;
  if (argv.empty()) {
    if (op.command.empty()) return OperationOutcome::Failed("exec: nothing to run");
    argv = {"/bin/sh", "-c", op.command};
  }
  std::map<std::string, std::string> env = ChildEnvironment();
  for (const auto& [k, v] : op.env) env[k] = v;
  env["REPRISE_TARGET_ROOT"] = root.string();
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return OperationOutcome::Error(IoError(ErrnoText("pipe")));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return OperationOutcome::Error(IoError(ErrnoText("pipe")));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  // The child gets stdin, stdout and stderr and nothing else, even an fd
  // someone opened without close-on-exec (the server's HTTP sockets): a
  // daemon a step leaves behind must not hold the server's ports. glibc does
  // this with close_range, or by walking /proc/self/fd.
  if (posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return OperationOutcome::Error(Internal("exec: cannot prepare the child's file descriptors"));
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return OperationOutcome::Failed("exec: cannot start " + argv[0] + ": " + strerror(rc));
  }
  log(LogLevel::kInfo, "started " + argv[0] + " (pid " + std::to_string(pid) + ")");

  using Steady = std::chrono::steady_clock;
  const auto started = Steady::now();
  std::optional<Steady::time_point> own_deadline;
  if (op.timeout_seconds > 0) own_deadline = started + std::chrono::seconds(op.timeout_seconds);
  enum class Stop { kNone, kTimeout, kCancelled, kDeadline } stop = Stop::kNone;
  std::optional<Steady::time_point> killed_at;
  bool sent_kill = false;
  int status = 0;
  bool reaped = false;
  std::optional<Steady::time_point> reaped_at;
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[16384];
  auto kill_group = [&](int sig) { ::kill(-pid, sig); };

  while (true) {
    if (stop == Stop::kNone) {
      if (own_deadline && Steady::now() >= *own_deadline)
        stop = Stop::kTimeout;
      else if (cancel.IsCancelled())
        stop = cancel.DeadlineExceeded() ? Stop::kDeadline : Stop::kCancelled;
      if (stop != Stop::kNone) {
        kill_group(SIGTERM);
        killed_at = Steady::now();
      }
    } else if (!sent_kill &&
               Steady::now() - *killed_at >= std::chrono::milliseconds(options.kill_grace_ms)) {
      kill_group(SIGKILL);
      sent_kill = true;
    }
    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
        reaped_at = Steady::now();
        if (stop != Stop::kNone && !sent_kill) {
          // The leader is gone: grandchildren of a killed step go too.
          kill_group(SIGKILL);
          sent_kill = true;
        }
      }
    }
    if (open_fds == 0 && reaped) break;
    // A background grandchild may hold the pipes open after the leader exits.
    if (reaped && Steady::now() - *reaped_at > std::chrono::milliseconds(500)) break;
    int n = ::poll(fds, 2, 50);
    if (n < 0 && errno != EINTR) break;
    for (auto& f : fds) {
      if (f.fd < 0 || !(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(f.fd, buf, sizeof buf);
      if (r > 0) {
        log(LogLevel::kOutput, std::string_view(buf, static_cast<size_t>(r)));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(f.fd);
        f.fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (!reaped) ::waitpid(pid, &status, 0);

  switch (stop) {
    case Stop::kTimeout:
      return OperationOutcome::Failed("exec: timed out after " +
                                      std::to_string(op.timeout_seconds) +
                                      " s; the process group was killed");
    case Stop::kDeadline:
      return OperationOutcome::Failed("exec: step deadline exceeded; the process group was killed");
    case Stop::kCancelled:
      return OperationOutcome::Error(Cancelled("exec cancelled; the process group was killed"));
    case Stop::kNone:
      break;
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    bool ok =
        std::find(op.success_codes.begin(), op.success_codes.end(), code) != op.success_codes.end();
    log(LogLevel::kInfo, "exit code " + std::to_string(code));
    if (ok) return OperationOutcome::Succeeded();
    return OperationOutcome::Failed("exec: exit code " + std::to_string(code));
  }
  if (WIFSIGNALED(status)) {
    return OperationOutcome::Failed("exec: killed by signal " + std::to_string(WTERMSIG(status)));
  }
  return OperationOutcome::Failed("exec: ended abnormally");
}

}  // namespace reprise
