// AgentClient's checks before it connects anywhere: plain TCP only to a
// server on loopback, decided on the address and not on how the name looks.
#include "agents/agent/agent_client.h"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// Runs the client on a thread; Stop()s it when Run() has not returned in
// `limit` (the check under test failed) so the test cannot hang.
Status RunBounded(AgentClient& client, bool& returned,
                  std::chrono::seconds limit = std::chrono::seconds(10)) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  std::thread runner([&] { done.set_value(client.Run()); });
  returned = result.wait_for(limit) == std::future_status::ready;
  if (!returned) client.Stop();
  runner.join();
  return result.get();
}

TEST_CASE("plain TCP to a name that only starts like a loopback address is refused") {
  TempDir tmp;
  AgentClientOptions o;
  o.host = "127.evil.example";  // refused before any lookup: no name is resolved
  o.port = 9;
  o.name = "web-01";
  o.root = tmp.path() / "root";
  o.tls = false;
  o.verbose = false;
  AgentClient client(o);
  bool returned = false;
  Status st = RunBounded(client, returned);
  REQUIRE_MESSAGE(returned, "the agent went on to connect to 127.evil.example");
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK_MESSAGE(st.message().find("'127.evil.example'") != std::string::npos, st.message());
  CHECK(st.message().find("loopback") != std::string::npos);
  CHECK_FALSE(fs::exists(o.root));  // nothing was set up either
}

}  // namespace
}  // namespace reprise
