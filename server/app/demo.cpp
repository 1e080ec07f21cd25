#include "server/app/demo.h"

#include <string>

#include "common/embedded.h"
#include "server/catalog/catalog.h"
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
  return Status::Ok();
}

}  // namespace reprise
