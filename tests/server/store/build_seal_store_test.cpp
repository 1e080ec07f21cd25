// The store's side of sealed builds and retention tombstones, on a real
// SQLite file: the checks live in the same transaction as the writes they
// guard, so a deployment request and an upload or a retention run cannot cross.
#include <doctest/doctest.h>

#include "tests/server/store/store_fixture.h"

namespace reprise {

namespace {

ArtifactRecord Artifact(int64_t build, const std::string& name, char hash) {
  ArtifactRecord a;
  a.application = "shop";
  a.release = "1.0";
  a.build = build;
  a.name = name;
  a.sha256 = std::string(64, hash);
  a.size = 10;
  a.file_count = 1;
  a.manifest_json = "{}";
  a.created_at = 1;
  a.created_by = "t";
  return a;
}

DeploymentRecord Deployment(int64_t build, const std::string& status) {
  return Promotion({.build = build,
                    .stage = "Testing",
                    .status = status,
                    .requested_by = "t",
                    .created_at = 5,
                    .targets_csv = "a-web,b-web"});
}

struct Seeded {
  TempDir dir;
  std::unique_ptr<Store> store = OpenTestStore(dir);
  Seeded() { SeedShop(*store, 2); }
};

}  // namespace

TEST_CASE("a build with a deployment takes no new artifact; one sealed by hand neither") {
  Seeded s;
  Store& store = *s.store;
  REQUIRE(store.AddArtifact(Artifact(1, "web", 'a')).ok());
  auto d = store.CreateDeployment(Deployment(1, "succeeded"));
  REQUIRE(d.ok());
  auto b = store.GetBuild("shop", "1.0", 1);
  REQUIRE(b.ok());
  CHECK(b->sealed());
  CHECK(b->first_deployment_id == d->id);
  CHECK(SealedReason(*b) == "deployed in #" + std::to_string(d->id));
  auto added = store.AddArtifact(Artifact(1, "docs", 'b'));
  REQUIRE_FALSE(added.ok());
  CHECK(added.status().code() == Code::kFailedPrecondition);
  CHECK(added.status().message() ==
        "build 1.0 #1 is sealed: deployed in #" + std::to_string(d->id));
  // The identical record again is still the harmless no-op.
  auto same = store.AddArtifact(Artifact(1, "web", 'a'));
  REQUIRE(same.ok());
  CHECK_FALSE(*same);

  auto sealed = store.SealBuild("shop", "1.0", 2, 1700000000000, "alice");
  REQUIRE(sealed.ok());
  CHECK(*sealed);
  auto again = store.SealBuild("shop", "1.0", 2, 1700000009999, "bob");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  auto two = store.GetBuild("shop", "1.0", 2);
  REQUIRE(two.ok());
  CHECK(SealedReason(*two) == "sealed by alice at 2023-11-14T22:13:20.000Z");
  CHECK(store.AddArtifact(Artifact(2, "web", 'c')).status().code() == Code::kFailedPrecondition);
  CHECK(store.SealBuild("shop", "1.0", 9, 1, "alice").status().code() == Code::kNotFound);
}

TEST_CASE("tombstones: records stay, bytes count as gone; a pending deployment stops the marking") {
  Seeded s;
  Store& store = *s.store;
  REQUIRE(store.AddArtifact(Artifact(1, "web", 'a')).ok());
  REQUIRE(store.AddArtifact(Artifact(2, "web", 'b')).ok());
  REQUIRE(store.CreateDeployment(Deployment(2, "waiting")).ok());

  auto pending = store.MarkArtifactBlobsRemoved("shop", "1.0", 2, 100);
  REQUIRE(pending.ok());
  CHECK_FALSE(*pending);
  CHECK(store.GetArtifact("shop", "1.0", 2, "web")->blob_removed_at == 0);

  auto marked = store.MarkArtifactBlobsRemoved("shop", "1.0", 1, 100);
  REQUIRE(marked.ok());
  CHECK(*marked);
  auto tomb = store.GetArtifact("shop", "1.0", 1, "web");
  REQUIRE(tomb.ok());
  CHECK(tomb->blob_removed_at == 100);
  CHECK(tomb->sha256 == std::string(64, 'a'));
  CHECK(*store.ReferencedBlobs() == std::vector<std::string>{std::string(64, 'b')});
  CHECK(store.FindArtifactsBySha256(std::string(64, 'a'))->size() == 1);
  // Other bytes under the tombstone: refused, naming the recorded hash.
  auto other = store.AddArtifact(Artifact(1, "web", 'c'));
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == Code::kConflict);
  CHECK(other.status().message().find(std::string(64, 'a')) != std::string::npos);
  // Only the recorded hash restores it, once.
  CHECK_FALSE(*store.RestoreArtifactBlob("shop", "1.0", 1, "web", std::string(64, 'c')));
  CHECK(*store.RestoreArtifactBlob("shop", "1.0", 1, "web", std::string(64, 'a')));
  CHECK_FALSE(*store.RestoreArtifactBlob("shop", "1.0", 1, "web", std::string(64, 'a')));
  CHECK(store.GetArtifact("shop", "1.0", 1, "web")->blob_removed_at == 0);
  CHECK(store.ReferencedBlobs()->size() == 2);
}

TEST_CASE("deployments can be listed by a target they touched") {
  Seeded s;
  Store& store = *s.store;
  REQUIRE(store.CreateDeployment(Deployment(1, "succeeded")).ok());
  DeploymentRecord other = Deployment(2, "failed");
  other.targets_csv = "b-web-2";
  REQUIRE(store.CreateDeployment(other).ok());
  DeploymentFilter by_target;
  by_target.target = "b-web";
  auto list = store.ListDeployments(by_target, {100, 0});
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].build == 1);
  by_target.target = "b-web-2";
  CHECK(store.ListDeployments(by_target, {100, 0})->size() == 1);
  by_target.target = "web";
  CHECK(store.ListDeployments(by_target, {100, 0})->empty());
}

}  // namespace reprise
