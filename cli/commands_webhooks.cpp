// The webhook commands: set (create or replace), list, show, delete, their
// deliveries, redeliver and test. Each sends one request through
// ApiCommand, the path every other table-driven command takes.
#include "cli/command.h"

namespace reprise::cli {

namespace {

// webhook set NAME --url U --event E... [--format json|slack]
//   [--secret-stdin] [--disabled]
Result<Json> WebhookBody(const Ctx& c) {
  auto url = c.args.Value("url");
  if (!url) return InvalidArgument("webhook set needs --url URL");
  auto events = c.args.Values("event");
  if (events.empty()) return InvalidArgument("webhook set needs at least one --event EVENT");
  Json body = {{"url", *url}, {"events", events}, {"enabled", !c.args.Has("disabled")}};
  std::string format = c.args.Value("format").value_or("json");
  if (format != "json" && format != "slack")
    return InvalidArgument("--format must be json or slack, got '" + format + "'");
  body["format"] = format;
  if (c.args.Has("secret-stdin")) {
    std::string secret = ReadSecret(c, "secret: ");
    if (secret.empty()) return InvalidArgument("no secret on stdin");
    body["secret"] = secret;
  }
  return body;
}

}  // namespace

CommandGroup WebhookCommands() {
  std::vector<Command> commands = {
      ApiCommand({.words = {"webhook", "set"},
                  .call = {"PUT", "/api/v1/webhooks/{NAME}", WebhookBody},
                  .options = {ValueOption("url"), RepeatedOption("event"), ValueOption("format"),
                              Flag("secret-stdin"), Flag("disabled")},
                  .options_usage = "--url URL --event E... [--format json|slack] [--secret-stdin] "
                                   "[--disabled]",
                  .summary = "create or replace a webhook (secret from stdin)"}),
      ApiCommand({.words = {"webhook", "list"},
                  .call = {"GET", "/api/v1/webhooks?limit=1000"},
                  .view = {.columns = {"name", "url", "events", "format", "enabled"},
                           .empty = "no webhooks"}}),
      ApiCommand({.words = {"webhook", "show"}, .call = {"GET", "/api/v1/webhooks/{NAME}"}}),
      ApiCommand({.words = {"webhook", "delete"}, .call = {"DELETE", "/api/v1/webhooks/{NAME}"}}),
      ApiCommand({.words = {"webhook", "deliveries"},
                  .call = {"GET", "/api/v1/webhooks/{NAME}/deliveries"},
                  .view = {.columns = {"id",
                                       "event",
                                       "status",
                                       {"CODE", "response_code"},
                                       "attempts",
                                       {"CREATED", "created_at"},
                                       {"LAST ATTEMPT", "last_attempt_at"}},
                           .empty = "no deliveries"},
                  .summary = "recent deliveries, response code and time"}),
      ApiCommand({.words = {"webhook", "redeliver"},
                  .call = {"POST", "/api/v1/webhooks/{NAME}/deliveries/{ID}/redeliver"}}),
      ApiCommand({.words = {"webhook", "test"},
                  .call = {"POST", "/api/v1/webhooks/{NAME}/test"},
                  .summary = "send a test event"}),
  };
  static const std::string help = GroupHelp(commands);
  return {help.c_str(), commands};
}

}  // namespace reprise::cli
