#include "planner/version.h"

namespace reprise {
const char* Version() { return "0.1.0"; }
}  // namespace reprise
