#include "cli/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/crypto.h"

namespace reprise::cli {

namespace {

constexpr size_t kMaxConfigBytes = 64 * 1024;

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string Errno() { return std::strerror(errno); }

}  // namespace

Result<ConfigFile> ReadConfigFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return ConfigFile{};
    return IoError("cannot open the config file " + path + ": " + Errno());
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return IoError("cannot stat the config file " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("the config file " + path + " is not a file");
  if (st.st_uid != ::geteuid())
    return PermissionDenied("the config file " + path +
                            " belongs to another user; it holds a token, so it is not used");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("the config file " + path + " may be read by other users (mode " +
                            mode + "); it holds a token: run 'chmod 600 " + path +
                            "' or 'reprise login' again");
  }
  if (static_cast<size_t>(st.st_size) > kMaxConfigBytes)
    return InvalidArgument("the config file " + path + " is too large");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  ConfigFile config;
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line =
        Trim(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    start = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    std::string key = eq == std::string::npos ? line : Trim(line.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : Trim(line.substr(eq + 1));
    if (eq == std::string::npos || (key != "server" && key != "token"))
      return InvalidArgument("the config file " + path + ", line " + std::to_string(line_no) +
                             ": expected 'server = URL' or 'token = TOKEN', got key '" + key + "'");
    (key == "server" ? config.server : config.token) = value;
  }
  return config;
}

Status WriteConfigFile(const std::string& path, const ConfigFile& config) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return IoError("cannot create " + dir.string() + ": " + Errno());
  }
  const std::string tmp = path + ".tmp-" + RandomHex(6);
  // 0600 from the first moment: no window in which others could read it.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IoError("cannot create " + tmp + ": " + Errno());
  std::string text =
      "# written by 'reprise login'; holds a token: keep it mode 0600\n"
      "server = " +
      config.server + "\ntoken = " + config.token + "\n";
  bool ok = ::fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  std::string error = ok ? "" : Errno();
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    error = Errno();
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return IoError("cannot write the config file " + path + ": " + error);
  }
  return Status::Ok();
}

Result<bool> RemoveConfigFile(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  return IoError("cannot remove the config file " + path + ": " + Errno());
}

}  // namespace reprise::cli
