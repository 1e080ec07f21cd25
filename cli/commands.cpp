#include "cli/commands.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/api_client.h"
#include "common/args.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "planner/version.h"

namespace reprise::cli {

namespace {

using Json = nlohmann::json;

constexpr const char* kUsage =
    R"(usage: reprise [--server URL] [--token TOKEN] [--json] COMMAND [ARGS]

commands:
  health                                    is the server up? (no token needed)
  apps                                      applications and what is deployed where
  release create APP NUMBER [--var K=V]...  create a release
  build create APP RELEASE [--var K=V]...   create a build; prints its number
  upload APP RELEASE BUILD NAME FILE        stream FILE as artifact NAME; prints its sha256
  deploy APP RELEASE BUILD STAGE            deploy, promote, re-deploy or roll back
         [--at RFC3339] [--force --comment C] [--context as-deployed|current]
         [--var K=V]... [--wait [--timeout SECONDS]]
  preview APP RELEASE BUILD STAGE           what a deployment would change
         [--context as-deployed|current] [--all]
  deployments [--app A] [--stage S] [--status S[,S...]] [--limit N]
  log ID [--follow]                         a deployment's log (--follow: live)
  approve ID [--comment C]                  approve a deployment waiting for approval
  reject ID [--comment C]                   reject it
  cancel ID [--comment C]                   cancel a deployment that has not finished
  validate TARGET                           are the target's files exactly its build's?
  test-connection APP STAGE                 can every target of the stage be deployed to?
  version                                   print the CLI's version

options:
  --server URL    the server (env REPRISE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN   an API token (env REPRISE_TOKEN); never printed
  --json          print the API's JSON instead of text

exit status: 0 ok; 1 an error, or a deployment (deploy --wait, log --follow)
that did not succeed; 2 a usage error. validate: 0 the files match, 1 they
differ, 2 they could not be checked (or a usage error). test-connection: 0
every target is ready, 1 a target has a problem, 2 they could not be checked.
)";

// ---------------------------------------------------------------- plumbing

struct UsageProblem {
  std::string message;
};

// The outcome of a command: an exit code, a usage problem, or an error.
struct Outcome {
  int code = kExitOk;
  std::string message;  // printed to stderr ("error: ..." or "usage: ...")
  static Outcome Ok() { return {}; }
  static Outcome Error(const Status& st) { return {kExitError, st.message()}; }
  static Outcome Error(std::string m) { return {kExitError, std::move(m)}; }
  static Outcome Usage(std::string m) { return {kExitUsage, std::move(m)}; }
  static Outcome Exit(int code) { return {code, ""}; }
};

struct Ctx {
  ServerUrl url;
  std::string token;
  ApiClient& client;
  const ParsedArgs& args;
  std::ostream& out;
  std::ostream& err;
  bool json = false;
};

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
                  const Json* body = nullptr) {
  auto r = client.Send(method, path, body ? body->dump() : std::string());
  if (!r.ok()) return r.status();
  if (r->status < 200 || r->status > 299) return ApiError(*r);
  Json j = Json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Internal("the server's answer is not JSON");
  return j;
}

std::string Str(const Json& j, const char* key, const std::string& fallback = "") {
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
                const std::string& indent = "") {
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

// ---------------------------------------------------------------- following a deployment

bool IsFinal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "interrupted" || status == "expired";
}

void PrintLogLine(std::ostream& out, const Json& line) {
  std::string at = Str(line, "at");
  std::string time = at.size() >= 19 ? at.substr(11, 8) : at;
  std::string target = Str(line, "target");
  std::string level = Str(line, "level");
  out << time << " [" << (target.empty() ? "-" : target) << "] ";
  if (!level.empty() && level != "info") out << level << ": ";
  out << Str(line, "text") << "\n";
  out.flush();
}

// Stops `client` when `deadline` passes, unless Done() came first.
class Watchdog {
 public:
  Watchdog(ApiClient& client, std::optional<std::chrono::steady_clock::time_point> deadline)
      : client_(client) {
    if (!deadline) return;
    thread_ = std::thread([this, d = *deadline] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, d, [this] { return done_; })) {
        fired_ = true;
        client_.Stop();
      }
    });
  }
  ~Watchdog() { Done(); }
  void Done() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  ApiClient& client_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// Streams the deployment's log (SSE; polling when the server refuses more
// streams) from after `after` until the deployment is final. Prints lines
// unless `quiet`. Returns the final status; kTimeout when `deadline` passed.
Result<std::string> FollowDeployment(
    Ctx& c, int64_t id, int64_t after, bool quiet,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  ApiClient client(c.url, c.token);
  Watchdog watchdog(client, deadline);
  const std::string base = "/api/v1/deployments/" + std::to_string(id) + "/log";
  int64_t cursor = after;
  int failures = 0;
  bool poll = false;
  while (true) {
    if (watchdog.fired()) return Timeout("timed out");
    std::string final_status;
    if (!poll) {
      int64_t before = cursor;
      auto r = client.Events(base + "?after=" + std::to_string(cursor),
                             cursor > 0 ? std::to_string(cursor) : "", [&](const SseEvent& e) {
                               Json data = Json::parse(e.data, nullptr, false);
                               if (e.event == "end") {
                                 final_status = Str(data, "status", "unknown");
                                 return false;
                               }
                               if (e.event == "line" && data.is_object()) {
                                 cursor = std::max(cursor, Int(data, "seq"));
                                 if (!quiet) PrintLogLine(c.out, data);
                               }
                               return true;
                             });
      if (!final_status.empty()) return final_status;
      if (!r.ok()) {
        if (watchdog.fired() || r.status().code() == Code::kCancelled) return Timeout("timed out");
        // The connection broke (server restart, proxy timeout): reconnect
        // where we were, giving up after a while without progress.
        failures = cursor > before ? 1 : failures + 1;
        if (failures > 10) return r.status();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (r->status == 503) {
        poll = true;  // too many live streams: fall back to polling
        continue;
      }
      if (r->status != 200) return ApiError(*r);
      continue;  // the stream ended without an end event: reconnect
    }
    auto page = Call(client, "GET", base + "?after=" + std::to_string(cursor));
    if (!page.ok()) {
      if (watchdog.fired()) return Timeout("timed out");
      if (page.status().code() != Code::kUnavailable || ++failures > 10) return page.status();
    } else {
      for (const auto& line : (*page)["lines"]) {
        cursor = std::max(cursor, Int(line, "seq"));
        if (!quiet) PrintLogLine(c.out, line);
      }
      std::string status = Str(*page, "status");
      if (IsFinal(status) && (*page)["lines"].empty()) return status;
      if (!(*page)["lines"].empty()) continue;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// One line about a deployment: "deployment 12: promote of shop 1.0.0 build 3 to Testing (queued)".
std::string DeploymentLine(const Json& d) {
  std::string line = "deployment " + std::to_string(Int(d, "id")) + ": " + Str(d, "kind") + " of " +
                     Str(d, "application") + " " + Str(d, "release") + " build " +
                     std::to_string(Int(d, "build")) + " to " + Str(d, "stage") + ": " +
                     Str(d, "status");
  if (Str(d, "status") == "scheduled") line += " for " + Str(d, "scheduled_at");
  if (d.value("forced", false)) line += " (forced)";
  return line;
}

void PrintUnmetGates(std::ostream& out, const Json& d) {
  if (!d.contains("gates")) return;
  for (const auto& g : d["gates"])
    if (!g.value("holds", false))
      out << "  waiting for " << Str(g, "gate") << ": " << Str(g, "detail") << "\n";
}

// After a deployment finished: its result and each target's message.
void PrintFinal(std::ostream& out, const Json& d) {
  std::string line = "deployment " + std::to_string(Int(d, "id")) + " " + Str(d, "status");
  if (d.contains("duration_ms") && d["duration_ms"].is_number()) {
    char buf[32];
    double seconds = d["duration_ms"].get<double>() / 1000.0;
    std::snprintf(buf, sizeof buf, seconds < 10 ? " in %.2f s" : " in %.1f s", seconds);
    line += buf;
  }
  if (!Str(d, "error").empty()) line += ": " + Str(d, "error");
  out << line << "\n";
  if (d.contains("targets"))
    for (const auto& t : d["targets"]) {
      std::string msg = Str(t, "message");
      out << "  " << Str(t, "target") << ": " << Str(t, "status")
          << (msg.empty() ? "" : " - " + msg) << "\n";
    }
}

// ---------------------------------------------------------------- commands

Outcome Health(Ctx& c) {
  auto r = c.client.Get("/api/v1/health");
  if (!r.ok()) return Outcome::Error(r.status());
  Json j = Json::parse(r->body, nullptr, false);
  if (!j.is_object() || (r->status != 200 && r->status != 503)) return Outcome::Error(ApiError(*r));
  if (c.json) {
    c.out << Pretty(j) << "\n";
  } else {
    const Json& store = j.contains("store") ? j["store"] : Json::object();
    c.out << Str(j, "status") << ": reprise " << Str(j, "version") << " at " << c.client.origin()
          << ", store " << Str(store, "status") << " (schema " << Int(store, "schema_version")
          << ")\n";
  }
  return Str(j, "status") == "ok" ? Outcome::Ok() : Outcome::Exit(kExitError);
}

// Every item of a paged list.
Result<Json> ListAll(ApiClient& client, const std::string& path) {
  Json items = Json::array();
  int64_t offset = 0;
  const char* sep = path.find('?') == std::string::npos ? "?" : "&";
  while (true) {
    auto page = Call(client, "GET", path + sep + "limit=1000&offset=" + std::to_string(offset));
    if (!page.ok()) return page.status();
    for (auto& item : (*page)["items"]) items.push_back(std::move(item));
    if (!page->contains("next_offset") || !(*page)["next_offset"].is_number_integer()) break;
    offset = (*page)["next_offset"].get<int64_t>();
  }
  return items;
}

Outcome Apps(Ctx& c) {
  auto list = ListAll(c.client, "/api/v1/applications");
  if (!list.ok()) return Outcome::Error(list.status());
  Json details = Json::array();
  for (const auto& a : *list) {
    auto d = Call(c.client, "GET", "/api/v1/applications/" + PathSegment(Str(a, "name")));
    if (!d.ok()) return Outcome::Error(d.status());
    details.push_back(std::move(*d));
  }
  if (c.json) {
    c.out << Pretty(details) << "\n";
    return Outcome::Ok();
  }
  if (details.empty()) c.out << "no applications\n";
  bool first = true;
  for (const auto& app : details) {
    if (!first) c.out << "\n";
    first = false;
    std::string description = Str(app.value("spec", Json::object()), "description");
    c.out << Str(app, "name") << (description.empty() ? "" : " - " + description) << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"STAGE", "TARGET", "CURRENT", "DEPLOYED", "BY", "DEPLOYMENT"}};
    std::vector<std::string> notes;
    for (const auto& s : app.value("stages", Json::array())) {
      std::string stage = Str(s, "stage");
      std::string flags;
      if (s.value("protected", false)) flags += " protected";
      if (s.value("auto_promote", false)) flags += " auto-promote";
      if (!flags.empty()) stage += " (" + flags.substr(1) + ")";
      const Json targets = s.value("targets", Json::array());
      if (targets.empty()) rows.push_back({stage, "-", "-", "", "", ""});
      for (const auto& t : targets) {
        const Json& cur = t.contains("current") ? t["current"] : Json();
        if (cur.is_object())
          rows.push_back({stage, Str(t, "target"),
                          Str(cur, "release") + " build " + std::to_string(Int(cur, "build")),
                          Str(cur, "at"), Str(cur, "by"),
                          "#" + std::to_string(Int(cur, "deployment_id"))});
        else
          rows.push_back({stage, Str(t, "target"), "nothing deployed", "", "", ""});
        stage = "";
      }
      if (s.contains("hold") && s["hold"].is_object()) {
        const Json& h = s["hold"];
        notes.push_back(Str(s, "stage") + ": automatic promotion on hold since " + Str(h, "since") +
                        " by " + Str(h, "by") + " (rollback #" +
                        std::to_string(Int(h, "deployment_id")) + ")");
      }
      std::string candidates;
      for (const auto& b : s.value("rollback_candidates", Json::array()))
        candidates += (candidates.empty() ? "" : ", ") + Str(b, "release") + " build " +
                      std::to_string(Int(b, "build"));
      if (!candidates.empty())
        notes.push_back(Str(s, "stage") + ": rollback candidates " + candidates);
    }
    PrintTable(c.out, rows, "  ");
    for (const auto& n : notes) c.out << "  " << n << "\n";
  }
  return Outcome::Ok();
}

Outcome ReleaseCreate(Ctx& c) {
  const auto& p = c.args.positional;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  Json body = {{"number", p[3]}};
  if (!vars->empty()) body["variables"] = *vars;
  auto r = Call(c.client, "POST", "/api/v1/applications/" + PathSegment(p[2]) + "/releases", &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << "created release " << Str(*r, "application") << " " << Str(*r, "number") << "\n";
  return Outcome::Ok();
}

Outcome BuildCreate(Ctx& c) {
  const auto& p = c.args.positional;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  Json body = Json::object();
  if (!vars->empty()) body["variables"] = *vars;
  auto r = Call(
      c.client, "POST",
      "/api/v1/applications/" + PathSegment(p[2]) + "/releases/" + PathSegment(p[3]) + "/builds",
      &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << Int(*r, "number") << "\n";
  return Outcome::Ok();
}

Outcome Upload(Ctx& c) {
  const auto& p = c.args.positional;  // upload APP RELEASE BUILD NAME FILE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  const std::string build_path = BuildPath(p[1], p[2], p[3]);
  // A cheap check first: a wrong name or token is reported before any bytes move.
  auto build = Call(c.client, "GET", build_path);
  if (!build.ok()) return Outcome::Error(build.status());
  Sha256 hasher;
  uint64_t sent = 0;
  auto r = c.client.PutFile(build_path + "/artifacts/" + PathSegment(p[4]), p[5],
                            [&](const char* data, size_t n) {
                              hasher.Update(data, n);
                              sent += n;
                            });
  if (!r.ok()) return Outcome::Error(r.status());
  if (r->status != 200 && r->status != 201) return Outcome::Error(ApiError(*r));
  Json j = Json::parse(r->body, nullptr, false);
  std::string local = hasher.FinishHex();
  if (Str(j, "sha256") != local)
    return Outcome::Error("the server stored sha256 " + Str(j, "sha256") +
                          " but the file sent has sha256 " + local);
  if (c.json) {
    c.out << Pretty(j) << "\n";
  } else {
    c.out << local << "\n";
    c.err << "artifact " << p[4] << " of " << p[1] << " " << p[2] << " build " << p[3] << ": "
          << FormatBytes(static_cast<double>(sent)) << ", " << Int(j, "file_count") << " files, "
          << (r->status == 201 ? "stored" : "already stored (identical bytes)") << "\n";
  }
  return Outcome::Ok();
}

Result<std::string> ContextOption(const ParsedArgs& args) {
  auto ctx = args.Value("context");
  if (!ctx) return std::string();
  if (*ctx != "as-deployed" && *ctx != "current")
    return InvalidArgument("--context must be as-deployed or current, got '" + *ctx + "'");
  return *ctx;
}

Outcome Deploy(Ctx& c) {
  const auto& p = c.args.positional;  // deploy APP RELEASE BUILD STAGE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  Json body = {{"stage", p[4]}};
  if (auto at = c.args.Value("at")) {
    if (!ParseRfc3339(*at))
      return Outcome::Usage(
          "--at needs an RFC 3339 time with an offset, e.g. "
          "2026-11-23T22:00:00+01:00; got '" +
          *at + "'");
    body["at"] = *at;
  }
  if (c.args.Has("force")) {
    if (!c.args.Value("comment") || c.args.Value("comment")->empty())
      return Outcome::Usage("--force needs --comment saying why");
    body["force"] = true;
  }
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  auto ctx = ContextOption(c.args);
  if (!ctx.ok()) return Outcome::Usage(ctx.status().message());
  if (!ctx->empty()) body["context"] = *ctx;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  if (!vars->empty()) body["variables"] = *vars;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (auto t = c.args.Value("timeout")) {
    if (!c.args.Has("wait")) return Outcome::Usage("--timeout is only for --wait");
    if (!IsDigits(*t) || std::stoll(*t) == 0)
      return Outcome::Usage("--timeout needs a whole number of seconds, got '" + *t + "'");
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::stoll(*t));
  }

  auto d = Call(c.client, "POST", BuildPath(p[1], p[2], p[3]) + "/deploy", &body);
  if (!d.ok()) return Outcome::Error(d.status());
  const int64_t id = Int(*d, "id");
  if (!c.args.Has("wait")) {
    if (c.json) {
      c.out << Pretty(*d) << "\n";
    } else {
      c.out << DeploymentLine(*d) << "\n";
      PrintUnmetGates(c.out, *d);
    }
    return Outcome::Ok();
  }
  if (!c.json) {
    c.out << DeploymentLine(*d) << "\n";
    PrintUnmetGates(c.out, *d);
    c.out.flush();
  }
  auto status = FollowDeployment(c, id, 0, c.json, deadline);
  auto final = Call(c.client, "GET", "/api/v1/deployments/" + std::to_string(id));
  if (!status.ok()) {
    if (status.status().code() == Code::kTimeout)
      return Outcome::Error("timed out after " + *c.args.Value("timeout") + " s; deployment " +
                            std::to_string(id) + " is " +
                            (final.ok() ? Str(*final, "status") : std::string("unknown")) +
                            " (it was not cancelled)");
    return Outcome::Error(status.status());
  }
  if (!final.ok()) return Outcome::Error(final.status());
  if (c.json)
    c.out << Pretty(*final) << "\n";
  else
    PrintFinal(c.out, *final);
  return Str(*final, "status") == "succeeded" ? Outcome::Ok() : Outcome::Exit(kExitError);
}

void PrintFiles(std::ostream& out, const char* what, char mark, const Json& files, bool all) {
  if (!files.is_array() || files.empty()) return;
  out << "    " << what << " (" << files.size() << "):\n";
  constexpr size_t kShown = 20;
  size_t shown = 0;
  for (const auto& f : files) {
    if (!all && shown == kShown) {
      out << "      ... and " << (files.size() - kShown) << " more (--all lists every file)\n";
      break;
    }
    out << "      " << mark << " " << (f.is_string() ? f.get<std::string>() : f.dump()) << "\n";
    ++shown;
  }
}

Outcome PreviewCmd(Ctx& c) {
  const auto& p = c.args.positional;  // preview APP RELEASE BUILD STAGE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  Json body = {{"stage", p[4]}};
  auto ctx = ContextOption(c.args);
  if (!ctx.ok()) return Outcome::Usage(ctx.status().message());
  if (!ctx->empty()) body["context"] = *ctx;
  auto r = Call(c.client, "POST", BuildPath(p[1], p[2], p[3]) + "/preview", &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return Outcome::Ok();
  }
  const Json& v = *r;
  const bool all = c.args.Has("all");
  c.out << Str(v, "summary") << "\n";
  c.out << "kind: " << Str(v, "kind") << ", context: " << Str(v, "context", "-") << "\n";
  c.out << "\nfiles:\n";
  for (const auto& t : v.value("targets", Json::array())) {
    std::string current = Str(t, "current");
    c.out << "  target " << Str(t, "target") << " (now: " << (current.empty() ? "nothing" : current)
          << ")\n";
    size_t changes = t.value("added", Json::array()).size() +
                     t.value("overwritten", Json::array()).size() +
                     t.value("deleted", Json::array()).size();
    PrintFiles(c.out, "added", '+', t.value("added", Json::array()), all);
    PrintFiles(c.out, "overwritten", '~', t.value("overwritten", Json::array()), all);
    PrintFiles(c.out, "deleted", '-', t.value("deleted", Json::array()), all);
    c.out << "    " << (changes == 0 ? "no file changes; " : "") << Int(t, "unchanged")
          << " unchanged\n";
  }
  c.out << "\nvariables:\n";
  const Json vars = v.value("variables", Json::array());
  if (vars.empty()) {
    c.out << "  no differences\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "SCOPE", "CHANGE", "AS DEPLOYED", "CURRENT"}};
    for (const auto& x : vars) {
      std::string scope = Str(x, "scope");
      if (!Str(x, "target").empty()) scope += " " + Str(x, "target");
      rows.push_back({Str(x, "name"), scope, Str(x, "change"), Str(x, "as_deployed", "-"),
                      Str(x, "current", "-")});
    }
    PrintTable(c.out, rows, "  ");
  }
  c.out << "\ngates:\n";
  const Json gates = v.value("gates", Json::array());
  if (gates.empty()) c.out << "  none\n";
  for (const auto& g : gates)
    c.out << "  " << (g.value("holds", false) ? "[ok]      " : "[waiting] ") << Str(g, "gate")
          << ": " << Str(g, "detail") << "\n";
  const Json ops = v.value("operations", Json::object());
  if (ops.is_object() && !ops.empty()) {
    c.out << "\nplan:\n";
    for (const auto& [target, lines] : ops.items()) {
      c.out << "  " << target << ":\n";
      for (const auto& l : lines)
        c.out << "    " << (l.is_string() ? l.get<std::string>() : l.dump()) << "\n";
    }
  }
  const Json problems = v.value("problems", Json::array());
  if (!problems.empty()) {
    c.out << "\nproblems:\n";
    for (const auto& pr : problems)
      c.out << "  ! " << (pr.is_string() ? pr.get<std::string>() : pr.dump()) << "\n";
  }
  return Outcome::Ok();
}

Outcome Deployments(Ctx& c) {
  std::string query;
  auto add = [&](const char* key, const std::optional<std::string>& value) {
    if (value) query += std::string(query.empty() ? "?" : "&") + key + "=" + QueryValue(*value);
  };
  add("application", c.args.Value("app"));
  add("stage", c.args.Value("stage"));
  add("status", c.args.Value("status"));
  auto limit = c.args.Value("limit");
  if (limit && (!IsDigits(*limit) || std::stoll(*limit) < 1 || std::stoll(*limit) > 1000))
    return Outcome::Usage("--limit must be from 1 to 1000, got '" + *limit + "'");
  add("limit", limit ? limit : std::optional<std::string>("50"));
  auto r = Call(c.client, "GET", "/api/v1/deployments" + query);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty((*r)["items"]) << "\n";
    return Outcome::Ok();
  }
  const Json items = r->value("items", Json::array());
  if (items.empty()) {
    c.out << "no deployments\n";
    return Outcome::Ok();
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "APPLICATION", "RELEASE", "BUILD", "STAGE", "KIND", "STATUS", "WHEN", "BY"}};
  for (const auto& d : items) {
    std::string when = Str(d, "finished_at");
    if (when.empty()) when = Str(d, "started_at");
    if (when.empty() && Str(d, "status") == "scheduled") when = Str(d, "scheduled_at");
    if (when.empty()) when = Str(d, "created_at");
    rows.push_back({std::to_string(Int(d, "id")), Str(d, "application"), Str(d, "release"),
                    std::to_string(Int(d, "build")), Str(d, "stage"), Str(d, "kind"),
                    Str(d, "status") + (d.value("forced", false) ? " (forced)" : ""), when,
                    Str(d, "requested_by")});
  }
  PrintTable(c.out, rows);
  return Outcome::Ok();
}

Outcome Log(Ctx& c) {
  const std::string& id = c.args.positional[1];
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  if (c.args.Has("follow")) {
    auto status = FollowDeployment(c, std::stoll(id), 0, false, std::nullopt);
    if (!status.ok()) return Outcome::Error(status.status());
    if (!c.json) c.out << "deployment " << id << " " << *status << "\n";
    return *status == "succeeded" ? Outcome::Ok() : Outcome::Exit(kExitError);
  }
  int64_t after = 0;
  Json all = Json::array();
  while (true) {
    auto r =
        Call(c.client, "GET", "/api/v1/deployments/" + id + "/log?after=" + std::to_string(after));
    if (!r.ok()) return Outcome::Error(r.status());
    const Json lines = r->value("lines", Json::array());
    for (const auto& l : lines) {
      after = std::max(after, Int(l, "seq"));
      if (c.json)
        all.push_back(l);
      else
        PrintLogLine(c.out, l);
    }
    if (lines.size() < 10000) break;  // the server's page size
  }
  if (c.json) c.out << Pretty(all) << "\n";
  return Outcome::Ok();
}

Outcome Action(Ctx& c, const std::string& action, const char* done) {
  const std::string& id = c.args.positional[1];
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  Json body = Json::object();
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  auto r = Call(c.client, "POST", "/api/v1/deployments/" + id + "/" + action, &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
  } else {
    c.out << "deployment " << id << " " << done << "; status now " << Str(*r, "status") << "\n";
    PrintUnmetGates(c.out, *r);
  }
  return Outcome::Ok();
}

// ---------------------------------------------------------------- validate

// Exit status of `validate`, like diff(1): 0 the files match, 1 they differ,
// 2 they could not be checked.
constexpr int kValidateDiffers = 1;
constexpr int kValidateTrouble = 2;

std::string Count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

Outcome Validate(Ctx& c) {
  const std::string& target = c.args.positional[1];
  Json body = Json::object();
  auto r = Call(c.client, "POST", "/api/v1/targets/" + PathSegment(target) + "/validate", &body);
  if (!r.ok()) {
    c.err << "error: " << r.status().message() << "\n";
    return Outcome::Exit(kValidateTrouble);
  }
  const Json& v = *r;
  const bool ok = v.value("ok", false);
  if (c.json) {
    c.out << Pretty(v) << "\n";
    return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
  }
  const Json missing = v.value("missing", Json::array());
  const Json changed = v.value("changed", Json::array());
  const Json extra = v.value("extra", Json::array());
  const size_t checked = static_cast<size_t>(Int(v, "files_checked"));
  c.out << Str(v, "target", target) << ": " << Str(v, "release") << " build " << Str(v, "build")
        << " (artifact " << Str(v, "artifact") << ", sha256 " << Str(v, "sha256") << ") on agent "
        << Str(v, "agent") << "\n";
  if (ok) {
    c.out << "ok: " << Count(checked, "file matches", "files match") << "\n";
    return Outcome::Ok();
  }
  c.out << "differs: " << missing.size() << " missing, " << changed.size() << " changed, "
        << extra.size() << " extra (" << Count(checked, "file", "files") << " re-hashed)\n";
  auto text = [](const Json& p) { return p.is_string() ? p.get<std::string>() : p.dump(); };
  for (const auto& p : missing) c.out << "  missing  " << text(p) << "\n";
  for (const auto& p : changed)
    c.out << "  changed  " << Str(p, "path") << ": " << Str(p, "problem") << "\n";
  for (const auto& p : extra) c.out << "  extra    " << text(p) << "\n";
  return Outcome::Exit(kValidateDiffers);
}

// test-connection APP STAGE: every target's agent connected and approved,
// its root writable, its free space.
Outcome TestConnection(Ctx& c) {
  const auto& p = c.args.positional;
  Json body = Json::object();
  auto r = Call(c.client, "POST",
                "/api/v1/applications/" + PathSegment(p[1]) + "/stages/" + PathSegment(p[2]) +
                    "/test-connection",
                &body);
  if (!r.ok()) {
    c.err << "error: " << r.status().message() << "\n";
    return Outcome::Exit(kValidateTrouble);
  }
  const bool ok = r->value("ok", false);
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
  }
  std::vector<std::vector<std::string>> rows = {
      {"TARGET", "AGENT", "CONNECTED", "VERSION", "LATENCY", "WRITABLE", "FREE"}};
  std::vector<std::string> problems;
  for (const auto& t : r->value("targets", Json::array())) {
    const bool connected = t.value("connected", false) && t.value("approved", false);
    const bool answered = connected;  // else nothing was probed
    rows.push_back({Str(t, "target"), Str(t, "agent"),
                    connected ? "yes" : (t.value("connected", false) ? "not approved" : "no"),
                    Str(t, "version", "-"),
                    answered ? std::to_string(Int(t, "latency_ms")) + " ms" : "-",
                    answered ? (t.value("writable", false) ? "yes" : "no") : "-",
                    answered ? FormatBytes(static_cast<double>(Int(t, "free_bytes"))) : "-"});
    if (!Str(t, "problem").empty()) problems.push_back(Str(t, "problem"));
  }
  PrintTable(c.out, rows);
  c.out << (ok ? "ok: every target of " : "problem: not every target of ") << p[1] << " " << p[2]
        << " can be deployed to\n";
  for (const auto& problem : problems) c.out << "  " << problem << "\n";
  return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
}

// ---------------------------------------------------------------- dispatch

struct Command {
  std::vector<std::string> words;  // "release", "create"
  size_t args = 0;                 // positional arguments after the words
  std::vector<std::string> options;
  std::function<Outcome(Ctx&)> run;
  std::string usage;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {{"health"}, 0, {}, Health, "reprise health"},
      {{"apps"}, 0, {}, Apps, "reprise apps"},
      {{"release", "create"},
       2,
       {"var"},
       ReleaseCreate,
       "reprise release create APP NUMBER [--var K=V]..."},
      {{"build", "create"},
       2,
       {"var"},
       BuildCreate,
       "reprise build create APP RELEASE [--var K=V]..."},
      {{"upload"}, 5, {}, Upload, "reprise upload APP RELEASE BUILD NAME FILE"},
      {{"deploy"},
       4,
       {"at", "force", "comment", "context", "var", "wait", "timeout"},
       Deploy,
       "reprise deploy APP RELEASE BUILD STAGE [--at RFC3339] [--force --comment C] "
       "[--context as-deployed|current] [--var K=V]... [--wait [--timeout SECONDS]]"},
      {{"preview"},
       4,
       {"context", "all"},
       PreviewCmd,
       "reprise preview APP RELEASE BUILD STAGE [--context as-deployed|current] [--all]"},
      {{"deployments"},
       0,
       {"app", "stage", "status", "limit"},
       Deployments,
       "reprise deployments [--app A] [--stage S] [--status S[,S...]] [--limit N]"},
      {{"log"}, 1, {"follow"}, Log, "reprise log ID [--follow]"},
      {{"validate"}, 1, {}, Validate, "reprise validate TARGET"},
      {{"test-connection"}, 2, {}, TestConnection, "reprise test-connection APP STAGE"},
      {{"approve"},
       1,
       {"comment"},
       [](Ctx& c) { return Action(c, "approve", "approved"); },
       "reprise approve ID [--comment C]"},
      {{"reject"},
       1,
       {"comment"},
       [](Ctx& c) { return Action(c, "reject", "rejected"); },
       "reprise reject ID [--comment C]"},
      {{"cancel"},
       1,
       {"comment"},
       [](Ctx& c) { return Action(c, "cancel", "cancelled"); },
       "reprise cancel ID [--comment C]"},
  };
  return commands;
}

const std::vector<OptionSpec>& KnownOptions() {
  static const std::vector<OptionSpec> known = {
      {"server", true, false}, {"token", true, false},    {"json", false, false},
      {"help", false, false},  {"version", false, false}, {"at", true, false},
      {"force", false, false}, {"comment", true, false},  {"context", true, false},
      {"var", true, true},     {"wait", false, false},    {"timeout", true, false},
      {"all", false, false},   {"app", true, false},      {"stage", true, false},
      {"status", true, false}, {"limit", true, false},    {"follow", false, false},
  };
  return known;
}

bool IsGlobalOption(const std::string& name) {
  return name == "server" || name == "token" || name == "json" || name == "help" ||
         name == "version";
}

}  // namespace

int RunCli(const std::vector<std::string>& argv, const CliEnvironment& env, std::ostream& out,
           std::ostream& err) {
  auto usage_error = [&](const std::string& message, const std::string& usage) {
    err << "reprise: " << message << "\n";
    if (!usage.empty())
      err << "usage: " << usage << "\n";
    else
      err << "run 'reprise --help' for the commands\n";
    return kExitUsage;
  };
  auto parsed = ParseArgs(argv, KnownOptions());
  if (!parsed.ok()) return usage_error(parsed.status().message(), "");
  const ParsedArgs& args = *parsed;
  if (args.Has("version") || (!args.positional.empty() && args.positional[0] == "version")) {
    out << "reprise " << Version() << "\n";
    return kExitOk;
  }
  if (args.Has("help") || args.positional.empty() ||
      (args.positional.size() == 1 && args.positional[0] == "help")) {
    (args.positional.empty() && !args.Has("help") ? err : out) << kUsage;
    return args.positional.empty() && !args.Has("help") ? kExitUsage : kExitOk;
  }

  const Command* command = nullptr;
  for (const auto& cmd : Commands()) {
    if (args.positional.size() < cmd.words.size()) continue;
    if (std::equal(cmd.words.begin(), cmd.words.end(), args.positional.begin())) command = &cmd;
  }
  if (command == nullptr) {
    std::string word = args.positional[0];
    for (const auto& cmd : Commands())
      if (cmd.words[0] == word && cmd.words.size() > 1)
        return usage_error("unknown command '" + word + " " +
                               (args.positional.size() > 1 ? args.positional[1] : "") + "'",
                           cmd.usage);
    return usage_error("unknown command '" + word + "'", "");
  }
  if (args.positional.size() != command->words.size() + command->args)
    return usage_error(args.positional.size() < command->words.size() + command->args
                           ? "missing arguments"
                           : "too many arguments",
                       command->usage);
  for (const auto& [name, values] : args.options) {
    (void)values;
    if (IsGlobalOption(name)) continue;
    if (std::find(command->options.begin(), command->options.end(), name) == command->options.end())
      return usage_error("option '--" + name + "' does not apply to '" + command->words[0] + "'",
                         command->usage);
  }

  std::string server =
      args.Value("server").value_or(env.server.empty() ? kDefaultServer : env.server);
  auto url = ParseServerUrl(server);
  if (!url.ok()) return usage_error(url.status().message(), "");
  std::string token = args.Value("token").value_or(env.token);
  ApiClient client(*url, token);
  Ctx ctx{*url, token, client, args, out, err, args.Has("json")};
  Outcome outcome = command->run(ctx);
  out.flush();
  if (!outcome.message.empty()) {
    if (outcome.code == kExitUsage) return usage_error(outcome.message, command->usage);
    err << "error: " << outcome.message << "\n";
  }
  return outcome.code;
}

}  // namespace reprise::cli
