// Following a deployment to its end: its log live (SSE, or polling), the
// watchdog behind --timeout, and the lines printed about a deployment.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cli/command.h"

namespace reprise::cli {

namespace {

bool IsFinal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled" ||
         status == "interrupted" || status == "expired";
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

}  // namespace

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

}  // namespace reprise::cli
