// The embedded demo: environments, local targets under DATA/targets/ and the
// application `shop` with release 1.0.0 and two builds. Seeding is idempotent.
#pragma once

#include <filesystem>

#include "common/status.h"

namespace reprise {

class Catalog;

Status SeedDemo(Catalog& catalog, const std::filesystem::path& data_dir);

}  // namespace reprise
