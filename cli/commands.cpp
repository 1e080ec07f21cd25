#include "cli/commands.h"

#include <algorithm>

#include "cli/command.h"
#include "cli/config_file.h"
#include "common/args.h"
#include "planner/version.h"

namespace reprise::cli {

namespace {

constexpr const char* kUsageHead =
    R"(usage: reprise [--server URL] [--token TOKEN] [--output table|json] COMMAND [ARGS]

commands:
)";

constexpr const char* kUsageTail =
    R"(  version                                   print the CLI's version

options:
  --server URL    the server (env REPRISE_SERVER, then the config file, default
                  http://127.0.0.1:8080)
  --token TOKEN   an API token (env REPRISE_TOKEN, then the config file); never printed
  --output table|json   text and tables (default), or the API's JSON
  --json          the same as --output json

config file: $XDG_CONFIG_HOME/reprise/config (default ~/.config/reprise/config),
written by 'reprise login' with mode 0600; refused when others may read it.

exit status: 0 ok; 1 an error (API, connection, file), or a deployment
(deploy --wait, log --follow) that did not succeed, or a check (verify,
rollback-record validate) that found a problem; 2 a usage error. validate: 0
the files match, 1 they differ, 2 they could not be checked (or a usage
error). test-connection: 0 every target is ready, 1 a target has a problem, 2
they could not be checked.
)";

// ---------------------------------------------------------------- dispatch

// The command groups, in the order `reprise --help` lists them. A new group
// is one file returning its CommandGroup and one line here.
const std::vector<CommandGroup>& Groups() {
  static const std::vector<CommandGroup> groups = {
      CatalogCommands(),        ConfigurationCommands(), DeploymentCommands(), TargetCommands(),
      RollbackRecordCommands(), PeopleCommands(),        AgentCommands(),      AdminCommands(),
      WebhookCommands(),        SessionCommands(),
  };
  return groups;
}

}  // namespace

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> commands = [] {
    std::vector<Command> all;
    for (const auto& group : Groups())
      all.insert(all.end(), group.commands.begin(), group.commands.end());
    return all;
  }();
  return commands;
}

namespace {

const std::vector<Command>& Commands() { return AllCommands(); }

std::string Usage() {
  std::string usage = kUsageHead;
  for (const auto& group : Groups()) usage += group.help;
  return usage + kUsageTail;
}

bool IsGlobalOption(const std::string& name) {
  return name == "server" || name == "token" || name == "json" || name == "output" ||
         name == "help" || name == "version";
}

// The global options and every command's, each name once.
const std::vector<OptionSpec>& KnownOptions() {
  static const std::vector<OptionSpec> known = [] {
    std::vector<OptionSpec> all = {{"server", true}, {"token", true}, {"json"},
                                   {"output", true}, {"help"},        {"version"}};
    for (const auto& command : Commands())
      for (const auto& option : command.options)
        if (std::none_of(all.begin(), all.end(),
                         [&](const OptionSpec& o) { return o.name == option.name; }))
          all.push_back(option);
    return all;
  }();
  return known;
}

}  // namespace

int RunCli(const std::vector<std::string>& argv, const CliEnvironment& env, std::ostream& out,
           std::ostream& err) {
  auto usage_error = [&](const std::string& message, const std::string& usage) {
    err << "reprise: " << message << "\n";
    if (!usage.empty())
      err << "usage: " << usage << "\n";
    else
      err << "run 'reprise --help' for the commands\n";
    return kExitUsage;
  };
  auto parsed = ParseArgs(argv, KnownOptions());
  if (!parsed.ok()) return usage_error(parsed.status().message(), "");
  const ParsedArgs& args = *parsed;
  if (args.Has("version") || (!args.positional.empty() && args.positional[0] == "version")) {
    out << "reprise " << Version() << "\n";
    return kExitOk;
  }
  if (args.Has("help") || args.positional.empty() ||
      (args.positional.size() == 1 && args.positional[0] == "help")) {
    (args.positional.empty() && !args.Has("help") ? err : out) << Usage();
    return args.positional.empty() && !args.Has("help") ? kExitUsage : kExitOk;
  }

  const Command* command = nullptr;
  for (const auto& cmd : Commands()) {
    if (args.positional.size() < cmd.words.size()) continue;
    if (std::equal(cmd.words.begin(), cmd.words.end(), args.positional.begin())) command = &cmd;
  }
  if (command == nullptr) {
    std::string word = args.positional[0];
    for (const auto& cmd : Commands())
      if (cmd.words[0] == word && cmd.words.size() > 1)
        return usage_error("unknown command '" + word + " " +
                               (args.positional.size() > 1 ? args.positional[1] : "") + "'",
                           cmd.usage);
    return usage_error("unknown command '" + word + "'", "");
  }
  if (args.positional.size() != command->words.size() + command->args)
    return usage_error(args.positional.size() < command->words.size() + command->args
                           ? "missing arguments"
                           : "too many arguments",
                       command->usage);
  for (const auto& [name, values] : args.options) {
    (void)values;
    if (IsGlobalOption(name)) continue;
    if (std::none_of(command->options.begin(), command->options.end(),
                     [&](const OptionSpec& o) { return o.name == name; }))
      return usage_error("option '--" + name + "' does not apply to '" + command->words[0] + "'",
                         command->usage);
  }

  bool json = args.Has("json");
  if (auto output = args.Value("output")) {
    if (*output != "json" && *output != "table")
      return usage_error("--output must be table or json, got '" + *output + "'", "");
    if (json && *output != "json") return usage_error("--json contradicts --output table", "");
    json = *output == "json";
  }

  // Flags, then the environment, then the configuration file.
  std::string server = args.Value("server").value_or(env.server);
  std::string token = args.Value("token").value_or(env.token);
  if (command->uses_server && (server.empty() || token.empty()) && !env.config_path.empty()) {
    auto config = ReadConfigFile(env.config_path);
    if (!config.ok()) {
      err << "error: " << config.status().message() << "\n";
      return kExitError;
    }
    // The stored token goes only to the server it was stored for.
    if (server.empty()) server = config->server;
    if (token.empty() && server == config->server) token = config->token;
  }
  if (server.empty()) server = kDefaultServer;
  auto url = ParseServerUrl(server);
  if (!url.ok()) return usage_error(url.status().message(), "");
  ApiClient client(*url, token);
  Ctx ctx{*url, token, client, args, out, err, json, command->words.size(), &env};
  Outcome outcome = command->run(ctx);
  out.flush();
  if (!outcome.message.empty()) {
    if (outcome.code == kExitUsage) return usage_error(outcome.message, command->usage);
    err << "error: " << outcome.message << "\n";
  }
  return outcome.code;
}

}  // namespace reprise::cli
