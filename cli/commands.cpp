#include "cli/commands.h"

#include <algorithm>

#include "cli/command.h"
#include "common/args.h"
#include "planner/version.h"

namespace reprise::cli {

namespace {

constexpr const char* kUsage =
    R"(usage: reprise [--server URL] [--token TOKEN] [--json] COMMAND [ARGS]

commands:
  health                                    is the server up? (no token needed)
  apps                                      applications and what is deployed where
  release create APP NUMBER [--var K=V]...  create a release
  build create APP RELEASE [--var K=V]...   create a build; prints its number
  upload APP RELEASE BUILD NAME FILE        stream FILE as artifact NAME; prints its sha256
  deploy APP RELEASE BUILD STAGE            deploy, promote, re-deploy or roll back
         [--at RFC3339] [--force --comment C] [--context as-deployed|current]
         [--var K=V]... [--wait [--timeout SECONDS]]
  preview APP RELEASE BUILD STAGE           what a deployment would change
         [--context as-deployed|current] [--all]
  deployments [--app A] [--stage S] [--status S[,S...]] [--limit N]
  log ID [--follow]                         a deployment's log (--follow: live)
  approve ID [--comment C]                  approve a deployment waiting for approval
  reject ID [--comment C]                   reject it
  cancel ID [--comment C]                   cancel a deployment that has not finished
  validate TARGET                           are the target's files exactly its build's?
  test-connection APP STAGE                 can every target of the stage be deployed to?
  rollback-record create DEPLOYMENT [--component P]... [--exclude P]... [--comment C]
                                            roll back chosen files of a succeeded deployment
  rollback-record show|test-connection|submit|approve|reject|validate ID [--comment C]
  rollback-record select ID [--component P]... [--exclude P]...   change a draft's selection
  rollback-record execute ID [--at T]       run an approved record now or at T
  rollback-record list [--app A] [--stage S] [--status S] [--from T] [--to T] [--csv]
  version                                   print the CLI's version

options:
  --server URL    the server (env REPRISE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN   an API token (env REPRISE_TOKEN); never printed
  --json          print the API's JSON instead of text

exit status: 0 ok; 1 an error, or a deployment (deploy --wait, log --follow)
that did not succeed; 2 a usage error. validate: 0 the files match, 1 they
differ, 2 they could not be checked (or a usage error). test-connection: 0
every target is ready, 1 a target has a problem, 2 they could not be checked.
)";

// ---------------------------------------------------------------- dispatch

// The command groups, in the order `reprise --help` lists them. A new group
// is one file returning its Commands and one line here.
const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = [] {
    std::vector<Command> all;
    for (auto group :
         {CatalogCommands, DeploymentCommands, TargetCommands, RollbackRecordCommands})
      for (auto& command : group()) all.push_back(std::move(command));
    return all;
  }();
  return commands;
}

const std::vector<OptionSpec>& KnownOptions() {
  static const std::vector<OptionSpec> known = {
      {"server", true, false}, {"token", true, false},    {"json", false, false},
      {"help", false, false},  {"version", false, false}, {"at", true, false},
      {"force", false, false}, {"comment", true, false},  {"context", true, false},
      {"var", true, true},     {"wait", false, false},    {"timeout", true, false},
      {"all", false, false},   {"app", true, false},      {"stage", true, false},
      {"status", true, false}, {"limit", true, false},    {"follow", false, false},
      {"component", true, true}, {"exclude", true, true},  {"from", true, false},
      {"to", true, false},     {"csv", false, false},
  };
  return known;
}

bool IsGlobalOption(const std::string& name) {
  return name == "server" || name == "token" || name == "json" || name == "help" ||
         name == "version";
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
    (args.positional.empty() && !args.Has("help") ? err : out) << kUsage;
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
    if (std::find(command->options.begin(), command->options.end(), name) == command->options.end())
      return usage_error("option '--" + name + "' does not apply to '" + command->words[0] + "'",
                         command->usage);
  }

  std::string server =
      args.Value("server").value_or(env.server.empty() ? kDefaultServer : env.server);
  auto url = ParseServerUrl(server);
  if (!url.ok()) return usage_error(url.status().message(), "");
  std::string token = args.Value("token").value_or(env.token);
  ApiClient client(*url, token);
  Ctx ctx{*url, token, client, args, out, err, args.Has("json")};
  Outcome outcome = command->run(ctx);
  out.flush();
  if (!outcome.message.empty()) {
    if (outcome.code == kExitUsage) return usage_error(outcome.message, command->usage);
    err << "error: " << outcome.message << "\n";
  }
  return outcome.code;
}

}  // namespace reprise::cli
