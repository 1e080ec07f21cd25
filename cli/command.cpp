// The calls and formatting every `reprise` command shares (see command.h).
#include "cli/command.h"

#include <algorithm>
#include <cstdio>

namespace reprise::cli {

Status ApiError(const ApiResponse& r) {
  std::string message;
  std::string code;
  Json body = Json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const Json& e = body["error"];
    if (e.contains("message") && e["message"].is_string()) message = e["message"];
    if (e.contains("code") && e["code"].is_string()) code = e["code"];
  }
  if (message.empty()) {
    std::string text = r.body.substr(0, 200);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    message = "HTTP " + std::to_string(r.status) + (text.empty() ? "" : ": " + text);
  } else {
    message += " (HTTP " + std::to_string(r.status) + (code.empty() ? "" : ", " + code) + ")";
  }
  switch (r.status) {
    case 400:
      return InvalidArgument(message);
    case 401:
      return Unauthenticated(message);
    case 403:
      return PermissionDenied(message);
    case 404:
      return NotFound(message);
    case 409:
      return Conflict(message);
    case 413:
      return TooLarge(message);
    case 422:
      return Unsafe(message);
    default:
      return Unavailable(message);
  }
}

// Sends a request and parses the JSON answer; non-2xx answers become errors
// carrying the API's message.
Result<Json> Call(ApiClient& client, const std::string& method, const std::string& path,
                  const Json* body) {
  auto r = client.Send(method, path, body ? body->dump() : std::string());
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status > 299) return ApiError(*r);
  Json j = Json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Internal("the server's answer is not JSON");
  return j;
}

std::string Str(const Json& j, const char* key, const std::string& fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

int64_t Int(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

bool IsDigits(const std::string& s) {
  return !s.empty() && s.size() <= 12 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string BuildPath(const std::string& app, const std::string& rel, const std::string& build) {
  return "/api/v1/applications/" + PathSegment(app) + "/releases/" + PathSegment(rel) + "/builds/" +
         PathSegment(build);
}

std::string FormatBytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else if (bytes >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
  else if (bytes >= 1024.0)
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  return buf;
}

// Columns padded to the widest cell; the last column is not padded.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                const std::string& indent) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

// --var NAME=VALUE ... as the API's variables object.
Result<Json> VariablesFrom(const ParsedArgs& args) {
  Json vars = Json::object();
  for (const auto& kv : args.Values("var")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return InvalidArgument("--var needs NAME=VALUE, got '" + kv + "'");
    vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return vars;
}

std::string Pretty(const Json& j) { return j.dump(2); }

}  // namespace reprise::cli
