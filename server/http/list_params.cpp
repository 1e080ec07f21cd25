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

// Reads the whole-number query parameter `name`, when given, into `out`.
template <typename T>
Status BoundedQuery(const HttpRequest& req, const std::string& name, int64_t min, int64_t max,
                    T& out) {
  auto text = req.Query(name);
  if (!text) return Status::Ok();
  auto v = Bounded(*text, min, max);
  if (!v)
    return InvalidArgument("query parameter '" + name + "' must be a whole number from " +
                           std::to_string(min) + " to " + std::to_string(max) + ", not '" +
                           Shown(*text) + "'");
  out = static_cast<T>(*v);
  return Status::Ok();
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
  REPRISE_RETURN_IF_ERROR(BoundedQuery(req, "limit", 1, kMaxListLimit, page.limit));
  REPRISE_RETURN_IF_ERROR(BoundedQuery(req, "offset", 0, kMaxListOffset, page.offset));
  return page;
}

std::vector<QueryParam> PageQuery(std::vector<QueryParam> filters) {
  std::vector<QueryParam> out = {
      {"limit", "integer", "at most this many items, 1..1000 (default 100)"},
      {"offset", "integer", "skip this many items (default 0)"}};
  for (auto& f : filters) out.push_back(std::move(f));
  return out;
}

}  // namespace reprise
