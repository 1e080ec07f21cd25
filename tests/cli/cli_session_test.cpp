// The CLI on this machine: login writing a 0600 config file that later
// commands use, the precedence flags > environment > config file, a config
// file others may read refused, logout, the bash completion generated from
// the command table, and usage errors naming what was wrong.
#include <sys/stat.h>

#include <set>

#include "cli/command.h"
#include "tests/cli/cli_support.h"

namespace reprise::testing {

namespace {

mode_t ModeOf(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("login stores server and token in a 0600 file; flags > environment > config file") {
  CliFixture f;
  const std::string server = "http://127.0.0.1:" + std::to_string(f.server().port());
  const fs::path xdg = f.scratch() / "xdg";
  const fs::path config = xdg / "reprise" / "config";
  const std::string xdg_env = "XDG_CONFIG_HOME=" + xdg.string();
  // Nothing from the environment: only what login stored.
  const CliRun bare{.server_env = false, .env = {xdg_env}};

  auto login = f.Run({"login", "--server", server, "--token", kAdminToken}, bare);
  CHECK(login.code == 0);
  CHECK(login.out ==
        "logged in to " + server + " as admin (admin); saved in " + config.string() + "\n");
  CHECK_FALSE(Contains(login.out + login.err, kAdminToken));
  CHECK(ModeOf(config) == 0600);
  CHECK(ModeOf(config.parent_path()) == 0700);
  CHECK(Contains(ReadFile(config), "server = " + server + "\n"));

  auto used = f.Run({"whoami"}, bare);
  CHECK(used.code == 0);
  CHECK(used.out == "role: admin\nuser: admin\n");

  // The token from stdin (as when typed without echo), replacing the file.
  const std::string rita = f.server().CreateUser("rita", "release-manager");
  CliRun typed = bare;
  typed.stdin_text = rita + "\n";
  auto stdin_login = f.Run({"login", "--server", server}, typed);
  CHECK(stdin_login.code == 0);
  CHECK(Contains(stdin_login.out, " as rita (release-manager)"));
  CHECK(ModeOf(config) == 0600);
  CHECK(f.Run({"whoami"}, bare).out == "role: release-manager\nuser: rita\n");

  // A token the server refuses is not stored.
  auto refused = f.Run({"login", "--server", server, "--token", "wrong-token-1234"}, bare);
  CHECK(refused.code == 1);
  CHECK(Contains(refused.err, "the server did not accept the token"));
  CHECK(f.Run({"whoami"}, bare).out == "role: release-manager\nuser: rita\n");

  // The environment beats the file, the flag beats the environment.
  CliRun env_token = bare;
  env_token.token = kAdminToken;
  CHECK(f.Run({"whoami"}, env_token).out == "role: admin\nuser: admin\n");
  CHECK(f.Run({"whoami", "--token", rita}, env_token).out == "role: release-manager\nuser: rita\n");
  CliRun env_server = bare;
  env_server.env.push_back("REPRISE_SERVER=http://127.0.0.1:1");
  auto nowhere = f.Run({"whoami"}, env_server);
  CHECK(nowhere.code == 1);
  CHECK(Contains(nowhere.err, "127.0.0.1:1: connection failed"));
  CHECK(f.Run({"whoami", "--server", server}, env_server).code == 0);
  // The stored token goes only to the server it was stored for.
  auto other =
      f.Run({"whoami", "--server", "http://localhost:" + std::to_string(f.server().port())}, bare);
  CHECK(other.code == 1);
  CHECK(Contains(other.err, "HTTP 401"));

  // A config file others may read is refused, with what to do.
  fs::permissions(config, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  auto unsafe = f.Run({"whoami"}, bare);
  CHECK(unsafe.code == 1);
  CHECK(Contains(unsafe.err, "error: the config file " + config.string() +
                                 " may be read by other users (mode 0604)"));
  CHECK(Contains(unsafe.err, "chmod 600"));
  CHECK_FALSE(Contains(unsafe.out + unsafe.err, rita));
  fs::permissions(config, fs::perms::owner_read | fs::perms::owner_write);

  auto logout = f.Run({"logout"}, bare);
  CHECK(logout.code == 0);
  CHECK(logout.out == "logged out; removed " + config.string() + "\n");
  CHECK_FALSE(fs::exists(config));
  auto after = f.Run({"whoami", "--server", server}, bare);
  CHECK(after.code == 1);
  CHECK(Contains(after.err, "HTTP 401"));

  // Without XDG_CONFIG_HOME the file is ~/.config/reprise/config.
  CliRun home = bare;
  home.env.clear();
  CHECK(f.Run({"login", "--server", server, "--token", kAdminToken}, home).code == 0);
  CHECK(ModeOf(f.scratch() / "home" / ".config" / "reprise" / "config") == 0600);
}

TEST_CASE("bash completion is generated from the command table and installed as built") {
  CliFixture f;
  auto script = f.Run({"completion", "bash"}, "");
  REQUIRE(script.code == 0);
  for (const auto& command : cli::AllCommands()) {
    std::string words;
    for (const auto& w : command.words) words += (words.empty() ? "" : " ") + w;
    CHECK_MESSAGE(Contains(script.out, "'" + words + "')"), words);
    for (const auto& w : command.words) CHECK_MESSAGE(Contains(script.out, w), w);
    for (const auto& o : command.options)
      CHECK_MESSAGE(Contains(script.out, "--" + o.name), o.name);
  }
  const char* bin_dir = std::getenv("REPRISE_BIN_DIR");
  REQUIRE(bin_dir != nullptr);
  CHECK(ReadFile(fs::path(bin_dir).parent_path() / "share" / "bash-completion" / "completions" /
                 "reprise") == script.out);

  // bash completes with it: subcommands after a word, options after "--".
  fs::path file = f.scratch() / "completion.bash";
  REQUIRE(WriteFileAtomic(file, script.out).ok());
  fs::path driver = f.scratch() / "complete.sh";
  REQUIRE(WriteFileAtomic(
              driver,
              "source \"$1\"\n"
              "COMP_WORDS=(reprise user '') COMP_CWORD=2; _reprise; echo \"${COMPREPLY[*]}\"\n"
              "COMP_WORDS=(reprise user create bob --pa) COMP_CWORD=4; _reprise; "
              "echo \"${COMPREPLY[*]}\"\n")
              .ok());
  fs::path out = f.scratch() / "complete.out";
  pid_t pid = Spawn({.argv = {"/bin/bash", driver.string(), file.string()}, .out = out});
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(ReadFile(out) ==
        "create disable enable list reset-password set-role show\n"
        "--password-stdin\n");
}

TEST_CASE("usage errors name what was wrong and exit 2") {
  CliFixture f;
  auto check = [&](const std::vector<std::string>& args, const std::string& message) {
    auto r = f.Run(args);
    CHECK_MESSAGE(r.code == 2, args[0]);
    CHECK_MESSAGE(Contains(r.err, message), r.err);
  };
  check({"apps", "--output", "yaml"}, "--output must be table or json, got 'yaml'");
  check({"apps", "--json", "--output", "table"}, "--json contradicts --output table");
  check({"user", "create", "bob"}, "user create needs --role");
  check({"user", "reset-password", "bob"}, "reads the new password from stdin");
  check({"user", "frobnicate"}, "unknown command 'user frobnicate'");
  check({"token", "create", "bob", "--expires-in", "soon"}, "--expires-in");
  check({"grant", "add", "Production", "bob"},
        "usage: reprise grant add ENVIRONMENT USER PERMISSION");
  check({"move", "7"}, "move needs --at");
  check({"deployment", "show", "x"}, "ID must be a deployment id, got 'x'");
  check({"completion", "zsh"}, "only bash completion is generated, not 'zsh'");
  check({"webhook", "set", "chat"}, "webhook set needs --url URL");
  check({"webhook", "set", "chat", "--url", "https://chat.example/hook"},
        "webhook set needs at least one --event EVENT");
  check({"webhook", "set", "chat", "--url", "https://chat.example/hook", "--event",
         "deployment.failed", "--format", "xml"},
        "--format must be json or slack, got 'xml'");
  check({"environment", "set", "Staging", "--var", "nothing"}, "--var needs NAME=VALUE");
  check({"login", "--server", "ftp://example"}, "must start with http:// or https://");
  CHECK(f.Run({"login", "--server", "http://127.0.0.1:1"},
              CliRun{.server_env = false, .stdin_text = ""})
            .code == 2);
}

}  // namespace reprise::testing
