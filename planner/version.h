// The product version, shared by every binary.
#pragma once

namespace reprise {
const char* Version();
}  // namespace reprise
