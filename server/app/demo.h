// The embedded demo: environments, local targets under DATA/targets/ and the
// application `shop` with release 1.0.0 and two builds. Seeding is idempotent.
#pragma once

#include <filesystem>

#include "common/status.h"

namespace reprise {

class Catalog;
class DeploymentEngine;

Status SeedDemo(Catalog& catalog, const std::filesystem::path& data_dir);

// On first start only: build 1 goes to every stage (forced, audited as the
// demo's initial state), so the board shows something and build 2 can be
// promoted over it and rolled back.
Status SeedDemoDeployments(Catalog& catalog, DeploymentEngine& engine);

}  // namespace reprise
