// What every `reprise` command is made of: its outcome, its context (the
// parsed arguments, the API client, the streams) and its entry in the
// dispatch table, plus the calls and formatting the commands share. Used only
// inside cli/; each command group's file (commands_*.cpp) returns its
// Commands from one function that cli/commands.cpp lists once.
//
// Thread-safety: no shared state; a Ctx belongs to one RunCli call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "common/args.h"
#include "common/status.h"

namespace reprise::cli {

using Json = nlohmann::json;

// The outcome of a command: an exit code, a usage problem, or an error.
struct Outcome {
  int code = kExitOk;
  std::string message;  // printed to stderr ("error: ..." or "usage: ...")
  static Outcome Ok() { return {}; }
  static Outcome Error(const Status& st) { return {kExitError, st.message()}; }
  static Outcome Error(std::string m) { return {kExitError, std::move(m)}; }
  static Outcome Usage(std::string m) { return {kExitUsage, std::move(m)}; }
  static Outcome Exit(int code) { return {code, ""}; }
};

struct Ctx {
  ServerUrl url;
  std::string token;
  ApiClient& client;
  const ParsedArgs& args;
  std::ostream& out;
  std::ostream& err;
  bool json = false;
};

struct Command {
  std::vector<std::string> words;  // "release", "create"
  size_t args = 0;                 // positional arguments after the words
  std::vector<std::string> options;
  std::function<Outcome(Ctx&)> run;
  std::string usage;
};

// The command groups, one file each; cli/commands.cpp lists them.
std::vector<Command> CatalogCommands();     // commands_catalog.cpp
std::vector<Command> DeploymentCommands();  // commands_deployments.cpp
std::vector<Command> TargetCommands();      // commands_targets.cpp
std::vector<Command> RollbackRecordCommands();  // rollback_record_commands.cpp

// ---------------------------------------------------------------- calls (command.cpp)

// A non-2xx answer as a Status carrying the API's message.
Status ApiError(const ApiResponse& r);

// Sends a request and parses the JSON answer; non-2xx answers become errors
// carrying the API's message.
Result<Json> Call(ApiClient& client, const std::string& method, const std::string& path,
                  const Json* body = nullptr);

std::string Str(const Json& j, const char* key, const std::string& fallback = "");
int64_t Int(const Json& j, const char* key);
bool IsDigits(const std::string& s);
std::string BuildPath(const std::string& app, const std::string& rel, const std::string& build);
std::string FormatBytes(double bytes);

// Columns padded to the widest cell; the last column is not padded.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                const std::string& indent = "");

// --var NAME=VALUE ... as the API's variables object.
Result<Json> VariablesFrom(const ParsedArgs& args);

std::string Pretty(const Json& j);

// ---------------------------------------------------------------- following a deployment
// (follow.cpp)

void PrintLogLine(std::ostream& out, const Json& line);

// Streams the deployment's log (SSE; polling when the server refuses more
// streams) from after `after` until the deployment is final. Prints lines
// unless `quiet`. Returns the final status; kTimeout when `deadline` passed.
Result<std::string> FollowDeployment(Ctx& c, int64_t id, int64_t after, bool quiet,
                                     std::optional<std::chrono::steady_clock::time_point> deadline);

// One line about a deployment: "deployment 12: promote of shop 1.0.0 build 3 to Testing (queued)".
std::string DeploymentLine(const Json& d);
void PrintUnmetGates(std::ostream& out, const Json& d);
// After a deployment finished: its result and each target's message.
void PrintFinal(std::ostream& out, const Json& d);

}  // namespace reprise::cli
