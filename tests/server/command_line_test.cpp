// reprise-server's command line: malformed values are refused (exit 2, the
// flag named) before anything starts.
#include <doctest/doctest.h>

#include "tests/support/run_binary.h"
#include "tests/support/server_process.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

TEST_CASE("reprise-server refuses malformed ports and unknown flags") {
  auto a = RunBinary("reprise-server", "--data /nonexistent --http 127.0.0.1:80x");
  CHECK(a.exit_code == 2);
  CHECK(a.output.find("--http needs HOST:PORT") != std::string::npos);
  auto b = RunBinary("reprise-server", "--data /nonexistent --agent-port 8o81");
  CHECK(b.exit_code == 2);
  CHECK(b.output.find("--agent-port needs a port number") != std::string::npos);
  auto c = RunBinary("reprise-server", "--data /nonexistent --frobnicate");
  CHECK(c.exit_code == 2);
  CHECK(c.output.find("unknown option '--frobnicate'") != std::string::npos);
}

}  // namespace reprise::testing

namespace reprise::testing {

TEST_CASE("reprise-server runs from a configuration file; flags override it") {
  TempDir dir;
  const auto config = dir.path() / "server.yaml";
  WriteFile(config, "data: " + (dir.path() / "from-file").string() +
                        "\nhttp: 127.0.0.1:1\nagent-host: 127.0.0.1\nagent-port: 0\n");
  // The file's http port (1) is overridden on the command line.
  ServerProcess server({"--config", config.string(), "--http", "127.0.0.1:0"}, dir.path() / "log");
  auto health = server.Admin().Get("/api/v1/health");
  CHECK(health.status == 200);
  CHECK(std::filesystem::exists(dir.path() / "from-file" / "reprise.db"));
}

TEST_CASE("a configuration file with an unknown key is refused naming the key and line") {
  TempDir dir;
  const auto config = dir.path() / "server.yaml";
  WriteFile(config, "data: /tmp/x\nhttp-port: 8080\n");
  auto r = RunBinary("reprise-server", "--config " + config.string());
  CHECK(r.exit_code == 2);
  CHECK(r.output.find(config.string() + ":2:1: unknown key 'http-port'") != std::string::npos);
}

TEST_CASE("--print-config shows the effective settings") {
  TempDir dir;
  const auto config = dir.path() / "server.yaml";
  WriteFile(config, "data: /srv/reprise\ndemo: true\n");
  auto r = RunBinary("reprise-server",
                     "--config " + config.string() + " --data /elsewhere --print-config");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("data: \"/elsewhere\"") != std::string::npos);
  CHECK(r.output.find("demo: true") != std::string::npos);
  CHECK(r.output.find("# http: 127.0.0.1:8080") != std::string::npos);
}

}  // namespace reprise::testing
