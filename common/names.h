// The one rule for names that come from outside and may end up in paths,
// URLs and logs: applications, environments, targets, agents, artifacts,
// users. 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. Thread-safe.
#pragma once

#include <string_view>

namespace reprise {

bool IsValidName(std::string_view name);

}  // namespace reprise
