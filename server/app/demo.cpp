#include "server/app/demo.h"

#include <fstream>
#include <string>
#include <sys/stat.h>

#include "agents/deployer/archive.h"
#include "common/crypto.h"
#include "common/embedded.h"
#include "common/fs.h"
#include "server/catalog/catalog.h"
#include "server/engine/engine.h"
#include "server/store/store.h"

namespace reprise {

const EmbeddedFile* DemoFiles(size_t* count);

namespace {

constexpr const char* kActor = "demo";

std::string DemoSpec() {
  size_t count = 0;
  const EmbeddedFile* files = DemoFiles(&count);
  for (size_t i = 0; i < count; ++i)
    if (std::string_view(files[i].path) == "demo-shop.yaml")
      return std::string(files[i].data, files[i].size);
  return {};
}

// The demo's build trees differ like real builds do: build 2 changes the page
// and the script, adds an API file and drops a legacy config file.
std::vector<std::pair<std::string, std::string>> DemoTree(int64_t build) {
  std::string page = "<!doctype html><title>shop</title><h1>shop 1.0.0 build " +
                     std::to_string(build) + "</h1>\n";
  std::vector<std::pair<std::string, std::string>> files = {
      {"index.html", page},
      {"css/site.css", "body { font-family: sans-serif; }\n"},
      {"app.js", build == 1 ? "console.log('shop v1');\n" : "console.log('shop v2, faster');\n"},
      {"migrate.sh", "#!/bin/sh\necho \"migrating shop database ${1:-up} (build " +
                         std::to_string(build) + ")\"\n"},
  };
  if (build == 1) files.push_back({"config/legacy.conf", "mode=legacy\n"});
  if (build >= 2) files.push_back({"api/status.json", "{\"status\": \"ok\", \"build\": 2}\n"});
  return files;
}

Status UploadDemoArtifact(Catalog& catalog, const std::filesystem::path& data_dir,
                          int64_t build) {
  const std::filesystem::path work = data_dir / ("demo-build-" + RandomHex(4));
  const std::filesystem::path tree = work / "tree";
  const std::filesystem::path archive = work / "web.tar.gz";
  std::error_code ec;
  std::filesystem::create_directories(tree, ec);
  if (ec) return IoError("cannot create " + tree.string() + ": " + ec.message());
  Status st;
  for (const auto& [rel, content] : DemoTree(build)) {
    std::filesystem::create_directories((tree / rel).parent_path(), ec);
    st = WriteFileAtomic(tree / rel, content, rel.ends_with(".sh") ? 0755 : 0644);
    if (!st.ok()) break;
  }
  if (st.ok()) st = CreateTarGz(tree, archive);
  if (st.ok()) {
    std::ifstream in(archive, std::ios::binary);
    Catalog::ChunkReader reader = [&in](const std::function<bool(const char*, size_t)>& sink) {
      char buf[1 << 16];
      while (in) {
        in.read(buf, sizeof buf);
        if (in.gcount() > 0 && !sink(buf, static_cast<size_t>(in.gcount()))) return false;
      }
      return true;
    };
    auto uploaded =
        catalog.UploadArtifact(kActor, "shop", "1.0.0", build, "web", reader, ArchiveLimits{}, 0);
    if (!uploaded.ok()) st = uploaded.status();
  }
  std::filesystem::remove_all(work, ec);
  return st;
}

}  // namespace

Status SeedDemo(Catalog& catalog, const std::filesystem::path& data_dir) {
  Store& store = catalog.store();
  const std::filesystem::path targets_root = std::filesystem::absolute(data_dir) / "targets";
  struct DemoStage {
    const char* environment;
    const char* target;
  };
  const DemoStage stages[] = {{"Integration", "int-web"},
                              {"Testing", "test-web"},
                              {"Production", "prod-web"}};
  for (const auto& s : stages) {
    if (!store.GetEnvironment(s.environment).ok()) {
      VariableMap vars{{"EnvironmentBanner", Variable{std::string("Welcome to ") + s.environment, false}}};
      REPRISE_RETURN_IF_ERROR(catalog.PutEnvironment(kActor, s.environment, vars));
    }
    if (!store.GetTarget(s.target).ok()) {
      std::filesystem::path dir = targets_root / s.target;
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return IoError("cannot create " + dir.string() + ": " + ec.message());
      TargetRecord t;
      t.name = s.target;
      t.environment = s.environment;
      t.agent = "local";
      t.path = dir.string();
      REPRISE_RETURN_IF_ERROR(catalog.PutTarget(kActor, t, {}));
    }
  }
  if (!store.GetApplication("shop").ok()) {
    auto app = catalog.PutApplication(kActor, "shop", DemoSpec());
    if (!app.ok()) return app.status();
  }
  if (!store.GetRelease("shop", "1.0.0").ok()) {
    auto rel = catalog.CreateRelease(kActor, "shop", "1.0.0", {});
    if (!rel.ok()) return rel.status();
  }
  auto builds = store.ListBuilds("shop", "1.0.0", Page{});
  if (!builds.ok()) return builds.status();
  for (size_t n = builds->size(); n < 2; ++n) {
    auto b = catalog.CreateBuild(kActor, "shop", "1.0.0", {});
    if (!b.ok()) return b.status();
  }
  for (int64_t build = 1; build <= 2; ++build) {
    if (store.GetArtifact("shop", "1.0.0", build, "web").ok()) continue;
    REPRISE_RETURN_IF_ERROR(UploadDemoArtifact(catalog, data_dir, build));
  }
  return Status::Ok();
}

}  // namespace reprise

namespace reprise {

Status SeedDemoDeployments(Catalog& catalog, DeploymentEngine& engine) {
  Store& store = catalog.store();
  auto existing = store.ListDeployments({"shop", "", {}}, {1, 0});
  if (!existing.ok()) return existing.status();
  if (!existing->empty()) return Status::Ok();
  const Actor demo{kActor, Role::kAdmin};
  for (const char* stage : {"Integration", "Testing", "Production"}) {
    DeployRequest req;
    req.stage = stage;
    req.force = true;
    req.comment = "demo: the initial state";
    auto d = engine.Request(demo, "shop", "1.0.0", 1, req);
    if (!d.ok()) return d.status();
  }
  return Status::Ok();
}

}  // namespace reprise
