// The people commands: users (list, show, create, set-role, disable,
// enable, reset-password), their API tokens (list, create, revoke) and the
// per-environment grants (list, add, remove). Admin only, as in the API.
#include "cli/command.h"

namespace reprise::cli {

namespace {

const View kUsers{.columns = {"name",
                              "role",
                              "disabled",
                              {"PASSWORD", "has_password"},
                              {"CREATED", "created_at"}},
                  .empty = "no users"};
const View kTokens{.columns = {"id",
                               "name",
                               {"CREATED", "created_at"},
                               {"LAST USED", "last_used_at"},
                               {"EXPIRES", "expires_at"},
                               "expired"},
                   .empty = "no tokens"};
const View kGrants{.columns = {"user", "permission", "granted_by", "granted_at"},
                   .empty = "no grants"};

Result<Json> Password(const Ctx& c, bool required) {
  if (!c.args.Has("password-stdin")) {
    if (required) return InvalidArgument("reset-password reads the new password from stdin");
    return Json::object();
  }
  std::string password = ReadSecret(c, "password: ");
  if (password.empty()) return InvalidArgument("no password on stdin");
  return Json{{"password", password}};
}

Result<Json> CreateUserBody(const Ctx& c) {
  auto role = c.args.Value("role");
  if (!role)
    return InvalidArgument("user create needs --role viewer|deployer|release-manager|admin");
  auto body = Password(c, false);
  if (!body.ok()) return body.status();
  (*body)["name"] = c.Arg(0);
  (*body)["role"] = *role;
  return *body;
}

Result<Json> TokenBody(const Ctx& c) {
  Json body = Json::object();
  if (auto name = c.args.Value("name")) body["name"] = *name;
  if (auto expires = c.args.Value("expires-in")) {
    auto seconds = ParseInteger(*expires, "--expires-in", 1, 10LL * 366 * 24 * 3600);
    if (!seconds.ok()) return seconds.status();
    body["expires_in_seconds"] = *seconds;
  }
  return body;
}

// token create prints the new token alone on stdout (it is shown once),
// what it is on stderr.
Outcome CreateToken(Ctx& c) {
  auto body = TokenBody(c);
  if (!body.ok()) return Outcome::Usage(body.status().message());
  auto r = Call(c.client, "POST", "/api/v1/users/" + PathSegment(c.Arg(0)) + "/tokens", &*body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return Outcome::Ok();
  }
  c.out << Str(*r, "token") << "\n";
  c.err << "token #" << Int(*r, "id") << " '" << Str(*r, "name") << "' for " << Str(*r, "user")
        << (Str(*r, "expires_at").empty() ? "" : ", expires " + Str(*r, "expires_at"))
        << "; it is shown only now\n";
  return Outcome::Ok();
}

}  // namespace

CommandGroup PeopleCommands() {
  auto fixed = [](Json body) { return [body](const Ctx&) -> Result<Json> { return body; }; };
  std::vector<Command> commands = {
      ApiCommand({.words = {"user", "list"},
                  .call = {"GET", "/api/v1/users?limit=1000"},
                  .view = kUsers,
                  .summary = "users, their roles, disabled or not"}),
      ApiCommand({.words = {"user", "show"}, .call = {"GET", "/api/v1/users/{USER}"}}),
      ApiCommand({.words = {"user", "create"},
                  .args = {"USER"},
                  .call = {"POST", "/api/v1/users", CreateUserBody},
                  .options = {ValueOption("role"), Flag("password-stdin")},
                  .options_usage = "--role R [--password-stdin]",
                  .summary = "a user (a password from stdin to sign in to the UI)"}),
      ApiCommand({.words = {"user", "set-role"},
                  .args = {"USER", "ROLE"},
                  .call = {"PATCH", "/api/v1/users/{0}",
                           [](const Ctx& c) -> Result<Json> {
                             return Json{{"role", c.Arg(1)}};
                           }},
                  .summary = "viewer, deployer, release-manager or admin"}),
      ApiCommand({.words = {"user", "disable"},
                  .call = {"PATCH", "/api/v1/users/{USER}", fixed({{"disabled", true}})},
                  .summary = "no sign-in, no token of theirs works"}),
      ApiCommand({.words = {"user", "enable"},
                  .call = {"PATCH", "/api/v1/users/{USER}", fixed({{"disabled", false}})}}),
      ApiCommand({.words = {"user", "reset-password"},
                  .call = {"PATCH", "/api/v1/users/{USER}",
                           [](const Ctx& c) { return Password(c, true); }},
                  .options = {Flag("password-stdin")},
                  .options_usage = "--password-stdin",
                  .summary = "the new password from stdin"}),
      ApiCommand({.words = {"token", "list"},
                  .call = {"GET", "/api/v1/users/{USER}/tokens"},
                  .view = kTokens,
                  .summary = "a user's API tokens (never the secrets)"}),
      {{"token", "create"},
       1,
       {ValueOption("name"), ValueOption("expires-in")},
       CreateToken,
       "reprise token create USER [--name N] [--expires-in SECONDS]",
       "prints the new token (only this once)"},
      ApiCommand(
          {.words = {"token", "revoke"}, .call = {"DELETE", "/api/v1/users/{USER}/tokens/{ID}"}}),
      ApiCommand({.words = {"grant", "list"},
                  .call = {"GET", "/api/v1/environments/{ENVIRONMENT}/grants?limit=1000"},
                  .view = kGrants,
                  .summary = "per-user permissions on an environment"}),
      ApiCommand(
          {.words = {"grant", "add"},
           .call = {"PUT", "/api/v1/environments/{ENVIRONMENT}/grants/{USER}/{PERMISSION}"}}),
      ApiCommand(
          {.words = {"grant", "remove"},
           .call = {"DELETE", "/api/v1/environments/{ENVIRONMENT}/grants/{USER}/{PERMISSION}"}}),
  };
  static const std::string help = GroupHelp(commands);
  return {help.c_str(), commands};
}

}  // namespace reprise::cli
