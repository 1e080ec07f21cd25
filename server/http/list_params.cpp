#include "server/http/list_params.h"

#include <optional>
#include <string>

namespace reprise {

namespace {

// A decimal number in [min, max]; nullopt for anything else (sign, spaces,
// too many digits).
std::optional<int64_t> Bounded(const std::string& text, int64_t min, int64_t max) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) return std::nullopt;
  return v;
}

std::string Shown(const std::string& value) {
  return value.size() > 40 ? value.substr(0, 40) + "..." : value;
}

}  // namespace

Result<Page> ListParams(const HttpRequest& req, std::initializer_list<const char*> filters) {
  for (const auto& [name, _] : req.query) {
    bool known = name == "limit" || name == "offset";
    for (const char* f : filters) known = known || name == f;
    if (!known) {
      std::string allowed = "limit, offset";
      for (const char* f : filters) allowed += std::string(", ") + f;
      return InvalidArgument("unknown query parameter '" + Shown(name) + "' (this list takes " +
                             allowed + ")");
    }
    if (req.query.count(name) > 1)
      return InvalidArgument("query parameter '" + name + "' is given more than once");
  }
  Page page;
  if (auto limit = req.Query("limit")) {
    auto v = Bounded(*limit, 1, kMaxListLimit);
    if (!v)
      return InvalidArgument("query parameter 'limit' must be a whole number from 1 to " +
                             std::to_string(kMaxListLimit) + ", not '" + Shown(*limit) + "'");
    page.limit = *v;
  }
  if (auto offset = req.Query("offset")) {
    auto v = Bounded(*offset, 0, kMaxListOffset);
    if (!v)
      return InvalidArgument("query parameter 'offset' must be a whole number from 0 to " +
                             std::to_string(kMaxListOffset) + ", not '" + Shown(*offset) + "'");
    page.offset = *v;
  }
  return page;
}

}  // namespace reprise
