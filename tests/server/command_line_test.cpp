// reprise-server's command line: malformed values are refused (exit 2, the
// flag named) before anything starts.
#include <doctest/doctest.h>

#include "tests/support/run_binary.h"

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
