#include "agents/agent/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/crypto.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// More cached releases than this are not listed (the answer stays small).
constexpr size_t kMaxListedReleases = 1000;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Empty when a file can be created, written and removed directly under root.
std::string TryWrite(const fs::path& root) {
  const fs::path probe = root / (".reprise-probe-" + RandomHex(6));
  int fd = ::open(probe.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Errno("cannot create a file in " + root.string());
  std::string problem;
  if (::write(fd, "x", 1) != 1) problem = Errno("cannot write in " + root.string());
  if (::close(fd) != 0 && problem.empty()) problem = Errno("cannot write in " + root.string());
  if (::unlink(probe.c_str()) != 0 && problem.empty())
    problem = Errno("cannot remove a file from " + root.string());
  return problem;
}

std::vector<std::string> CachedReleases(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(root / ".reprise" / "releases", ec);
  for (; !ec && it != fs::directory_iterator() && out.size() < kMaxListedReleases;
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) out.push_back(it->path().filename().string());
  }
  return out;
}

}  // namespace

ProbeReport ProbeRoot(const fs::path& root) {
  ProbeReport r;
  r.problem = TryWrite(root);
  r.writable = r.problem.empty();
  struct statvfs vfs {};
  if (::statvfs(root.c_str(), &vfs) == 0)
    r.free_bytes = static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
  r.cached_releases = CachedReleases(root);
  return r;
}

ProbeReport UnwritableRoot(std::string problem) {
  ProbeReport r;
  r.problem = std::move(problem);
  return r;
}

std::string ProbeReportToJson(const ProbeReport& r) {
  json j = {{"writable", r.writable},
            {"problem", r.problem},
            {"free_bytes", r.free_bytes},
            {"cached_releases", r.cached_releases}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<ProbeReport> ProbeReportFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ProbeReport r;
    r.writable = j.at("writable").get<bool>();
    r.problem = j.value("problem", "");
    r.free_bytes = j.value("free_bytes", uint64_t{0});
    r.cached_releases = j.value("cached_releases", std::vector<std::string>{});
    return r;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad probe report: ") + e.what());
  }
}

}  // namespace reprise
