// Migrating a SQLite installation to PostgreSQL: a store with data is copied,
// opened on PostgreSQL and read back; ids continue after the copied ones; a
// non-empty target is refused; a copy that fails leaves nothing behind; and
// reprise-server --migrate-store does it from the command line.
#include "server/store/store_copy.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "tests/server/store/store_fixture.h"
#include "tests/support/run_binary.h"

namespace reprise {

namespace {

using testing::PgCluster;

// A SQLite store in `dir`/reprise.db (as a data directory holds it) with a
// little of everything; the id of its succeeded deployment.
int64_t SeedSqliteInstallation(const TempDir& dir) {
  auto opened = OpenSqliteStore({(dir.path() / "reprise.db").string(), 5000});
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  Store& s = **opened;
  SeedShop(s, 2);
  REQUIRE(s.PutEnvironment({"Production", R"({"region":"eu"})", 3}).ok());
  REQUIRE(s.PutTarget({"prod-web", "Production", "a1", "/srv/shop", "{}", 3}).ok());
  REQUIRE(s.CreateUser({"rob", Role::kReleaseManager, "hash", 4, false}).ok());
  REQUIRE(s.CreateToken({0, "rob", "ci", std::string(64, 'a'), 4, 0, 0}).ok());
  REQUIRE(s.AppendAudit({0, 5, "rob", "application.put", "shop", "zürich ✓ 'quoted'"}).ok());
  auto done = CreatePromotion(s, {.build = 1, .status = "running", .created_at = 6});
  REQUIRE(*s.TransitionDeployment(done.id, {"running"}, "succeeded", 7, 8));
  auto waiting = CreatePromotion(s, {.build = 2, .status = "waiting", .created_at = 9});
  REQUIRE(s.AddApproval({0, waiting.id, "rob", "approved", "ok", 10, false}).ok());
  REQUIRE(s.AppendDeploymentLog({done.id, 0, 7, "prod-web", "info", "deployed"}).ok());
  return done.id;
}

}  // namespace

TEST_CASE("a SQLite store is copied into PostgreSQL and reads back the same") {
  TempDir dir;
  const int64_t succeeded = SeedSqliteInstallation(dir);
  const std::string url = PgCluster::Shared().CreateDatabase();

  auto copied = CopySqliteStoreToPostgres(dir.path() / "reprise.db", url);
  REQUIRE_MESSAGE(copied.ok(), copied.status().ToString());
  CHECK(copied->tables > 20);
  CHECK(copied->rows > 10);

  auto opened = OpenPostgresStore({url, 5000});
  REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  Store& pg = **opened;
  CHECK(pg.ListBuilds("shop", "1.0", {})->size() == 2);
  CHECK(pg.GetEnvironment("Production")->variables_json == R"({"region":"eu"})");
  CHECK(pg.GetTarget("prod-web")->path == "/srv/shop");
  CHECK(pg.GetUser("rob")->role == Role::kReleaseManager);
  CHECK(pg.FindTokenByHash(std::string(64, 'a'))->name == "ci");
  auto audit = pg.ListAudit({}, {});
  REQUIRE(audit.ok());
  REQUIRE(audit->size() == 1);
  CHECK((*audit)[0].summary == "zürich ✓ 'quoted'");
  auto deployment = pg.GetDeployment(succeeded);
  REQUIRE(deployment.ok());
  CHECK(deployment->status == "succeeded");
  CHECK(deployment->finished_at == 8);
  CHECK(deployment->scheduled_at == 0);  // NULL stays NULL
  auto log = pg.ListDeploymentLog(succeeded, 0, 10);
  REQUIRE(log.ok());
  REQUIRE(log->size() == 1);
  CHECK((*log)[0].text == "deployed");
  // Kept by a trigger in SQLite; copied as it was, not made twice.
  auto builds = pg.SucceededBuilds("shop", "Production", 10);
  REQUIRE(builds.ok());
  REQUIRE(builds->size() == 1);
  CHECK((*builds)[0].deployment_id == succeeded);
  auto approvals = pg.ListApprovals(succeeded + 1);
  REQUIRE(approvals.ok());
  REQUIRE(approvals->size() == 1);
  CHECK((*approvals)[0].user == "rob");

  // New rows get ids after the copied ones.
  auto next = CreatePromotion(pg, {.build = 2, .status = "waiting", .created_at = 20});
  CHECK(next.id == succeeded + 2);
  auto audited = pg.AppendAudit({0, 21, "rob", "x", "y", "z"});
  CHECK(audited.ok());
  CHECK(pg.ListAudit({}, {})->front().id == 2);
}

TEST_CASE("copying into a PostgreSQL database that holds rows is refused") {
  TempDir dir;
  SeedSqliteInstallation(dir);
  const std::string url = PgCluster::Shared().CreateDatabase();
  {
    auto pg = OpenPostgresStore({url, 5000});
    REQUIRE(pg.ok());
    REQUIRE((*pg)->PutEnvironment({"Staging", "{}", 1}).ok());
  }
  auto copied = CopySqliteStoreToPostgres(dir.path() / "reprise.db", url);
  REQUIRE_FALSE(copied.ok());
  CHECK(copied.status().code() == Code::kFailedPrecondition);
  CHECK(copied.status().message().find("not empty (table environments has rows)") !=
        std::string::npos);
  auto pg = OpenPostgresStore({url, 5000});
  CHECK((*pg)->ListEnvironments({})->size() == 1);  // untouched
  CHECK((*pg)->ListApplications({})->empty());

  auto missing = CopySqliteStoreToPostgres(dir.path() / "nowhere.db", url);
  CHECK(missing.status().code() == Code::kNotFound);
}

TEST_CASE("a copy that fails half-way leaves the PostgreSQL database empty") {
  TempDir dir;
  SeedSqliteInstallation(dir);
  {
    // Text PostgreSQL refuses (not UTF-8), in a table copied after others.
    SQLite::Database db((dir.path() / "reprise.db").string(), SQLite::OPEN_READWRITE);
    db.exec(
        "INSERT INTO webhooks(name, url, created_at, updated_at) VALUES ('w', 'http://x/' || "
        "CAST(X'FF' AS TEXT), 1, 1)");
  }
  const std::string url = PgCluster::Shared().CreateDatabase();
  auto copied = CopySqliteStoreToPostgres(dir.path() / "reprise.db", url);
  REQUIRE_FALSE(copied.ok());
  CHECK(copied.status().message().find("table webhooks") != std::string::npos);
  auto pg = OpenPostgresStore({url, 5000});
  REQUIRE(pg.ok());
  CHECK((*pg)->ListApplications({})->empty());
  CHECK((*pg)->ListUsers({})->empty());
}

TEST_CASE("reprise-server --migrate-store copies a data directory's store") {
  TempDir dir;
  SeedSqliteInstallation(dir);
  const std::string url = PgCluster::Shared().CreateDatabase() + "&password=hunter2-secret";
  auto r = testing::RunBinary("reprise-server",
                              "--migrate-store sqlite:" + dir.path().string() + " '" + url + "'");
  CAPTURE(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("copied ") != std::string::npos);
  CHECK(r.output.find("hunter2") == std::string::npos);
  auto pg = OpenPostgresStore({url, 5000});
  REQUIRE(pg.ok());
  CHECK((*pg)->ListBuilds("shop", "1.0", {})->size() == 2);

  // Again: the target is no longer empty.
  auto again = testing::RunBinary(
      "reprise-server", "--migrate-store sqlite:" + dir.path().string() + " '" + url + "'");
  CHECK(again.exit_code == 1);
  CHECK(again.output.find("not empty") != std::string::npos);
  CHECK(again.output.find("hunter2") == std::string::npos);

  auto bad = testing::RunBinary("reprise-server",
                                "--migrate-store " + dir.path().string() + " '" + url + "'");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("copies from sqlite:DIR") != std::string::npos);
  auto no_target =
      testing::RunBinary("reprise-server", "--migrate-store sqlite:" + dir.path().string());
  CHECK(no_target.exit_code == 2);
  CHECK(no_target.output.find("--migrate-store needs") != std::string::npos);

  // Not from a data directory a server is running on (it holds DATA/lock).
  const int lock = ::open((dir.path() / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(lock >= 0);
  REQUIRE(::flock(lock, LOCK_EX | LOCK_NB) == 0);
  auto busy =
      testing::RunBinary("reprise-server", "--migrate-store sqlite:" + dir.path().string() + " '" +
                                               PgCluster::Shared().CreateDatabase() + "'");
  ::close(lock);
  CHECK(busy.exit_code == 1);
  CHECK(busy.output.find("is in use by pid") != std::string::npos);
}

}  // namespace reprise
