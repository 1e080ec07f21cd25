// One server per data directory: a second reprise-server process on the same
// --data refuses to start and names the pid that holds it.
#include <doctest/doctest.h>

#include <string>

#include "tests/support/server_process.h"

namespace reprise::testing {

TEST_CASE("a second server on the same data directory exits 1 naming the first one's pid") {
  TempDir dir;
  const auto data = dir.path() / "data";
  ServerProcess first(ServerArgs(data, {"--agent-port", "0", "--agent-plain"}),
                      dir.path() / "first.log");
  REQUIRE(first.Admin().Get("/api/v1/health").status == 200);
  const std::string pid = ReadFile(data / "lock");
  REQUIRE_FALSE(pid.empty());

  ServerProcess second(ServerArgs(data, {"--agent-port", "0", "--agent-plain"}),
                       dir.path() / "second.log", ServerProcess::Until::kSpawned);
  CHECK(second.Wait() == 1);
  const std::string log = second.Log();
  CHECK_MESSAGE(log.find("data directory " + data.string() + " is in use by pid " +
                         std::string(pid.substr(0, pid.find('\n')))) != std::string::npos,
                log);
  // The first one is untouched and still serves.
  CHECK(first.Admin().Get("/api/v1/health").status == 200);

  // Once the first one is gone, the directory is free again.
  first.KillHard();
  ServerProcess third(ServerArgs(data, {"--agent-port", "0", "--agent-plain"}),
                      dir.path() / "third.log");
  CHECK(third.Admin().Get("/api/v1/health").status == 200);
}

}  // namespace reprise::testing
