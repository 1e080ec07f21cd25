// Spawn: starts a program as a child process with its stdout and stderr in
// files and no other file descriptor of the parent, for tests and benchmarks
// that run the real binaries. Thread-safe (posix_spawn); the caller waits for
// or kills the child.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace reprise::testing {

// This process's environment, to pass on (and to add to).
inline std::vector<std::string> InheritedEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

struct SpawnSpec {
  std::vector<std::string> argv{};  // argv[0] is the program's path
  std::vector<std::string> env = InheritedEnvironment();
  std::filesystem::path out{};  // stdout, and stderr unless `err` is set
  std::filesystem::path err{};
  bool append = false;  // append to the files instead of truncating them
};

// The child's pid, or -1 when it could not be started.
inline pid_t Spawn(SpawnSpec spec) {
  auto pointers = [](std::vector<std::string>& strings) {
    std::vector<char*> p;
    for (auto& s : strings) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  };
  std::vector<char*> argv = pointers(spec.argv);
  std::vector<char*> env = pointers(spec.env);
  const int flags = O_WRONLY | O_CREAT | (spec.append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, spec.out.c_str(), flags, 0644);
  if (spec.err.empty())
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else
    posix_spawn_file_actions_addopen(&fa, 2, spec.err.c_str(), flags, 0644);
  // Nothing else of this process: its fds are none of the child's.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

}  // namespace reprise::testing
