// The agent commands: agent list, show and approve, enrollment-info, and
// enrollment-token create (what `reprise-agent --enroll` needs).
#include "cli/command.h"

namespace reprise::cli {

namespace {

// agent show NAME: the agent's entry of GET /agents (there is no per-agent route).
Outcome ShowAgent(Ctx& c) {
  auto list = Call(c.client, "GET", "/api/v1/agents?limit=1000");
  if (!list.ok()) return Outcome::Error(list.status());
  for (const auto& agent : list->value("items", Json::array()))
    if (Str(agent, "name") == c.Arg(0)) return PrintAnswer(c, agent, {});
  return Outcome::Error("agent '" + c.Arg(0) + "' not found");
}

Result<Json> EnrollmentTokenBody(const Ctx& c) {
  Json body = Json::object();
  if (c.args.Has("pre-approved")) body["pre_approved"] = true;
  if (auto expires = c.args.Value("expires-in")) {
    auto seconds = ParseInteger(*expires, "--expires-in", 1, 366LL * 24 * 3600);
    if (!seconds.ok()) return seconds.status();
    body["expires_in_seconds"] = *seconds;
  }
  return body;
}

}  // namespace

CommandGroup AgentCommands() {
  std::vector<Command> commands = {
      ApiCommand({.words = {"agent", "list"},
                  .call = {"GET", "/api/v1/agents?limit=1000"},
                  .view = {.columns = {"name", "status", "approved", "online", "version",
                                       "last_seen", "address", "targets"},
                           .empty = "no agents"},
                  .summary = "agents, connected or not, approved or not"}),
      {{"agent", "show"}, 1, {}, ShowAgent, "reprise agent show NAME"},
      ApiCommand({.words = {"agent", "approve"},
                  .call = {"POST", "/api/v1/agents/{NAME}/approve"},
                  .summary = "let an enrolled agent receive deployments"}),
      ApiCommand({.words = {"agent", "enrollment-info"},
                  .call = {"GET", "/api/v1/agents/enrollment-info"},
                  .summary = "where agents connect, the fingerprint they pin"}),
      ApiCommand({.words = {"enrollment-token", "create"},
                  .call = {"POST", "/api/v1/agents/enrollment-tokens", EnrollmentTokenBody},
                  .options = {Flag("pre-approved"), ValueOption("expires-in")},
                  .options_usage = "[--pre-approved] [--expires-in SECONDS]",
                  .summary = "a one-time token for reprise-agent --enroll"}),
  };
  commands[1].summary = "one agent";
  static const std::string help = GroupHelp(commands);
  return {help.c_str(), commands};
}

}  // namespace reprise::cli
