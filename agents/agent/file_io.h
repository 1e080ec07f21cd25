// Small pieces of file I/O the agent's tree work shares: an owned
// descriptor, a write that retries short writes, a byte copy that lets the
// kernel copy where it can, and the texts their errors are made of. Errors
// name the file as `shown`.
//
// Thread-safety: Fd is a value owned by one thread; the functions touch only
// the descriptors they are given.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace reprise::agent_runner {

// "<what>: <strerror(errno)>".
std::string ErrnoText(const std::string& what);
// A path as error messages quote it: 'path'.
std::string Quoted(std::string_view path);

// An owned file descriptor, closed with its holder.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& other) noexcept;
  Fd& operator=(Fd&& other) noexcept;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Writes all `size` bytes of `data` to `fd`.
[[nodiscard]] Status WriteAll(int fd, const char* data, size_t size, const std::string& shown);

// Copies the rest of `in` to `out`: copy_file_range (the kernel copies, or
// clones copy-on-write), else a read/write loop from the same offset.
[[nodiscard]] Status CopyBytes(int in, int out, const std::string& shown);

}  // namespace reprise::agent_runner
