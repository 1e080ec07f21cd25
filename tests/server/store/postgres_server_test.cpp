// A server on PostgreSQL (--store postgresql://…): it starts, serves, keeps
// what it was given across a restart in the database (no SQLite file), and a
// second server on the same database sees it.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/support/pg_cluster.h"
#include "tests/support/run_binary.h"
#include "tests/support/test_server.h"

namespace reprise::testing {

TEST_CASE("a server with --store postgresql:// keeps its state in PostgreSQL") {
  ServerOptions options;
  options.store = PgCluster::Shared().CreateDatabase();
  TestServer server(options);
  auto admin = server.Admin();
  REQUIRE(admin.Put("/api/v1/environments/Production", R"({"variables":{"a":"1"}})").status == 200);
  const std::string token = server.CreateUser("rob", "deployer");
  server.Restart();
  CHECK(server.Admin().Get("/api/v1/environments/Production").status == 200);
  CHECK(server.As(token).Get("/api/v1/environments").status == 200);
  CHECK_FALSE(std::filesystem::exists(server.data_dir() / "reprise.db"));
  auto verify = RunBinary("reprise-server", "--verify --data " + server.data_dir().string() +
                                                " --store '" + options.store + "'");
  CHECK(verify.exit_code == 0);
  CHECK(verify.output.find("0 artifact records, 0 missing") != std::string::npos);

  // Another server (its own data directory) on the same database.
  TestServer other(options);
  auto listed = nlohmann::json::parse(other.As(token).Get("/api/v1/environments").body);
  CHECK(listed.dump().find("Production") != std::string::npos);
}

TEST_CASE("a server whose PostgreSQL store cannot be reached does not start, naming it") {
  ServerOptions options;
  options.store = "postgresql://reprise:hunter2-pw@/nowhere?host=/nonexistent-dir&port=1";
  try {
    TestServer server(options);
    FAIL("started");
  } catch (const std::runtime_error& e) {
    std::string message = e.what();
    CAPTURE(message);
    CHECK(message.find("cannot open store postgresql://reprise:***@/nowhere") != std::string::npos);
    CHECK(message.find("hunter2") == std::string::npos);
  }
}

}  // namespace reprise::testing
