#include "server/store/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <SQLiteCpp/VariadicBind.h>
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>

#include "server/store/sqlite_migrations.h"
#include "tests/server/store/store_fixture.h"

namespace reprise {

namespace {
// A database file as schema version `version` left it (its first `version`
// migrations applied), for history written before a later migration.
SQLite::Database OldDatabase(const TempDir& dir, size_t version) {
  SQLite::Database db(TestStorePath(dir), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  for (size_t i = 0; i < version; ++i) db.exec(std::string(SqliteMigrations()[i]));
  db.exec("PRAGMA user_version = " + std::to_string(version));
  return db;
}
}  // namespace

TEST_CASE("migrations from empty reach the latest version and are idempotent" * SqliteOnly()) {
  TempDir dir;
  {
    auto s = OpenTestStore(dir);
    CHECK(s->SchemaVersion() == static_cast<int64_t>(SqliteMigrations().size()));
    CHECK(s->Ping().ok());
  }
  auto again = OpenTestStore(dir);  // re-opening applies nothing twice
  CHECK(again->SchemaVersion() == static_cast<int64_t>(SqliteMigrations().size()));
  SQLite::Database db(TestStorePath(dir));
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  for (const char* table :
       {"environments", "targets", "agents", "applications", "releases", "builds", "artifacts",
        "deployments", "deployment_targets", "approvals", "audit_log", "users", "api_tokens"}) {
    CAPTURE(table);
    CHECK(db.tableExists(table));
  }
}

TEST_CASE("a database newer than the server is refused" * SqliteOnly()) {
  TempDir dir;
  { auto s = OpenTestStore(dir); }
  {
    SQLite::Database db(TestStorePath(dir), SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 999");
  }
  auto s = OpenSqliteStore({TestStorePath(dir), 5000});
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().message().find("999") != std::string::npos);
}

TEST_CASE("release numbers are unique per application") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s);
  Status dup = s->CreateRelease({"shop", "1.0", 1, "{}", "{}", 2, "t"});
  CHECK(dup.code() == Code::kAlreadyExists);
  REQUIRE(s->PutApplication({"other", 0, "{}", "", 1, "t", "{}"}).ok());
  CHECK(s->CreateRelease({"other", "1.0", 1, "{}", "{}", 2, "t"}).ok());
}

TEST_CASE("20 concurrent build creations get exactly 1..20") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s);
  std::vector<std::thread> threads;
  std::vector<int64_t> numbers(20);
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      auto b = s->CreateBuild({"shop", "1.0", 0, "{}", 1, "t"});
      numbers[i] = b.ok() ? b->number : -1;
    });
  for (auto& t : threads) t.join();
  std::set<int64_t> got(numbers.begin(), numbers.end());
  CHECK(got.size() == 20);
  CHECK(*got.begin() == 1);
  CHECK(*got.rbegin() == 20);
}

TEST_CASE("artifacts are immutable: same bytes is a no-op, other bytes conflict") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s);
  REQUIRE(s->CreateBuild({"shop", "1.0", 0, "{}", 1, "t"}).ok());
  ArtifactRecord a{"shop", "1.0", 1, "web", std::string(64, 'a'), 10, 1, "{}", 1, "t"};
  auto first = s->AddArtifact(a);
  REQUIRE(first.ok());
  CHECK(*first);
  auto again = s->AddArtifact(a);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  a.sha256 = std::string(64, 'b');
  auto other = s->AddArtifact(a);
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == Code::kConflict);
  auto stored = s->GetArtifact("shop", "1.0", 1, "web");
  REQUIRE(stored.ok());
  CHECK(stored->sha256 == std::string(64, 'a'));
}

TEST_CASE("artifacts are found by their sha256, every record of the same bytes, oldest first") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s);
  REQUIRE(s->CreateBuild({"shop", "1.0", 0, "{}", 1, "t"}).ok());
  REQUIRE(s->CreateBuild({"shop", "1.0", 0, "{}", 2, "t"}).ok());
  const std::string same(64, 'c');
  REQUIRE(s->AddArtifact({"shop", "1.0", 2, "web", same, 10, 1, "{\"b\":2}", 20, "t"}).ok());
  REQUIRE(s->AddArtifact({"shop", "1.0", 1, "web", same, 10, 1, "{\"b\":1}", 10, "t"}).ok());
  REQUIRE(
      s->AddArtifact({"shop", "1.0", 1, "docs", std::string(64, 'd'), 5, 1, "{}", 11, "t"}).ok());
  auto found = s->FindArtifactsBySha256(same);
  REQUIRE(found.ok());
  REQUIRE(found->size() == 2);
  CHECK((*found)[0].build == 1);
  CHECK((*found)[0].manifest_json == "{\"b\":1}");
  CHECK((*found)[1].build == 2);
  auto none = s->FindArtifactsBySha256(std::string(64, 'e'));
  REQUIRE(none.ok());
  CHECK(none->empty());
  REQUIRE(s->DeleteArtifacts("shop", "1.0", 1).ok());
  found = s->FindArtifactsBySha256(same);
  REQUIRE(found.ok());
  REQUIRE(found->size() == 1);
  CHECK((*found)[0].build == 2);
}

TEST_CASE("application spec versions increase and history is kept") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  auto v1 = s->PutApplication({"shop", 0, "{\"v\":1}", "v: 1", 1, "a", "{}"});
  auto v2 = s->PutApplication({"shop", 0, "{\"v\":2}", "v: 2", 2, "b", "{}"});
  REQUIRE(v1.ok());
  REQUIRE(v2.ok());
  CHECK(v1->spec_version == 1);
  CHECK(v2->spec_version == 2);
  auto got = s->GetApplication("shop");
  REQUIRE(got.ok());
  CHECK(got->spec_json == "{\"v\":2}");
}

TEST_CASE("holds are placed and cleared per stage; concurrent ones on other stages are kept") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  REQUIRE(s->PutApplication({"shop", 0, "{}", "", 1, "t", "{}"}).ok());
  auto holds = [&] {
    auto a = s->GetApplication("shop");
    REQUIRE(a.ok());
    return a->hold_json;
  };
  CHECK(holds() == "{}");
  // Any stage name, quotes and dots included, is one key.
  const std::string odd = "Prod \"EU\".west";
  REQUIRE(s->PlaceHold("shop", "Production", R"({"deployment_id":7,"by":"alice"})").ok());
  REQUIRE(s->PlaceHold("shop", odd, R"({"deployment_id":8})").ok());
  CHECK(
      holds() ==
      R"({"Production":{"deployment_id":7,"by":"alice"},"Prod \"EU\".west":{"deployment_id":8}})");
  // Replacing one changes only that one; a new spec version keeps them.
  REQUIRE(s->PlaceHold("shop", "Production", R"({"deployment_id":9,"by":"bob"})").ok());
  REQUIRE(s->PutApplication({"shop", 0, "{\"v\":2}", "v: 2", 2, "t", "{}"}).ok());
  CHECK(holds() ==
        R"({"Production":{"deployment_id":9,"by":"bob"},"Prod \"EU\".west":{"deployment_id":8}})");
  auto cleared = s->ClearHold("shop", odd);
  REQUIRE(cleared.ok());
  CHECK(*cleared);
  auto again = s->ClearHold("shop", odd);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  CHECK(holds() == R"({"Production":{"deployment_id":9,"by":"bob"}})");
  CHECK(s->PlaceHold("nope", "Production", "{}").code() == Code::kNotFound);
  CHECK(s->ClearHold("nope", "Production").status().code() == Code::kNotFound);
  CHECK(s->PlaceHold("shop", "Production", "not json").code() != Code::kOk);
  CHECK(holds() == R"({"Production":{"deployment_id":9,"by":"bob"}})");

  // Eight threads place and clear holds on stages of their own: none is lost.
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      std::string stage = "S" + std::to_string(t);
      for (int i = 0; i < 20; ++i) {
        CHECK(s->PlaceHold("shop", stage, "{\"deployment_id\":" + std::to_string(i) + "}").ok());
        if (i < 19) CHECK(s->ClearHold("shop", stage).ok());
      }
    });
  for (auto& t : threads) t.join();
  std::string all = holds();
  for (int t = 0; t < 8; ++t)
    CHECK(all.find("\"S" + std::to_string(t) + "\":{\"deployment_id\":19}") != std::string::npos);
  CHECK(all.find("\"Production\":{\"deployment_id\":9") != std::string::npos);
}

TEST_CASE("Atomically commits a change and its audit entry together, or neither") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  auto audits = [&] {
    auto a = s->ListAudit({}, {1000, 0});
    REQUIRE(a.ok());
    return a->size();
  };
  // Both kept.
  REQUIRE(s->Atomically([&] {
             REPRISE_RETURN_IF_ERROR(s->PutEnvironment({"Testing", "{}", 1}));
             return s->AppendAudit({0, 1, "alice", "environment.put", "Testing", ""});
           }).ok());
  CHECK(s->GetEnvironment("Testing").ok());
  CHECK(audits() == 1);

  // The body fails after both writes: neither is kept, and the error is the body's.
  Status failed = s->Atomically([&] {
    REPRISE_RETURN_IF_ERROR(s->PutEnvironment({"Production", "{}", 2}));
    REPRISE_RETURN_IF_ERROR(s->AppendAudit({0, 2, "alice", "environment.put", "Production", ""}));
    return Internal("the audit could not be written");
  });
  CHECK(failed.code() == Code::kInternal);
  CHECK(failed.message() == "the audit could not be written");
  CHECK(s->GetEnvironment("Production").status().code() == Code::kNotFound);
  CHECK(audits() == 1);

  // An exception from the body undoes everything too.
  CHECK_FALSE(s->Atomically([&]() -> Status {
                 REPRISE_RETURN_IF_ERROR(s->PutEnvironment({"Staging", "{}", 3}));
                 throw std::runtime_error("boom");
               }).ok());
  CHECK(s->GetEnvironment("Staging").status().code() == Code::kNotFound);

  // A write that fails inside is undone alone; the body decides the rest.
  SeedShop(*s);
  Status conflict;
  REQUIRE(s->Atomically([&] {
             REPRISE_RETURN_IF_ERROR(s->PutEnvironment({"Production", "{}", 4}));
             conflict = s->CreateRelease({"shop", "1.0", 1, "{}", "{}", 1, "t"});
             // Reads inside see the transaction's own writes.
             REPRISE_RETURN_IF_ERROR(s->GetEnvironment("Production").status());
             return s->AppendAudit({0, 4, "alice", "environment.put", "Production", ""});
           }).ok());
  CHECK(conflict.code() != Code::kOk);
  CHECK(s->GetEnvironment("Production").ok());
  CHECK(audits() == 2);

  // Nested: the inner group is part of the outer one.
  CHECK_FALSE(s->Atomically([&] {
                 REPRISE_RETURN_IF_ERROR(s->Atomically([&] {
                   return s->PutEnvironment({"Inner", "{}", 5});
                 }));
                 return Cancelled("changed my mind");
               }).ok());
  CHECK(s->GetEnvironment("Inner").status().code() == Code::kNotFound);

  // Other threads wait for the group and then go on: the other write,
  // started while the group sleeps, ends after the group's last write.
  std::atomic<bool> inside{false};
  std::atomic<bool> group_was_there{false};
  std::thread other;
  REQUIRE(s->Atomically([&] {
             other = std::thread([&] {
               while (!inside) std::this_thread::yield();
               CHECK(s->PutEnvironment({"Other", "{}", 6}).ok());
               group_was_there = s->GetEnvironment("Group").ok();
             });
             inside = true;
             std::this_thread::sleep_for(std::chrono::milliseconds(50));
             return s->PutEnvironment({"Group", "{}", 6});
           }).ok());
  other.join();
  CHECK(group_was_there);
  CHECK(s->GetEnvironment("Group").ok());
  CHECK(s->GetEnvironment("Other").ok());
}

TEST_CASE("audit entries list newest first and filter") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  REQUIRE(s->AppendAudit({0, 1, "alice", "environment.put", "Testing", "x"}).ok());
  REQUIRE(s->AppendAudit({0, 2, "bob", "target.put", "web", "y"}).ok());
  auto all = s->ListAudit({}, {});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].actor == "bob");
  auto envs = s->ListAudit({"environment.", ""}, {});
  REQUIRE(envs.ok());
  REQUIRE(envs->size() == 1);
  CHECK((*envs)[0].subject == "Testing");
}

TEST_CASE("pagination limits and offsets listings") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  for (int i = 0; i < 5; ++i) REQUIRE(s->PutEnvironment({"env" + std::to_string(i), "{}", 1}).ok());
  auto page = s->ListEnvironments({2, 2});
  REQUIRE(page.ok());
  REQUIRE(page->size() == 2);
  CHECK((*page)[0].name == "env2");
  CHECK((*page)[1].name == "env3");
}

TEST_CASE("a target needs an existing environment (foreign key)") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  Status st = s->PutTarget({"web", "Nowhere", "a", "/srv", "{}", 1});
  CHECK_FALSE(st.ok());
  auto missing = s->GetTarget("web");
  CHECK(missing.status().code() == Code::kNotFound);
}

}  // namespace reprise

namespace reprise {

TEST_CASE("enrollment tokens are found by hash and record who used them") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  REQUIRE(s->CreateEnrollToken({"h1", true, "admin", 1, 100, ""}).ok());
  CHECK(s->CreateEnrollToken({"h1", false, "admin", 1, 100, ""}).code() == Code::kConflict);
  REQUIRE(s->MarkEnrollTokenUsed("h1", "web-1").ok());
  REQUIRE(s->MarkEnrollTokenUsed("h1", "web-2").ok());
  auto t = s->FindEnrollToken("h1");
  REQUIRE(t.ok());
  CHECK(t->pre_approved);
  CHECK(t->used_by == "web-1,web-2");
  CHECK(s->FindEnrollToken("nope").status().code() == Code::kNotFound);
  CHECK(s->MarkEnrollTokenUsed("nope", "x").code() == Code::kNotFound);
}

TEST_CASE("agents keep their public key") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  AgentRecord a;
  a.name = "web-1";
  a.status = "pending";
  a.public_key = "pk";
  a.created_at = 5;
  REQUIRE(s->PutAgent(a).ok());
  a.status = "approved";
  REQUIRE(s->PutAgent(a).ok());
  auto got = s->GetAgent("web-1");
  REQUIRE(got.ok());
  CHECK(got->status == "approved");
  CHECK(got->public_key == "pk");
  a.status = "bogus";
  CHECK_FALSE(s->PutAgent(a).ok());
}

TEST_CASE("one standing approval per user: a repeat is refused, older duplicates are revoked" *
          SqliteOnly()) {
  TempDir dir;
  {
    // A database at version 4, which took the same user's approval twice.
    SQLite::Database db = OldDatabase(dir, 4);
    db.exec(
        "INSERT INTO applications VALUES('shop', 1, '{}', '', 1, 't', '{}');"
        "INSERT INTO releases VALUES('shop', '1.0', 1, '{}', '{}', 1, 't');"
        "INSERT INTO builds VALUES('shop', '1.0', 1, '{}', 1, 't');"
        "INSERT INTO deployments(id, application, release, build, stage, kind, status, "
        "requested_by, created_at) VALUES(7, 'shop', '1.0', 1, 'Production', 'promote', "
        "'waiting', 'rita', 1);"
        "INSERT INTO approvals(deployment_id, user, decision, at) VALUES(7, 'rob', 'approved', 1),"
        " (7, 'rob', 'approved', 2);");
  }
  int64_t id = 7;
  auto s = OpenTestStore(dir);
  CHECK(s->SchemaVersion() == static_cast<int64_t>(SqliteMigrations().size()));
  auto list = s->ListApprovals(id);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK_FALSE((*list)[0].revoked);
  CHECK((*list)[1].revoked);

  // A second approval by the same user is refused, naming the user.
  auto again = s->AddApproval({0, id, "rob", "approved", "", 2, false});
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == Code::kAlreadyExists);
  CHECK(again.status().message().find("'rob' has already approved") != std::string::npos);
  // After revoking, approving again is allowed; a rejection replaces an approval.
  REQUIRE(s->RevokeApprovals(id, "rob").ok());
  REQUIRE(s->AddApproval({0, id, "rob", "approved", "", 3, false}).ok());
  REQUIRE(s->AddApproval({0, id, "rob", "rejected", "no", 4, false}).ok());
  list = s->ListApprovals(id);
  REQUIRE(list.ok());
  int standing = 0;
  for (const auto& a : *list) standing += a.revoked ? 0 : 1;
  CHECK(standing == 1);
  CHECK(list->back().decision == "rejected");
  CHECK_FALSE(list->back().revoked);
}

TEST_CASE("succeeded builds per stage come from a table kept on success, also for old history" *
          SqliteOnly()) {
  TempDir dir;
  {
    // History written by version 6, before the table existed.
    SQLite::Database db = OldDatabase(dir, 6);
    db.exec(
        "INSERT INTO applications VALUES('shop', 1, '{}', '', 1, 't', '{}');"
        "INSERT INTO releases VALUES('shop', '1.0', 1, '{}', '{}', 1, 't');"
        "INSERT INTO builds VALUES('shop', '1.0', 1, '{}', 1, 't'), ('shop', '1.0', 2, '{}', 1, "
        "'t'),"
        " ('shop', '1.0', 3, '{}', 1, 't');");
    SQLite::Statement q(db,
                        "INSERT INTO deployments(id, application, release, build, stage, kind, "
                        "status, requested_by, created_at, finished_at) "
                        "VALUES(?, 'shop', '1.0', ?, ?, 'promote', ?, ?, 1, ?)");
    struct Row {
      int id, build;
      const char* stage;
      const char* status;
      const char* by;
      int finished;
    };
    for (const Row& r : {Row{1, 1, "Production", "succeeded", "ann", 10},
                         Row{2, 2, "Production", "succeeded", "bob", 20},
                         Row{3, 1, "Production", "succeeded", "cid", 30},  // 1 again, newest
                         Row{4, 3, "Production", "failed", "dee", 40},
                         Row{5, 3, "Testing", "succeeded", "eve", 50}}) {
      q.reset();
      SQLite::bind(q, r.id, r.build, r.stage, r.status, r.by, r.finished);
      q.exec();
    }
  }
  auto s = OpenTestStore(dir);
  auto builds = s->SucceededBuilds("shop", "Production", 10);
  REQUIRE(builds.ok());
  REQUIRE(builds->size() == 2);
  CHECK((*builds)[0].build == 1);
  CHECK((*builds)[0].deployment_id == 3);
  CHECK((*builds)[0].by == "cid");
  CHECK((*builds)[1].build == 2);
  CHECK(s->SucceededBuilds("shop", "Production", 1)->size() == 1);
  REQUIRE(s->LastSuccess("shop", "1.0", 1, "Production").ok());
  CHECK(s->LastSuccess("shop", "1.0", 1, "Production")->id == 3);
  CHECK(s->LastSuccess("shop", "1.0", 3, "Production").status().code() == Code::kNotFound);

  // A new success is recorded as it happens: build 3 on Production, newest first.
  auto created = CreatePromotion(*s, {.build = 3, .requested_by = "fay", .created_at = 60});
  CHECK(s->SucceededBuilds("shop", "Production", 10)->size() == 2);
  REQUIRE(*s->TransitionDeployment(created.id, {"running"}, "succeeded", 0, 70));
  builds = s->SucceededBuilds("shop", "Production", 10);
  REQUIRE(builds->size() == 3);
  CHECK((*builds)[0].build == 3);
  CHECK((*builds)[0].deployment_id == created.id);
  CHECK((*builds)[0].at == 70);
  CHECK(s->LastSuccess("shop", "1.0", 3, "Production")->id == created.id);
  SQLite::Database db(TestStorePath(dir));
  CHECK(db.tableExists("stage_builds"));
}

TEST_CASE("finishing a deployment writes its logs, targets, target states and status at once") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  SeedShop(*s, 1);
  int64_t id = CreatePromotion(*s, {.requested_by = "rita"}).id;
  REQUIRE(
      s->StartDeployment(id, R"({"x":1})", "redeploy", {{id, "web-1", "running", "", "", "", 2, 0}})
          .ok());
  CHECK(s->GetDeployment(id)->kind == "redeploy");
  CHECK(s->ListDeploymentTargets(id)->at(0).status == "running");
  TargetStateRecord state{"shop", "Production", {"web-1", "1.0", 1, id, 3, "rita"}, "1.0-1-abc"};
  auto finish = [&] {
    return s->FinishDeployment(
        id, {"running"}, "succeeded", 3, "", {{id, "web-1", "succeeded", "ok", "", "", 2, 3}},
        {state}, {{id, 0, 2, "web-1", "info", "step done"}}, {{id, 0, 3, "", "info", "succeeded"}});
  };
  auto moved = finish();
  REQUIRE(moved.ok());
  CHECK(*moved);
  auto got = s->GetDeployment(id);
  CHECK(got->status == "succeeded");
  CHECK(got->finished_at == 3);
  CHECK(s->ListDeploymentTargets(id)->at(0).status == "succeeded");
  CHECK(s->GetTargetState("web-1")->release_dir == "1.0-1-abc");
  CHECK(s->SucceededBuilds("shop", "Production", 10)->size() == 1);
  auto log = s->ListDeploymentLog(id, 0, 10);
  REQUIRE(log->size() == 2);
  CHECK((*log)[0].text == "step done");
  CHECK((*log)[1].seq == 2);
  CHECK((*log)[1].text == "succeeded");
  // Already final: nothing moves and the final line is not written again.
  moved = finish();
  REQUIRE(moved.ok());
  CHECK_FALSE(*moved);
  CHECK(s->ListDeploymentLog(id, 0, 10)->back().text == "step done");
  CHECK(s->ListDeploymentLog(id, 0, 10)->size() == 3);
}

}  // namespace reprise
