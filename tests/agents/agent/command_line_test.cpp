// reprise-agent's command line: malformed values are refused (exit 2, the
// flag named) before anything starts.
#include <doctest/doctest.h>

#include "tests/support/run_binary.h"

namespace reprise::testing {

TEST_CASE("reprise-agent refuses a port with trailing garbage") {
  auto r =
      RunBinary("reprise-agent", "--server 127.0.0.1:80x --name a --root /nonexistent --plain");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--server needs HOST:PORT") != std::string::npos);
  CHECK(r.output.find("'127.0.0.1:80x'") != std::string::npos);
}

TEST_CASE("reprise-agent refuses a heartbeat that is not a number") {
  auto r =
      RunBinary("reprise-agent", "--server 127.0.0.1:9 --name a --root /x --heartbeat-ms 50ms");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--heartbeat-ms needs a whole number") != std::string::npos);
}

}  // namespace reprise::testing
