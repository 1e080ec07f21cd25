// Query parameters and CSV answers of list endpoints.
#include "server/api/list_query.h"

#include <cctype>
#include <utility>

#include "server/http/list_params.h"

namespace reprise {

std::string CsvField(std::string s) {
  if (!s.empty() && std::string_view("=+-@").find(s[0]) != std::string_view::npos &&
      !(s[0] == '-' && s.size() > 1 && std::isdigit(static_cast<unsigned char>(s[1]))))
    s.insert(0, "'");
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string CsvValue(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : " ") + CsvValue(x);
    return out;
  }
  return v.dump();
}

std::vector<std::string> SplitCommaList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<int64_t> TimeQuery(const HttpRequest& req, const char* name) {
  auto v = req.Query(name);
  if (!v || v->empty()) return int64_t{0};
  auto t = ParseRfc3339(*v);
  if (!t)
    return InvalidArgument(std::string("query parameter '") + name +
                           "' must be RFC 3339 with an offset, e.g. 2026-11-23T22:00:00Z");
  return ToUnixMillis(*t);
}

Result<bool> WantsCsv(const HttpRequest& req) {
  std::string format = req.Query("format").value_or("json");
  if (format != "json" && format != "csv")
    return InvalidArgument("query parameter 'format' must be json or csv");
  return format == "csv";
}

HttpResponse CsvResponse(const Json& items, const std::vector<std::string>& columns,
                         const std::string& filename) {
  std::string body;
  for (const auto& c : columns) body += (body.empty() ? "" : ",") + c;
  body += "\r\n";
  for (const auto& item : items) {
    std::string line;
    for (size_t i = 0; i < columns.size(); ++i) {
      auto it = item.find(columns[i]);
      line += (i ? "," : "") + CsvField(it == item.end() ? "" : CsvValue(*it));
    }
    body += line + "\r\n";
  }
  HttpResponse r;
  r.content_type = "text/csv; charset=utf-8";
  r.body = std::move(body);
  r.headers.push_back({"Content-Disposition", "attachment; filename=\"" + filename + "\""});
  return r;
}

std::vector<QueryParam> ExportListQuery(std::vector<QueryParam> filters,
                                        const std::string& moment) {
  filters.push_back({"from", "string", moment + "at or after (RFC 3339)"});
  filters.push_back({"to", "string", moment + "before (RFC 3339)"});
  filters.push_back({"format", "string", "json (default) or csv"});
  return PageQuery(std::move(filters));
}

}  // namespace reprise
