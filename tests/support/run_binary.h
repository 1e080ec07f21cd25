// RunBinary: runs one of build/bin's programs with arguments, collects its
// stdout and stderr and its exit code. For command-line tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "tests/support/bin_dir.h"

namespace reprise::testing {

struct BinaryOutcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `args` is passed to the shell as it is: quote what needs it.
inline BinaryOutcome RunBinary(const std::string& binary, const std::string& args) {
  std::string cmd = (BinDir() / binary).string() + " " + args + " 2>&1 </dev/null";
  BinaryOutcome out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.output.append(buf.data(), n);
  int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace reprise::testing
