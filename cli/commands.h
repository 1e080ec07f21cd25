// The `reprise` CLI's commands: a client of the HTTP API for CI systems and
// release managers (see docs/cli.md). RunCli parses the arguments, talks to
// the server and writes text and tables (or the API's JSON with --output json).
//
// Exit status: 0 success; 1 an API error, a connection failure, an unsafe
// config file, a check that found a problem (verify, rollback-record
// validate) or (with deploy --wait, log --follow) a deployment that did not
// succeed; 2 a usage error. validate and test-connection: see docs/cli.md.
//
// Thread-safety: RunCli may run on several threads at once (the command
// table is built once, thread-safely; no other shared state); it starts a
// helper thread only for deploy --wait --timeout.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace reprise::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

inline constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

// Defaults taken from the environment (REPRISE_SERVER, REPRISE_TOKEN) and
// the configuration file `reprise login` writes; --server and --token
// override the environment, which overrides the file.
struct CliEnvironment {
  std::string server;
  std::string token;
  // $XDG_CONFIG_HOME/reprise/config or ~/.config/reprise/config; "" for none.
  std::string config_path;
  // Where `reprise login` reads a token from when --token is not given.
  std::istream* in = nullptr;
};

// The configuration file's path for these XDG_CONFIG_HOME and HOME values
// (either may be null); "" when neither is set.
std::string DefaultConfigPath(const char* xdg_config_home, const char* home);

// `args` excludes the program name.
int RunCli(const std::vector<std::string>& args, const CliEnvironment& env, std::ostream& out,
           std::ostream& err);

}  // namespace reprise::cli
