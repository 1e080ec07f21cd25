// Query parameters of list endpoints: ?limit= and ?offset= read strictly, and
// every other parameter refused unless the endpoint names it as a filter.
// Pure functions; thread-safe.
#pragma once

#include <initializer_list>

#include "common/status.h"
#include "server/http/http_types.h"
#include "server/store/store.h"

namespace reprise {

inline constexpr int64_t kMaxListLimit = 1000;
inline constexpr int64_t kMaxListOffset = 1000000000;

// The page a list request asks for: `limit` 1..1000 (default 100), `offset`
// 0..1000000000 (default 0), each a plain decimal number. A value out of
// range or not a number, a parameter given twice, and any parameter that is
// neither of them nor in `filters` is kInvalidArgument naming it.
Result<Page> ListParams(const HttpRequest& req, std::initializer_list<const char*> filters = {});

// The documentation of a list endpoint's query: limit, offset, then `filters`.
std::vector<QueryParam> PageQuery(std::vector<QueryParam> filters = {});

}  // namespace reprise
