// The engine runs a deployment through an AgentPort alone: here one built on
// an in-process AgentRunner over a temporary directory, with a real SQLite
// store and blob store, and no hub and no sockets.
#include <doctest/doctest.h>

#include <atomic>
#include <map>

#include "agents/agent/runner.h"
#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/fs.h"
#include "server/artifacts/blob_store.h"
#include "server/catalog/catalog.h"
#include "server/engine/agent_port.h"
#include "server/engine/engine.h"
#include "server/store/store.h"
#include "tests/support/wait.h"
#include "tests/temp_dir.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAgent = "box";

// Blobs come straight from the server's blob store (as for the local agent).
class BlobStoreSource : public BlobSource {
 public:
  explicit BlobStoreSource(const BlobStore& blobs) : blobs_(blobs) {}
  Result<Fetched> Fetch(const std::string& sha256, const fs::path&, const CancelToken&,
                        const ProgressFn&) override {
    REPRISE_ASSIGN_OR_RETURN(fs::path path, blobs_.Path(sha256));
    if (!blobs_.Exists(sha256)) return NotFound("blob " + sha256 + " is not stored");
    return Fetched{path, false};
  }

 private:
  const BlobStore& blobs_;
};

// Every target's agent is one AgentRunner in this process, always connected
// and approved. Counts what the engine asked of it.
class RunnerPort : public AgentPort {
 public:
  RunnerPort(Store& store, const BlobStore& blobs, const fs::path& root)
      : store_(store), source_(blobs), runner_(RunnerOptions{root, false, {}, 2000}) {}

  std::atomic<int> runs{0}, probes{0}, states{0};

  std::unique_ptr<Operations> OperationsFor(const ExecutionContext& context) override {
    return std::make_unique<Ops>(*this, DeployLabel{context.release, context.build});
  }
  Result<TargetState> GetTargetState(const std::string& target) override {
    ++states;
    REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, store_.GetTarget(target));
    REPRISE_ASSIGN_OR_RETURN(TargetState state, runner_.State(rec.path));
    state.online = true;
    return state;
  }
  Result<ValidationReport> Validate(const std::string& target, const Manifest& manifest) override {
    REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, store_.GetTarget(target));
    return runner_.Validate(rec.path, manifest);
  }
  Result<TargetAgentLink> TargetAgent(const std::string& target) override {
    REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, store_.GetTarget(target));
    return TargetAgentLink{target, rec.agent, true, true, "in-process"};
  }
  Result<TargetProbe> Probe(const std::string& target) override {
    ++probes;
    TargetProbe probe;
    REPRISE_ASSIGN_OR_RETURN(probe.link, TargetAgent(target));
    REPRISE_ASSIGN_OR_RETURN(TargetRecord rec, store_.GetTarget(target));
    REPRISE_ASSIGN_OR_RETURN(probe.report, runner_.Probe(rec.path));
    probe.answered = true;
    return probe;
  }
  std::vector<AgentStatus> Agents() override {
    AgentStatus a;
    a.name = kAgent;
    a.status = "online";
    a.approved = a.online = true;
    a.address = "in-process";
    auto targets = store_.ListTargets(Page{1000, 0});
    if (targets.ok())
      for (const auto& t : *targets)
        if (t.agent == kAgent) a.targets.push_back(t.name);
    return {a};
  }

 private:
  class Ops : public Operations {
   public:
    Ops(RunnerPort& port, DeployLabel label) : port_(port), label_(std::move(label)) {}
    OperationOutcome Run(const TargetInfo& target, const ResolvedOperation& op, StepLog& log,
                         const CancelToken& cancel) override {
      ++port_.runs;
      RunnerLog runner_log = [&log](LogLevel level, std::string_view text) {
        if (level == LogLevel::kOutput) {
          log.Output(text);
        } else {
          log.Write(level, text);
        }
      };
      auto out = port_.runner_.Run(target.path, op, label_, port_.source_, runner_log, cancel);
      log.FinishOutput();
      return out;
    }

   private:
    RunnerPort& port_;
    DeployLabel label_;
  };

  Store& store_;
  BlobStoreSource source_;
  AgentRunner runner_;
};

std::string TarGzOf(const fs::path& scratch, const std::map<std::string, std::string>& files) {
  fs::path tree = scratch / "tree";
  for (const auto& [rel, content] : files) {
    fs::create_directories((tree / rel).parent_path());
    REQUIRE(WriteFileAtomic(tree / rel, content).ok());
  }
  fs::path out = scratch / "web.tar.gz";
  REQUIRE(CreateTarGz(tree, out).ok());
  return ReadFile(out);
}

bool IsFinal(const std::string& status) {
  return status != "scheduled" && status != "waiting" && status != "queued" && status != "running";
}

}  // namespace

TEST_CASE("the engine deploys a build through an AgentPort, without a hub") {
  TempDir dir;
  const fs::path root = dir.path() / "targets";
  fs::create_directories(root);
  auto store = OpenSqliteStore({(dir.path() / "reprise.db").string()});
  REQUIRE(store.ok());
  auto blobs = BlobStore::Open(dir.path() / "blobs", BlobStoreOptions{0, false});
  REQUIRE(blobs.ok());
  FakeClock clock(FromUnixMillis(1'800'000'000'000));

  // One stage, one target, one artifact.
  Catalog catalog({store->get(), blobs->get(), &clock});
  REQUIRE(catalog.PutEnvironment("admin", "Integration", {}).ok());
  TargetRecord target;
  target.name = "web";
  target.environment = "Integration";
  target.agent = kAgent;
  target.path = (root / "web").string();
  REQUIRE(catalog.PutTarget("admin", target, {}).ok());
  auto app = catalog.PutApplication("admin", "shop", R"(
pipeline:
  - stage: Integration
    environment: Integration
    targets: [web]
    plan: deploy
plans:
  deploy: |
    - deploy-artifact: { artifact: web }
    - write-file: { path: deployed-by.txt, template: "build $BuildNumber" }
)");
  REQUIRE_MESSAGE(app.ok(), app.status().message());
  REQUIRE(catalog.CreateRelease("admin", "shop", "1.0", {}).ok());
  REQUIRE(catalog.CreateBuild("admin", "shop", "1.0", {}).ok());
  const std::map<std::string, std::string> files = {{"index.html", "<h1>build 1</h1>\n"},
                                                    {"static/site.css", "body{}\n"}};
  const std::string archive = TarGzOf(dir.path(), files);
  auto uploaded = catalog.UploadArtifact(
      "admin", "shop", "1.0", 1, "web",
      [&](const std::function<bool(const char*, size_t)>& sink) {
        return sink(archive.data(), archive.size());
      },
      ArchiveLimits{}, 1 << 30);
  REQUIRE_MESSAGE(uploaded.ok(), uploaded.status().message());

  RunnerPort port(**store, **blobs, root);
  EngineOptions options;
  options.store = store->get();
  options.agents = &port;
  options.clock = &clock;
  auto engine = DeploymentEngine::Start(options);
  REQUIRE(engine.ok());

  DeployRequest request;
  request.stage = "Integration";
  auto d = (*engine)->Request(Actor{"admin", Role::kAdmin}, "shop", "1.0", 1, request);
  REQUIRE_MESSAGE(d.ok(), d.status().message());
  std::string status;
  REQUIRE(testing::WaitUntil([&] {
    auto now = (*store)->GetDeployment(d->id);
    status = now.ok() ? now->status : "";
    return IsFinal(status);
  }));
  CHECK(status == "succeeded");

  // The build's bytes are what `current` holds; the plan's file is beside it.
  const fs::path current = root / "web" / "current";
  CHECK(fs::is_symlink(current));
  for (const auto& [rel, content] : files) CHECK(ReadFile(current / rel) == content);
  CHECK(ReadFile(root / "web" / "deployed-by.txt") == "build 1");

  // The engine probed the target before it ran, ran the plan's two steps,
  // and recorded what the agent reports the target now holds.
  CHECK(port.probes.load() >= 1);
  CHECK(port.runs.load() == 2);
  CHECK(port.states.load() >= 1);
  auto state = (*store)->GetTargetState("web");
  REQUIRE(state.ok());
  CHECK(state->current.release == "1.0");
  CHECK(state->current.build == 1);
  CHECK(state->current.deployment_id == d->id);
  (*engine)->Stop();
}

}  // namespace reprise
