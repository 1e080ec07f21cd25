// The rollback-record aggregate of the SQLite store: a record with its
// targets and components, compare-and-set transitions, selection only while
// draft, one decision per user, filters, and persistence across reopening.
#include <doctest/doctest.h>

#include "tests/server/store/store_fixture.h"

namespace reprise {
namespace {

// A succeeded promotion of build 2 of shop 1.0 to Production.
int64_t MakeDeployment(Store& s) {
  SeedShop(s, 2);
  return CreatePromotion(s, {.build = 2, .status = "succeeded", .created_at = 1000}).id;
}

RollbackRecord Draft(int64_t deployment) {
  RollbackRecord r;
  r.deployment_id = deployment;
  r.application = "shop";
  r.stage = "Production";
  r.release = "1.0";
  r.build = 2;
  r.comment = "undo the config";
  r.created_by = "alice";
  r.created_at = 5000;
  return r;
}

std::vector<RollbackComponentRecord> Components() {
  return {{"web1", "app.conf", "override", true},
          {"web1", "new.txt", "delete", true},
          {"web2", "app.conf", "override", true}};
}

TEST_CASE("rollback records: create, read, select while draft, transition once") {
  TempDir dir;
  auto s = OpenTestStore(dir);
  Store& store = *s;
  int64_t d = MakeDeployment(store);
  RollbackRecordTarget t;
  t.target = "web1";
  t.release_dir = "shop-1.0-2";
  t.manifest_json = "{}";
  t.manifest_hash = "md";
  t.previous_deployment_id = d;
  t.previous_release_dir = "shop-1.0-1";
  t.composed_manifest_hash = "c1";
  RollbackRecordTarget t2 = t;
  t2.target = "web2";
  auto created = store.CreateRollbackRecord(Draft(d), {t, t2}, Components());
  REQUIRE(created.ok());
  CHECK(created->status == "draft");
  CHECK(created->components_total == 3);
  CHECK(created->components_selected == 3);

  auto targets = store.ListRollbackRecordTargets(created->id);
  REQUIRE(targets.ok());
  REQUIRE(targets->size() == 2);
  CHECK((*targets)[0].previous_release_dir == "shop-1.0-1");

  RollbackRecordTarget composed = t;
  composed.composed_manifest_hash = "c2";
  auto sel =
      store.SetRollbackSelection(created->id, {{"web1", "new.txt", "delete", false}}, {composed});
  REQUIRE(sel.ok());
  CHECK(*sel);
  CHECK(store.GetRollbackRecord(created->id)->components_selected == 2);
  CHECK(store.ListRollbackRecordTargets(created->id)->at(0).composed_manifest_hash == "c2");

  RollbackRecordChange submit;
  submit.submitted_by = "alice";
  submit.submitted_at = 6000;
  CHECK(*store.TransitionRollbackRecord(created->id, {"draft"}, "pending-approval", submit));
  CHECK_FALSE(*store.TransitionRollbackRecord(created->id, {"draft"}, "pending-approval", submit));
  // No selection changes once submitted.
  CHECK_FALSE(*store.SetRollbackSelection(created->id, {{"web1", "new.txt", "delete", true}}, {}));
  auto after = store.GetRollbackRecord(created->id);
  CHECK(after->status == "pending-approval");
  CHECK(after->submitted_by == "alice");
  CHECK(after->components_selected == 2);

  CHECK(store.AddRollbackApproval(created->id, {"bob", "approved", "ok", 7000}).ok());
  CHECK(store.AddRollbackApproval(created->id, {"bob", "approved", "again", 7001}).code() ==
        Code::kAlreadyExists);
  CHECK(store.ListRollbackApprovals(created->id)->size() == 1);

  CHECK(store.SetRollbackConnection(created->id, R"({"ok":true})", true, 8000).ok());
  CHECK(store.GetRollbackRecord(created->id)->connection_ok);

  RollbackRecordChange exec;
  exec.executed_by = "bob";
  exec.executed_at = 9000;
  exec.execution_deployment_id = d;
  CHECK(*store.TransitionRollbackRecord(created->id, {"pending-approval"}, "executing", exec));
  auto found = store.FindRollbackRecordByExecution(d);
  REQUIRE(found.ok());
  CHECK(found->id == created->id);
  CHECK(found->submitted_by == "alice");  // kept
  CHECK(store.FindRollbackRecordByExecution(d + 100).status().code() == Code::kNotFound);
}

TEST_CASE("rollback records: list filters and reopening") {
  TempDir dir;
  int64_t first = 0;
  {
    auto s = OpenTestStore(dir);
    int64_t d = MakeDeployment(*s);
    first = s->CreateRollbackRecord(Draft(d), {}, {})->id;
    RollbackRecord other = Draft(d);
    other.stage = "Testing";
    other.created_at = 9000;
    REQUIRE(s->CreateRollbackRecord(other, {}, {}).ok());
  }
  auto s = OpenTestStore(dir);
  CHECK(s->ListRollbackRecords({}, {})->size() == 2);
  RollbackRecordFilter by_stage;
  by_stage.stage = "Production";
  auto prod = s->ListRollbackRecords(by_stage, {});
  REQUIRE(prod->size() == 1);
  CHECK(prod->at(0).id == first);
  RollbackRecordFilter by_time;
  by_time.from = 6000;
  CHECK(s->ListRollbackRecords(by_time, {})->size() == 1);
  RollbackRecordFilter by_status;
  by_status.statuses = {"executed"};
  CHECK(s->ListRollbackRecords(by_status, {})->empty());
  CHECK(s->GetRollbackRecord(12345).status().code() == Code::kNotFound);
}

}  // namespace
}  // namespace reprise
