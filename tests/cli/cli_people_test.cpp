// The CLI's people, token and grant commands against a real server: table
// and JSON output, passwords and tokens through stdin, never on the command line.
#include "tests/cli/cli_support.h"

namespace reprise::testing {

TEST_CASE("user, token and grant commands: create, list, show, change, revoke") {
  CliFixture f;
  auto created = f.Run({"user", "create", "bob", "--role", "deployer", "--password-stdin"},
                       CliRun{.token = kAdminToken, .stdin_text = "correct-horse-battery\n"});
  CHECK(created.code == 0);
  CHECK(Contains(created.out, "name: bob\nrole: deployer\n"));

  // A list as aligned columns; the same list as the API's JSON.
  auto table = f.Run({"user", "list"});
  CHECK(table.code == 0);
  CHECK(Contains(table.out, "NAME   ROLE      DISABLED  PASSWORD  CREATED\n"));
  CHECK(Contains(table.out, "\nbob    deployer  no        yes       "));
  auto listed = f.Run({"user", "list", "--output", "json"});
  REQUIRE(listed.code == 0);
  json users = json::parse(listed.out);
  CHECK(users["items"].size() == 2);
  CHECK(json::parse(f.Run({"user", "list", "--json"}).out) == users);  // --json: the same

  auto shown = f.Run({"user", "show", "bob"});
  CHECK(shown.code == 0);
  CHECK(Contains(shown.out, "has_password: yes\n"));
  CHECK(Contains(f.Run({"user", "set-role", "bob", "release-manager"}).out,
                 "role:         release-manager\n"));
  CHECK(Contains(f.Run({"user", "disable", "bob"}).out, "disabled:     yes\n"));
  CHECK(Contains(f.Run({"user", "enable", "bob"}).out, "disabled:     no\n"));
  auto reset = f.Run({"user", "reset-password", "bob", "--password-stdin"},
                     CliRun{.token = kAdminToken, .stdin_text = "another-long-password\n"});
  CHECK(reset.code == 0);
  CHECK_FALSE(Contains(reset.out + reset.err, "another-long-password"));
  auto short_password = f.Run({"user", "reset-password", "bob", "--password-stdin"},
                              CliRun{.token = kAdminToken, .stdin_text = "short\n"});
  CHECK(short_password.code == 1);
  CHECK(Contains(short_password.err, "password must be at least 8 characters (HTTP 400"));

  // A token is printed once, alone on stdout, and works.
  auto token = f.Run({"token", "create", "bob", "--name", "ci", "--expires-in", "3600"});
  REQUIRE(token.code == 0);
  std::string secret = token.out.substr(0, token.out.find('\n'));
  CHECK(Contains(token.err, "'ci' for bob"));
  auto whoami = f.Run({"whoami"}, secret);
  CHECK(whoami.code == 0);
  CHECK(Contains(whoami.out, "user: bob\n"));
  auto tokens = f.Run({"token", "list", "bob"});
  CHECK(Contains(tokens.out, "ID  NAME  CREATED"));
  CHECK_FALSE(Contains(tokens.out, secret));
  auto tokens_json = f.Run({"token", "list", "bob", "--output", "json"});
  json items = json::parse(tokens_json.out)["items"];
  REQUIRE(items.size() == 1);
  std::string id = std::to_string(items[0]["id"].get<int64_t>());
  auto revoked = f.Run({"token", "revoke", "bob", id});
  CHECK(revoked.code == 0);
  CHECK(Contains(revoked.out, "revoked: yes"));
  auto gone = f.Run({"whoami"}, secret);
  CHECK(gone.code == 1);
  CHECK(Contains(gone.err, "HTTP 401"));

  CHECK(f.Run({"grant", "list", "Production"}).out == "no grants\n");
  auto granted = f.Run({"grant", "add", "Production", "bob", "redeploy"});
  CHECK(granted.code == 0);
  CHECK(Contains(granted.out, "granted:     yes"));
  auto grants = f.Run({"grant", "list", "Production"});
  CHECK(Contains(grants.out, "USER  PERMISSION  GRANTED BY  GRANTED AT\nbob   redeploy    admin"));
  CHECK(f.Run({"grant", "remove", "Production", "bob", "redeploy"}).code == 0);
  CHECK(f.Run({"grant", "list", "Production"}).out == "no grants\n");
  auto unknown = f.Run({"grant", "add", "Production", "bob", "fly"});
  CHECK(unknown.code == 1);
  CHECK(Contains(unknown.err, "unknown permission 'fly'"));

  // Not an admin: the API's 403, exit 1.
  auto refused = f.Run({"user", "list"}, f.server().CreateUser("vera", "viewer"));
  CHECK(refused.code == 1);
  CHECK(Contains(refused.err, "HTTP 403"));
}

}  // namespace reprise::testing
