// Retention against a real SQLite store and a real BlobStore in a temporary
// directory; the records are written directly through the Store interface.
#include "server/catalog/retention.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "agents/deployer/archive.h"
#include "common/crypto.h"
#include "planner/app_spec.h"
#include "server/artifacts/blob_store.h"
#include "server/artifacts/file_index.h"
#include "server/catalog/catalog.h"
#include "tests/server/store/store_fixture.h"
#include "tests/support/wait.h"

namespace reprise {

namespace {

constexpr int64_t kDay = 24LL * 60 * 60 * 1000;

std::string SpecJson(const std::vector<std::pair<std::string, std::string>>& stages) {
  std::string yaml = "pipeline:\n";
  for (const auto& [stage, target] : stages)
    yaml += "  - stage: " + stage + "\n    environment: " + stage + "\n    targets: [" + target +
            "]\n    plan: deploy\n";
  yaml += "plans:\n  deploy: |\n    - log: \"deploying\"\n";
  auto spec = ParseAppSpec(yaml, "test spec");
  REQUIRE_MESSAGE(spec.ok(), spec.status().ToString());
  return AppSpecToJson(*spec);
}

const std::vector<std::pair<std::string, std::string>> kPipeline = {
    {"Integration", "int-web"}, {"Testing", "test-web"}, {"Production", "prod-web"}};

class World {
 public:
  World() : clock_(FromUnixMillis(1795000000000)) {
    store_ = OpenTestStore(dir_);
    auto blobs = BlobStore::Open(dir_.path() / "blobs", BlobStoreOptions{0, false});
    REQUIRE(blobs.ok());
    blobs_ = std::move(*blobs);
    catalog_ = std::make_unique<Catalog>(CatalogOptions{store_.get(), blobs_.get(), &clock_});
  }

  // Derives file indexes, as the server does, and collects without a grace
  // period (the contents here are all seconds old).
  FileIndex& UseFileIndex() {
    auto files = FileIndex::Open(*blobs_, {}, std::chrono::seconds(0));
    REQUIRE_MESSAGE(files.ok(), files.status().ToString());
    files_ = std::move(*files);
    catalog_ = std::make_unique<Catalog>(
        CatalogOptions{store_.get(), blobs_.get(), &clock_, files_.get()});
    return *files_;
  }

  // The bytes of a .tar.gz holding `files` (path -> content).
  std::string Archive(const std::map<std::string, std::string>& files) {
    const auto tree = dir_.path() / ("tree-" + RandomHex(4));
    for (const auto& [path, content] : files) {
      std::filesystem::create_directories((tree / path).parent_path());
      std::ofstream(tree / path) << content;
    }
    const auto archive = tree.string() + ".tar.gz";
    REQUIRE(CreateTarGz(tree, archive).ok());
    std::ifstream in(archive, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  int64_t now() const { return ToUnixMillis(clock_.Now()); }
  Store& store() { return *store_; }
  BlobStore& blobs() { return *blobs_; }

  void App(const std::string& app,
           const std::vector<std::pair<std::string, std::string>>& stages = kPipeline) {
    ApplicationRecord a;
    a.name = app;
    a.spec_json = SpecJson(stages);
    a.spec_text = a.spec_json;
    a.updated_at = now();
    a.updated_by = "admin";
    REQUIRE(store_->PutApplication(a).ok());
  }

  // A release whose snapshot is the application's spec now.
  void Release(const std::string& app, const std::string& number) {
    auto a = store_->GetApplication(app);
    REQUIRE(a.ok());
    REQUIRE(store_->CreateRelease({app, number, a->spec_version, a->spec_json, "{}", now(), "ci"})
                .ok());
  }

  // A build created `age_days` ago with one artifact per entry of `contents`
  // (name -> bytes). Returns its number.
  int64_t Build(const std::string& app, const std::string& release, int64_t age_days,
                const std::map<std::string, std::string>& contents = {{"web", ""}}) {
    BuildRecord b;
    b.application = app;
    b.release = release;
    b.created_at = now() - age_days * kDay;
    b.created_by = "ci";
    auto created = store_->CreateBuild(b);
    REQUIRE(created.ok());
    for (auto [name, bytes] : contents) {
      if (bytes.empty()) bytes = app + " " + release + " build " + std::to_string(created->number);
      auto sha = blobs_->Put(bytes);
      REQUIRE(sha.ok());
      ArtifactRecord rec{
          app, release, created->number, name, *sha, static_cast<int64_t>(bytes.size()),
          1,   "{}",    b.created_at,    "ci"};
      REQUIRE(store_->AddArtifact(rec).ok());
    }
    return created->number;
  }

  // A deployment of the build to the stage that succeeded `age_days` ago
  // (plus `order` ms, to order several on one day); when `target` is given,
  // that target holds the build now.
  int64_t Succeeded(const std::string& app, const std::string& release, int64_t build,
                    const std::string& stage, int64_t age_days, const std::string& target = "",
                    int64_t order = 0) {
    int64_t at = now() - age_days * kDay + order;
    auto created = CreatePromotion(*store_, {.application = app,
                                             .release = release,
                                             .build = build,
                                             .stage = stage,
                                             .created_at = at - 1000});
    int64_t id = created.id;
    auto moved = store_->TransitionDeployment(id, {"running"}, "succeeded", at - 500, at);
    REQUIRE(moved.ok());
    REQUIRE(*moved);
    if (!target.empty())
      REQUIRE(store_
                  ->PutTargetState(app, stage, {target, release, build, id, at, "alice"},
                                   "/srv/" + target + "/releases/" + std::to_string(id))
                  .ok());
    return id;
  }

  std::string ShaOf(const std::string& app, const std::string& release, int64_t build,
                    const std::string& name = "web") {
    auto a = store_->GetArtifact(app, release, build, name);
    REQUIRE(a.ok());
    return a->sha256;
  }

  // Everything retention could change, to compare before and after.
  std::string Listing() {
    std::string out;
    auto builds = store_->ListAllBuilds();
    REQUIRE(builds.ok());
    for (const auto& b : *builds) {
      auto arts = store_->ListArtifacts(b.application, b.release, b.number);
      REQUIRE(arts.ok());
      out += b.application + "/" + b.release + "/" + std::to_string(b.number) + ":";
      for (const auto& a : *arts) out += " " + a.name + "=" + a.sha256;
      out += "\n";
    }
    auto blobs = blobs_->List();
    REQUIRE(blobs.ok());
    for (const auto& sha : *blobs) out += "blob " + sha + "\n";
    auto audit = store_->ListAudit({}, {1000, 0});
    REQUIRE(audit.ok());
    out += "audit entries: " + std::to_string(audit->size()) + "\n";
    return out;
  }

  const Clock& clock() const { return clock_; }
  Catalog& catalog() { return *catalog_; }
  // What the server removes blobs with.
  BlobRemover Remover() {
    return [this](const std::string& sha) { return catalog_->RemoveBlobIfUnreferenced(sha); };
  }

  RetentionReport Run(const RetentionPolicy& policy, bool dry_run) {
    auto r = ApplyRetention(*store_, *blobs_, clock_, policy, dry_run, "root", Remover());
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return std::move(*r);
  }

 private:
  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<FileIndex> files_;  // after blobs_: derives from them
  std::unique_ptr<Catalog> catalog_;
};

const RetentionDecision* Find(const std::vector<RetentionDecision>& list, const std::string& app,
                              const std::string& release, int64_t build) {
  for (const auto& d : list)
    if (d.application == app && d.release == release && d.build == build) return &d;
  return nullptr;
}

std::vector<std::string> Reasons(const RetentionReport& report, const std::string& release,
                                 int64_t build) {
  const RetentionDecision* d = Find(report.kept, "shop", release, build);
  if (d == nullptr) return {"(not kept)"};
  CHECK(d->keep);
  return d->reasons;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("retention: old builds go; deployed builds and the last K rollback candidates stay") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  // Builds 1..6 of 1.0, 59 down to 54 days old; 2.0 build 1 is a day old,
  // 2.0 build 2 has no artifacts.
  for (int i = 1; i <= 6; ++i) REQUIRE(w.Build("shop", "1.0", 60 - i) == i);
  w.Release("shop", "2.0");
  REQUIRE(w.Build("shop", "2.0", 1) == 1);
  REQUIRE(w.Build("shop", "2.0", 0, {}) == 2);

  // Production holds the oldest build. Testing: 2, then 3 succeeded, then 4,
  // which test-web holds now: rollback candidates #1 = 3, #2 = 2.
  w.Succeeded("shop", "1.0", 1, "Integration", 58, "");
  w.Succeeded("shop", "1.0", 1, "Production", 57, "prod-web");
  w.Succeeded("shop", "1.0", 2, "Testing", 50, "", 1);
  w.Succeeded("shop", "1.0", 3, "Testing", 50, "", 2);
  w.Succeeded("shop", "1.0", 4, "Testing", 40, "test-web");

  RetentionPolicy policy;
  policy.keep_builds_per_release = 2;
  policy.keep_days = 30;
  policy.keep_rollback_candidates = 1;

  const std::string before = w.Listing();
  const std::string sha2 = w.ShaOf("shop", "1.0", 2);
  RetentionReport dry = w.Run(policy, /*dry_run=*/true);
  CHECK(w.Listing() == before);  // a dry run changes nothing
  CHECK(dry.dry_run);

  {
    const RetentionReport* r = &dry;
    REQUIRE(r->deleted.size() == 1);
    const RetentionDecision& gone = r->deleted[0];
    CHECK(gone.release == "1.0");
    CHECK(gone.build == 2);
    CHECK_FALSE(gone.keep);
    CHECK(gone.reasons == Strings{"not deployed on any target",
                                  "not among the last 1 rollback candidates of any stage",
                                  "not among the newest 2 of release 1.0",
                                  "58 days old (keep_days 30)"});
    REQUIRE(gone.artifacts.size() == 1);
    CHECK(gone.artifacts[0].blob_removed);
    CHECK(gone.artifacts[0].blob_shared_with.empty());
    CHECK(r->blobs_removed == Strings{sha2});
    CHECK(r->bytes_freed == std::string("shop 1.0 build 2").size());

    CHECK(r->kept.size() == 6);  // 2.0 build 2 has no artifacts: not listed
    CHECK(Find(r->kept, "shop", "2.0", 2) == nullptr);
    CHECK(Find(r->deleted, "shop", "2.0", 2) == nullptr);
    // Pipeline order: Integration (a candidate there), then Production.
    CHECK(Reasons(*r, "1.0", 1) ==
          Strings{"rollback candidate #1 on Integration", "deployed on prod-web (Production)"});
    CHECK(Reasons(*r, "1.0", 3) == Strings{"rollback candidate #1 on Testing"});
    CHECK(Reasons(*r, "1.0", 4) == Strings{"deployed on test-web (Testing)"});
    CHECK(Reasons(*r, "1.0", 5) == Strings{"among the newest 2 of release 1.0"});
    CHECK(Reasons(*r, "1.0", 6) == Strings{"among the newest 2 of release 1.0"});
    CHECK(Reasons(*r, "2.0", 1) ==
          Strings{"among the newest 2 of release 2.0", "younger than 30 days"});
  }

  RetentionReport real = w.Run(policy, /*dry_run=*/false);
  CHECK_FALSE(real.dry_run);
  REQUIRE(real.deleted.size() == 1);
  CHECK(real.deleted[0].build == 2);
  CHECK(real.blobs_removed == Strings{sha2});
  CHECK(real.warnings.empty());

  // The build and artifact records stay (a tombstone: the hash, no bytes), the
  // blob is gone; the rest is intact.
  CHECK(w.store().GetBuild("shop", "1.0", 2).ok());
  auto arts = w.store().ListArtifacts("shop", "1.0", 2);
  REQUIRE(arts.ok());
  REQUIRE(arts->size() == 1);
  CHECK((*arts)[0].sha256 == sha2);
  CHECK((*arts)[0].blob_removed_at == ToUnixMillis(w.clock().Now()));
  CHECK_FALSE(w.blobs().Exists(sha2));
  for (int b : {1, 3, 4, 5, 6}) {
    CAPTURE(b);
    CHECK(w.blobs().Exists(w.ShaOf("shop", "1.0", b)));
  }
  auto audit = w.store().ListAudit({"artifact.retention", ""}, {100, 0});
  REQUIRE(audit.ok());
  REQUIRE(audit->size() == 1);
  CHECK((*audit)[0].subject == "shop/1.0/2");
  CHECK((*audit)[0].actor == "root");
  CHECK((*audit)[0].summary.find("blob removed") != std::string::npos);

  // Running again finds nothing more to delete.
  RetentionReport again = w.Run(policy, false);
  CHECK(again.deleted.empty());
  CHECK(again.blobs_removed.empty());
}

TEST_CASE("retention: a deployed build is kept however old, even with every rule at 0") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  w.Build("shop", "1.0", 3000);  // 1: deployed 8 years ago, still on prod-web
  w.Build("shop", "1.0", 2000);  // 2: a rollback candidate, unprotected with K = 0
  w.Build("shop", "1.0", 1000);  // 3: on int-web
  w.Build("shop", "1.0", 900);   // 4: scheduled to deploy
  w.Build("shop", "1.0", 0);     // 5: created today
  w.Succeeded("shop", "1.0", 1, "Production", 2999, "prod-web");
  w.Succeeded("shop", "1.0", 2, "Integration", 1999);
  w.Succeeded("shop", "1.0", 3, "Integration", 999, "int-web");
  auto sched = CreatePromotion(w.store(), {.build = 4,
                                           .stage = "Testing",
                                           .status = "scheduled",
                                           .scheduled_at = w.now() + kDay,
                                           .created_at = w.now()});

  RetentionReport r = w.Run({0, 0, 0}, false);
  CHECK(Reasons(r, "1.0", 1) == Strings{"deployed on prod-web (Production)"});
  CHECK(Reasons(r, "1.0", 3) == Strings{"deployed on int-web (Integration)"});
  CHECK(Reasons(r, "1.0", 4) ==
        Strings{"pending deployment #" + std::to_string(sched.id) + " to Testing (scheduled)"});
  REQUIRE(r.deleted.size() == 2);
  CHECK(r.deleted[0].build == 2);
  CHECK(r.deleted[1].build == 5);
  CHECK(r.deleted[0].reasons ==
        Strings{"not deployed on any target",
                "rollback candidates not protected (keep_rollback_candidates 0)",
                "no build kept by number (keep_builds 0)", "no build kept by age (keep_days 0)"});
  CHECK(w.blobs().Exists(w.ShaOf("shop", "1.0", 1)));
  CHECK(w.blobs().Exists(w.ShaOf("shop", "1.0", 3)));
  CHECK(w.blobs().Exists(w.ShaOf("shop", "1.0", 4)));
  CHECK(r.blobs_removed.size() == 2);
}

TEST_CASE("retention: the last K successful builds of every stage are kept, newest success first") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  for (int i = 1; i <= 8; ++i) w.Build("shop", "1.0", 100);
  // Testing: builds 1..7 succeeded in that order; 7 is on test-web. Build 2
  // succeeded again last of the candidates (a re-deploy), so it is #1.
  for (int i = 1; i <= 7; ++i) w.Succeeded("shop", "1.0", i, "Testing", 90, "", i);
  w.Succeeded("shop", "1.0", 2, "Testing", 90, "", 50);
  w.Succeeded("shop", "1.0", 7, "Testing", 90, "test-web", 60);
  // Production: build 1 is a candidate there, build 8 is on prod-web.
  w.Succeeded("shop", "1.0", 1, "Production", 80, "", 1);
  w.Succeeded("shop", "1.0", 8, "Production", 80, "prod-web", 2);

  RetentionReport r = w.Run({0, 0, 3}, true);
  CHECK(Reasons(r, "1.0", 7) == Strings{"deployed on test-web (Testing)"});
  CHECK(Reasons(r, "1.0", 2) == Strings{"rollback candidate #1 on Testing"});
  CHECK(Reasons(r, "1.0", 6) == Strings{"rollback candidate #2 on Testing"});
  CHECK(Reasons(r, "1.0", 5) == Strings{"rollback candidate #3 on Testing"});
  CHECK(Reasons(r, "1.0", 1) == Strings{"rollback candidate #1 on Production"});
  CHECK(Reasons(r, "1.0", 8) == Strings{"deployed on prod-web (Production)"});
  Strings deleted;
  for (const auto& d : r.deleted) deleted.push_back(std::to_string(d.build));
  CHECK(deleted == Strings{"3", "4"});
}

TEST_CASE("retention: a blob shared by two builds stays while any kept build references it") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  const std::string shared = "the same bytes in builds 1 and 4";
  const std::string pair = "the same bytes in builds 2 and 3";
  w.Build("shop", "1.0", 90, {{"web", shared}, {"db", ""}});  // 1: deleted
  w.Build("shop", "1.0", 80, {{"web", pair}});                // 2: deleted
  w.Build("shop", "1.0", 70, {{"web", pair}});                // 3: deleted
  w.Build("shop", "1.0", 1, {{"config", shared}});            // 4: young, kept
  const std::string shared_sha = w.ShaOf("shop", "1.0", 4, "config");
  const std::string pair_sha = w.ShaOf("shop", "1.0", 2);
  const std::string db_sha = w.ShaOf("shop", "1.0", 1, "db");
  // A blob that no record references (an upload whose record never came).
  auto orphan = w.blobs().Put("orphan");
  REQUIRE(orphan.ok());

  const std::string before = w.Listing();
  RetentionReport dry = w.Run({0, 30, 5}, true);
  CHECK(w.Listing() == before);
  {
    const RetentionReport* r = &dry;
    REQUIRE(r->deleted.size() == 3);
    const RetentionDecision* one = Find(r->deleted, "shop", "1.0", 1);
    REQUIRE(one != nullptr);
    REQUIRE(one->artifacts.size() == 2);
    // Artifacts are listed by name: db, web.
    CHECK(one->artifacts[0].name == "db");
    CHECK(one->artifacts[0].blob_removed);
    CHECK(one->artifacts[1].name == "web");
    CHECK_FALSE(one->artifacts[1].blob_removed);
    CHECK(one->artifacts[1].blob_shared_with == Strings{"shop 1.0 build 4"});
    Strings expect = {pair_sha, db_sha, *orphan};
    std::sort(expect.begin(), expect.end());
    CHECK(r->blobs_removed == expect);
    CHECK(r->bytes_freed == pair.size() + std::string("shop 1.0 build 1").size() + 6);
  }

  RetentionReport real = w.Run({0, 30, 5}, false);
  CHECK(real.blobs_removed == dry.blobs_removed);
  CHECK(real.bytes_freed == dry.bytes_freed);
  CHECK(w.blobs().Exists(shared_sha));  // build 4 still references it
  CHECK_FALSE(w.blobs().Exists(pair_sha));
  CHECK_FALSE(w.blobs().Exists(db_sha));
  CHECK_FALSE(w.blobs().Exists(*orphan));
  auto kept = w.store().GetArtifact("shop", "1.0", 4, "config");
  REQUIRE(kept.ok());
  CHECK(w.blobs().Verify(kept->sha256).ok());
  auto audit = w.store().ListAudit({"artifact.retention", ""}, {100, 0});
  REQUIRE(audit.ok());
  CHECK(audit->size() == 3);

  // Once build 4 goes too, so does the shared blob.
  RetentionReport last = w.Run({0, 0, 0}, false);
  REQUIRE(last.deleted.size() == 1);
  CHECK(last.deleted[0].build == 4);
  CHECK(last.blobs_removed == Strings{shared_sha});
  CHECK_FALSE(w.blobs().Exists(shared_sha));
}

TEST_CASE("retention: a removed blob's file index and the contents only it listed go too") {
  World w;
  FileIndex& files = w.UseFileIndex();
  w.App("shop");
  w.Release("shop", "1.0");
  const std::string shared = "in both builds";
  const std::string only_old = "only in build 1, the old one";
  const std::string only_new = "only in build 2";
  w.Build("shop", "1.0", 90, {{"web", w.Archive({{"a.txt", shared}, {"b.txt", only_old}})}});
  w.Build("shop", "1.0", 1, {{"web", w.Archive({{"a.txt", shared}, {"c/d.txt", only_new}})}});
  const std::string old_blob = w.ShaOf("shop", "1.0", 1);
  const std::string new_blob = w.ShaOf("shop", "1.0", 2);
  REQUIRE(files.Derive(old_blob).ok());
  REQUIRE(files.Derive(new_blob).ok());
  REQUIRE(files.File(Sha256Hex(only_old)).ok());

  // The report counts the contents only build 1 has, in a dry run too.
  RetentionReport dry = w.Run({0, 30, 5}, true);
  CHECK(dry.blobs_removed == Strings{old_blob});
  CHECK(dry.file_bytes_freed == only_old.size());
  CHECK(files.Index(old_blob).ok());
  CHECK(files.File(Sha256Hex(only_old)).ok());

  RetentionReport real = w.Run({0, 30, 5}, false);
  CHECK(real.blobs_removed == Strings{old_blob});
  CHECK(real.file_bytes_freed == only_old.size());
  CHECK(real.bytes_freed == dry.bytes_freed);
  CHECK(files.Index(old_blob).status().code() == Code::kNotFound);
  CHECK(testing::WaitUntil([&] { return !files.File(Sha256Hex(only_old)).ok(); }));
  // Build 2 still has its index and every content it lists.
  auto text = files.Index(new_blob);
  REQUIRE(text.ok());
  auto index = ManifestFromJson(*text);
  REQUIRE(index.ok());
  int listed = 0;
  for (const ManifestEntry& e : index->entries) {
    if (e.type != EntryType::kFile) continue;
    ++listed;
    CHECK_MESSAGE(files.File(e.sha256).ok(), e.path);
  }
  CHECK(listed == 2);
  CHECK(files.File(Sha256Hex(shared)).ok());
  // Nothing more to collect.
  auto again = files.Collect();
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE(
    "retention: a blob recorded again after the listing is kept (re-checked under its lock)") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  w.Build("shop", "1.0", 90, {{"web", "old bytes, uploaded again"}});      // 1: deleted
  w.Build("shop", "1.0", 80, {{"web", "old bytes, not uploaded again"}});  // 2: deleted
  const std::string again = w.ShaOf("shop", "1.0", 1);
  const std::string gone = w.ShaOf("shop", "1.0", 2);
  Catalog& catalog = w.catalog();

  // Between retention's listing of unreferenced blobs and each removal, an
  // upload records build 3 with build 1's bytes (its blob was committed
  // already, so the upload itself does not store them again).
  std::vector<std::string> asked;
  BlobRemover remover = [&](const std::string& sha) {
    asked.push_back(sha);
    if (sha == again) {
      BuildRecord b{"shop", "1.0", 0, "{}", w.now(), "ci"};
      auto created = w.store().CreateBuild(b);
      REQUIRE(created.ok());
      ArtifactRecord rec{"shop", "1.0", created->number, "web", again, 25, 1, "{}", w.now(), "ci"};
      REQUIRE(w.store().AddArtifact(rec).ok());
    }
    return catalog.RemoveBlobIfUnreferenced(sha);
  };
  auto r = ApplyRetention(w.store(), w.blobs(), w.clock(), {0, 30, 0}, false, "root", remover);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  std::sort(asked.begin(), asked.end());
  Strings both = {again, gone};
  std::sort(both.begin(), both.end());
  CHECK(asked == both);
  CHECK(r->deleted.size() == 2);
  CHECK(r->blobs_removed == Strings{gone});
  CHECK(r->warnings.empty());
  CHECK(w.blobs().Exists(again));  // build 3 has bytes
  CHECK(w.blobs().Verify(again).ok());
  CHECK_FALSE(w.blobs().Exists(gone));

  // Directly: referenced, removed, already gone, not a hash.
  auto referenced = catalog.RemoveBlobIfUnreferenced(again);
  REQUIRE(referenced.ok());
  CHECK_FALSE(*referenced);
  auto orphan = w.blobs().Put("an orphan");
  REQUIRE(orphan.ok());
  auto removed = catalog.RemoveBlobIfUnreferenced(*orphan);
  REQUIRE(removed.ok());
  CHECK(*removed);
  CHECK_FALSE(w.blobs().Exists(*orphan));
  auto missing = catalog.RemoveBlobIfUnreferenced(*orphan);
  REQUIRE(missing.ok());
  CHECK_FALSE(*missing);
  auto bad = catalog.RemoveBlobIfUnreferenced("../../etc/passwd");
  CHECK(bad.status().code() == Code::kInvalidArgument);
}

TEST_CASE(
    "retention: stages that only a release snapshot still has protect their targets' builds") {
  World w;
  w.App("shop", {{"Legacy", "old-web"}, {"Production", "prod-web"}});
  w.Release("shop", "1.0");
  w.Build("shop", "1.0", 400);
  w.Build("shop", "1.0", 300);
  w.Succeeded("shop", "1.0", 1, "Legacy", 399, "old-web");
  // The current spec no longer has the Legacy stage.
  w.App("shop", {{"Production", "prod-web"}});
  w.Release("shop", "2.0");
  w.Build("shop", "2.0", 200);

  RetentionReport r = w.Run({0, 0, 0}, false);
  CHECK(Reasons(r, "1.0", 1) == Strings{"deployed on old-web (Legacy)"});
  REQUIRE(r.deleted.size() == 2);
  CHECK(w.blobs().Exists(w.ShaOf("shop", "1.0", 1)));
}

TEST_CASE("retention: policies out of range are refused and change nothing") {
  World w;
  w.App("shop");
  w.Release("shop", "1.0");
  w.Build("shop", "1.0", 100);
  const std::string before = w.Listing();
  FakeClock clock(FromUnixMillis(w.now()));
  for (RetentionPolicy p : {RetentionPolicy{-1, 0, 0}, RetentionPolicy{0, -1, 0},
                            RetentionPolicy{0, 0, -1}, RetentionPolicy{0, 0, 1001}}) {
    auto r = ApplyRetention(w.store(), w.blobs(), clock, p, false, "root", w.Remover());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
  CHECK(w.Listing() == before);
}

}  // namespace reprise
