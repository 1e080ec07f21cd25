// The calls and formatting every `reprise` command shares (see command.h).
#include "cli/command.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <utility>

namespace reprise::cli {

Column::Column(const char* key) : key(key) {
  for (char c : this->key) header += c == '_' ? ' ' : static_cast<char>(std::toupper(c));
}

Column::Column(std::string header, std::string key)
    : header(std::move(header)), key(std::move(key)) {}

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
  // The API's HTTP statuses back as the codes they stand for.
  constexpr std::pair<int, Code> kCodes[] = {
      {400, Code::kInvalidArgument}, {401, Code::kUnauthenticated}, {403, Code::kPermissionDenied},
      {404, Code::kNotFound},        {409, Code::kConflict},        {413, Code::kTooLarge},
      {422, Code::kUnsafe}};
  for (const auto& [status, code] : kCodes)
    if (r.status == status) return Status(code, message);
  return Unavailable(message);
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

namespace {

// "a.b" reaches into nested objects.
const Json* Lookup(const Json& j, const std::string& key) {
  const Json* at = &j;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!at->is_object()) return nullptr;
    auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

std::string Cell(const Json* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->get<std::string>().empty() ? "-" : v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
  if (v->is_array()) {
    std::string out;
    for (const auto& x : *v)
      out += (out.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
    return out.empty() ? "-" : out;
  }
  return v->dump();
}

// The path with {i} replaced by the i-th argument, percent-encoded.
std::string ExpandPath(const Ctx& c, const std::string& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '{') {
      out += path[i];
      continue;
    }
    size_t close = path.find('}', i);
    size_t index = static_cast<size_t>(std::stoul(path.substr(i + 1, close - i - 1)));
    out += PathSegment(c.Arg(index));
    i = close;
  }
  return out;
}

// Paths may name their arguments ("/api/v1/users/{USER}"): with no `args`
// given, the names in the path are the arguments, in order, and the path
// takes their numbers.
void ArgsFromPath(ApiCommandSpec& spec) {
  if (!spec.args.empty()) return;
  std::string& path = spec.call.path;
  for (size_t open = path.find('{'); open != std::string::npos; open = path.find('{', open + 1)) {
    const size_t close = path.find('}', open);
    const std::string name = path.substr(open + 1, close - open - 1);
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    auto known = std::find(spec.args.begin(), spec.args.end(), name);
    const size_t index = static_cast<size_t>(known - spec.args.begin());
    if (known == spec.args.end()) spec.args.push_back(name);
    path.replace(open + 1, name.size(), std::to_string(index));
  }
}

}  // namespace

void PrintObject(std::ostream& out, const Json& object) {
  if (!object.is_object()) {
    out << Pretty(object) << "\n";
    return;
  }
  size_t width = 0;
  for (const auto& [key, value] : object.items()) width = std::max(width, key.size());
  for (const auto& [key, value] : object.items()) {
    std::string text = value.is_string()    ? value.get<std::string>()
                       : value.is_null()    ? std::string("-")
                       : value.is_boolean() ? std::string(value.get<bool>() ? "yes" : "no")
                                            : value.dump();
    out << key << ":" << std::string(width - key.size() + 1, ' ') << text << "\n";
  }
}

Outcome PrintAnswer(Ctx& c, const Json& answer, const View& view) {
  const int code = view.exit ? view.exit(answer) : kExitOk;
  const Json& list = view.columns.empty() || view.items.empty()          ? answer
                     : answer.is_object() && answer.contains(view.items) ? answer[view.items]
                                                                         : Json::array();
  if (c.json) {
    c.out << Pretty(answer) << "\n";
  } else if (view.columns.empty()) {
    PrintObject(c.out, answer);
  } else if (!list.is_array() || list.empty()) {
    c.out << view.empty << "\n";
  } else {
    std::vector<std::vector<std::string>> rows(1);
    for (const auto& column : view.columns) rows[0].push_back(column.header);
    for (const auto& item : list) {
      rows.emplace_back();
      for (const auto& column : view.columns) rows.back().push_back(Cell(Lookup(item, column.key)));
    }
    PrintTable(c.out, rows);
  }
  return Outcome::Exit(code);
}

Command ApiCommand(ApiCommandSpec spec) {
  ArgsFromPath(spec);
  std::string usage = "reprise";
  for (const auto& w : spec.words) usage += " " + w;
  for (const auto& a : spec.args) usage += " " + a;
  if (!spec.options_usage.empty()) usage += " " + spec.options_usage;
  auto run = [call = spec.call, view = spec.view](Ctx& c) -> Outcome {
    const std::string path = ExpandPath(c, call.path);
    Json body = Json::object();
    if (call.body) {
      auto built = call.body(c);
      if (!built.ok()) {
        if (built.status().code() == Code::kInvalidArgument)
          return Outcome::Usage(built.status().message());
        return Outcome::Error(built.status());
      }
      body = std::move(*built);
    }
    auto answer = Call(c.client, call.method, path, call.method == "GET" ? nullptr : &body);
    if (!answer.ok()) return Outcome::Error(answer.status());
    return PrintAnswer(c, *answer, view);
  };
  Command command{spec.words, spec.args.size(), spec.options, run, usage};
  command.summary = spec.summary;
  return command;
}

std::string GroupHelp(const std::vector<Command>& commands) {
  constexpr size_t kColumn = 44;
  std::string help;
  for (const auto& command : commands) {
    std::string line = "  " + command.usage.substr(std::string("reprise ").size());
    if (!command.summary.empty()) {
      if (line.size() + 1 > kColumn)
        line += "\n" + std::string(kColumn, ' ');
      else
        line += std::string(kColumn - line.size(), ' ');
      line += command.summary;
    }
    help += line + "\n";
  }
  return help;
}

}  // namespace reprise::cli
