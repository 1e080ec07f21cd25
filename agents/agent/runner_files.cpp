// The simple file operations: write-file, ensure-dir, delete. Each path is
// checked against the target root first (Checked, runner_internal.h). None
// writes into an existing file: write-file replaces it (temp + rename), so a
// file a release shares with another (incremental releases) is never changed
// in place; the other releases' stamps are taken again afterwards.
#include <sys/stat.h>

#include "agents/agent/runner_internal.h"
#include "common/fs.h"

namespace reprise {
namespace agent_runner {

namespace fs = std::filesystem;

OperationOutcome RunWriteFile(const fs::path& root, const WriteFileOp& o, const RunnerLog& log) {
  auto p = Checked(root, o.path, false);
  if (!p.ok()) return FailWith(p.status());
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(*p, ec))) {
    return OperationOutcome::Failed("write-file: " + o.path + " is a directory");
  }
  fs::create_directories(p->parent_path(), ec);
  if (ec) return OperationOutcome::Failed("write-file: " + ec.message());
  const Layout l{root};
  const std::vector<std::string> restamp = StampsAffectedBy(l, *p);
  Status st = WriteFileAtomic(*p, o.content, o.mode & 07777);
  Restamp(l, restamp);
  if (!st.ok()) return OperationOutcome::Failed("write-file: " + st.message());
  log(LogLevel::kInfo, "wrote " + o.path + " (" + std::to_string(o.content.size()) + " bytes)");
  return OperationOutcome::Succeeded();
}

OperationOutcome RunEnsureDir(const fs::path& root, const EnsureDirOp& o, const RunnerLog& log) {
  auto p = Checked(root, o.path, false);
  if (!p.ok()) return FailWith(p.status());
  std::error_code ec;
  auto stt = fs::symlink_status(*p, ec);
  if (fs::exists(stt) && !fs::is_directory(stt)) {
    return OperationOutcome::Failed("ensure-dir: " + o.path + " exists and is not a directory");
  }
  fs::create_directories(*p, ec);
  if (ec) return OperationOutcome::Failed("ensure-dir: " + ec.message());
  if (::chmod(p->c_str(), o.mode & 07777) != 0) {
    return OperationOutcome::Failed("ensure-dir: " + ErrnoText("chmod"));
  }
  log(LogLevel::kInfo, "directory " + o.path + " exists");
  return OperationOutcome::Succeeded();
}

OperationOutcome RunDelete(const fs::path& root, const DeleteOp& o, const RunnerLog& log) {
  auto p = Checked(root, o.path, false);
  if (!p.ok()) return FailWith(p.status());
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(*p, ec))) {
    log(LogLevel::kInfo, o.path + " does not exist; nothing to delete");
    return OperationOutcome::Succeeded();
  }
  const Layout l{root};
  const std::vector<std::string> restamp = StampsAffectedBy(l, *p);
  auto n = fs::remove_all(*p, ec);
  Restamp(l, restamp);
  if (ec) return OperationOutcome::Failed("delete: " + ec.message());
  log(LogLevel::kInfo, "deleted " + o.path + " (" + std::to_string(n) + " entries)");
  return OperationOutcome::Succeeded();
}

}  // namespace agent_runner
}  // namespace reprise
