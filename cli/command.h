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
  bool json = false;  // --output json (or --json): print the API's JSON
  size_t words = 0;   // the command's words; its arguments follow them
  const CliEnvironment* env = nullptr;

  // The command's i-th positional argument (after its words).
  const std::string& Arg(size_t i) const { return args.positional[words + i]; }
};

// A command's options, beside the global ones (--server, --token, --output, --json).
inline OptionSpec Flag(std::string name) { return OptionSpec(std::move(name)); }
inline OptionSpec ValueOption(std::string name) { return OptionSpec(std::move(name), true); }
inline OptionSpec RepeatedOption(std::string name) {
  return OptionSpec(std::move(name), true, true);
}

struct Command {
  std::vector<std::string> words;  // "release", "create"
  size_t args = 0;                 // positional arguments after the words
  std::vector<OptionSpec> options;
  std::function<Outcome(Ctx&)> run;
  std::string usage;
  std::string summary = "";  // its line in --help, when the group's help is generated
  bool uses_server = true;   // false: runs without the server, token or config file
};

// Commands that belong together, and their lines under "commands:" in
// `reprise --help` (description from column 45, continuations indented 9).
struct CommandGroup {
  const char* help;
  std::vector<Command> commands;
};

// The command groups, one file each; cli/commands.cpp lists them.
CommandGroup CatalogCommands();         // commands_catalog.cpp
CommandGroup ConfigurationCommands();   // commands_configuration.cpp
CommandGroup DeploymentCommands();      // commands_deployments.cpp
CommandGroup TargetCommands();          // commands_targets.cpp
CommandGroup RollbackRecordCommands();  // rollback_record_commands.cpp
CommandGroup PeopleCommands();          // commands_people.cpp
CommandGroup AgentCommands();           // commands_agents.cpp
CommandGroup AdminCommands();           // commands_admin.cpp
CommandGroup WebhookCommands();         // commands_webhooks.cpp
CommandGroup SessionCommands();         // commands_session.cpp (login, logout, completion)

// Every command of every group, in --help order (cli/commands.cpp).
const std::vector<Command>& AllCommands();

// ---------------------------------------------------------------- one request, its answer
// (command.cpp). Most commands send one request built from their arguments
// and print the answer: a list as a table, an object as "key: value" lines,
// or the API's JSON with --output json.

// A column of a list: the answer's `key` ("name"; "a.b" reaches into an
// object) under `header`, which is the key in capitals ("last_seen" is
// "LAST SEEN") unless given, so that a view lists most columns by key alone.
struct Column {
  Column(const char* key);  // NOLINT(google-explicit-constructor): a key is a column
  Column(std::string header, std::string key);
  std::string header;
  std::string key;
};

struct View {
  std::vector<Column> columns = {};  // empty: the answer is one object
  std::string items = "items";       // where a list answer keeps its rows ("" : the answer)
  std::string empty = "nothing";     // printed for an empty list
  // The exit code for a successful answer (e.g. 1 when a check found problems).
  std::function<int(const Json&)> exit = nullptr;
};

struct ApiCall {
  std::string method;
  // "/api/v1/users/{USER}": each {NAME} is that argument, percent-encoded (an
  // ApiCommand with no `args` takes them from here, in order); {i} is the i-th.
  std::string path;
  // The body; none for nullptr (GET) or an empty object for other methods.
  // A usage problem is returned as kInvalidArgument.
  std::function<Result<Json>(const Ctx&)> body = nullptr;
};

struct ApiCommandSpec {
  std::vector<std::string> words;
  std::vector<std::string> args = {};  // their names, for the usage line
  ApiCall call = {};
  View view = {};
  std::vector<OptionSpec> options = {};
  std::string options_usage = "";  // "[--role R]"
  std::string summary = "";
};

// A command that sends one request and prints its answer per `view`.
Command ApiCommand(ApiCommandSpec spec);

// The help lines of a group from its commands' usage and summary.
std::string GroupHelp(const std::vector<Command>& commands);

// One line of the CLI's stdin (the environment's stream), without echo when
// it is a terminal; `prompt` is shown on stderr then.
std::string ReadSecret(const Ctx& c, const std::string& prompt);

// Prints an answer per `view` (and --output); returns its exit code.
Outcome PrintAnswer(Ctx& c, const Json& answer, const View& view);
// One object as aligned "key: value" lines (nested values as compact JSON).
void PrintObject(std::ostream& out, const Json& object);

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
