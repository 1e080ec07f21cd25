// compose-release through the hub and a real reprise-agent on loopback: the
// operation travels in the run message (its composed manifest in the
// payload), the hub serves A's artifact to it when A's release is gone, and
// the target then reports D's build with the composed manifest.
#include <doctest/doctest.h>

#include "tests/agents/agent/compose_test_support.h"
#include "tests/server/hub/hub_test_support.h"

namespace reprise::testing {
namespace {

using compose_testing::Dir;
using compose_testing::File;
using compose_testing::Item;
using compose_testing::Link;

// Stores the tree `items` as an artifact; its sha256 and manifest.
std::string AddTree(HubFixture& f, const std::map<std::string, Item>& items, Manifest* m) {
  fs::path tree = f.NewTreeDir();
  compose_testing::WriteTree(tree, items);
  return f.AddTreeArtifact(tree, m);
}

TEST_CASE("compose-release on a remote agent, with A's artifact fetched through the hub") {
  HubFixture f;
  fs::path root = f.tmp.path() / "a1";
  TargetInfo t{"web1", "a1", root.string(), {}};
  auto agent = f.StartOnlineAgent("a1", "web1", root);

  Manifest ma, md;
  std::string sha_a = AddTree(f,
                              {{"index.html", File("A index")},
                               {"bin/tool", File("A tool", 0755)},
                               {"old", Dir(0750)},
                               {"old/readme.txt", File("A readme")}},
                              &ma);
  std::string sha_d = AddTree(f,
                              {{"index.html", File("D index")},
                               {"bin/tool", File("D tool", 0700)},
                               {"link", Link("index.html")},
                               {"new/x.txt", File("added")}},
                              &md);
  LogCollector deploys;
  REQUIRE(RunOn(*f.hub, t,
                DeployArtifactOp{"web", sha_a, "", DeployMode::kAtomic, 3, ma.manifest_hash}, "1",
                &deploys)
              .succeeded());
  REQUIRE(RunOn(*f.hub, t,
                DeployArtifactOp{"web", sha_d, "", DeployMode::kAtomic, 3, md.manifest_hash}, "2",
                &deploys)
              .succeeded());
  const std::string ra = "1.0-1-" + sha_a.substr(0, 12);
  const std::string rd = "1.0-2-" + sha_d.substr(0, 12);
  // A's release is gone from the target: its versions come from its artifact.
  fs::remove_all(root / ".reprise/releases" / ra);

  std::vector<RevertEntry> reverts = {
      {"bin/tool", "override"}, {"new/x.txt", "delete"}, {"old/readme.txt", "restore"}};
  Manifest composed = compose_testing::ComposeManifest(ma, md, reverts);
  ComposeReleaseOp op =
      compose_testing::ComposeOp({rd, md}, {ra, ma, sha_a}, reverts, composed, rd + "+rr1");

  LogCollector logs;
  auto out = RunOn(*f.hub, t, op, "2", &logs);
  REQUIRE_MESSAGE(out.succeeded(), out.message, out.error.ToString(), agent->Log());
  CHECK(logs.Contains("fetching artifact web (" + sha_a.substr(0, 12) + ")"));
  CHECK(logs.Contains("composing " + op.name + " from " + rd +
                      ": 3 reverted (1 delete, 1 override, 1 restore) from artifact web"));
  CHECK(logs.Contains("verified against the composed manifest"));
  CHECK(logs.Contains("current -> " + op.name));
  CHECK(ReadFile(root / "current/bin/tool") == "A tool");
  CHECK(ReadFile(root / "current/index.html") == "D index");

  auto state = f.hub->GetTargetState("web1");
  REQUIRE(state.ok());
  CHECK(state->current_release == op.name);
  CHECK(state->build == "2");
  CHECK(state->manifest_hash == composed.manifest_hash);
  auto report = f.hub->Validate("web1", composed);
  REQUIRE(report.ok());
  CHECK(report->ok());

  // A composed manifest that does not fit: refused, D's release stays live.
  op.name = rd + "+rr2";
  Manifest wrong = composed;
  wrong.entries.pop_back();
  wrong.manifest_hash = ComputeManifestHash(wrong.entries);
  op.manifest_json = ManifestToJson(wrong);
  op.base_release = rd + "+rr1";  // the composed release is live now
  op.base_manifest_hash = composed.manifest_hash;
  op.reverts = {};
  LogCollector failed;
  out = RunOn(*f.hub, t, op, "2", &failed);
  CHECK(out.kind == OperationOutcome::Kind::kFailed);
  CHECK_MESSAGE(out.message.find("does not match the composed manifest") != std::string::npos,
                out.message);
  CHECK(f.hub->GetTargetState("web1")->current_release == rd + "+rr1");

  // Re-deploying build 2 switches back to D's untouched release.
  LogCollector back;
  REQUIRE(RunOn(*f.hub, t,
                DeployArtifactOp{"web", sha_d, "", DeployMode::kAtomic, 3, md.manifest_hash}, "2",
                &back)
              .succeeded());
  CHECK(back.Contains("switching only"));
  report = f.hub->Validate("web1", md);
  REQUIRE(report.ok());
  CHECK(report->ok());
}

}  // namespace
}  // namespace reprise::testing
