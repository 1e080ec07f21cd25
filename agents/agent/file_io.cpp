// Shared file I/O of the agent's tree work (file_io.h).
#include "agents/agent/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace reprise::agent_runner {

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }
std::string Quoted(std::string_view path) { return "'" + std::string(path) + "'"; }

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}
Fd::Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Status WriteAll(int fd, const char* data, size_t size, const std::string& shown) {
  while (size > 0) {
    ssize_t w = ::write(fd, data, size);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return IoError(ErrnoText("writing " + Quoted(shown)));
    data += w;
    size -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status CopyBytes(int in, int out, const std::string& shown) {
  for (;;) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
    if (n == 0) return Status::Ok();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) break;
    return IoError(ErrnoText("copying " + Quoted(shown)));
  }
  std::vector<char> buf(size_t{1} << 20);
  for (;;) {
    ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoError(ErrnoText("reading " + Quoted(shown)));
    if (r == 0) return Status::Ok();
    REPRISE_RETURN_IF_ERROR(WriteAll(out, buf.data(), static_cast<size_t>(r), shown));
  }
}

}  // namespace reprise::agent_runner
