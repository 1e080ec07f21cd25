#include "planner/app_spec.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

namespace reprise {

const StageSpec* AppSpec::FindStage(std::string_view name) const {
  for (const auto& s : pipeline) {
    if (s.stage == name) return &s;
  }
  return nullptr;
}

namespace {

constexpr const char* kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

int DayIndex(std::string_view name) {
  for (int i = 0; i < 7; ++i) {
    if (name == kDayNames[i]) return i;
  }
  return -1;
}

// "HH:MM" -> minutes, or -1.
int ParseClock(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') return -1;
  auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9' ? text[i] - '0' : -100; };
  int h = digit(0) * 10 + digit(1);
  int m = digit(3) * 10 + digit(4);
  if (h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0)) return -1;
  return h * 60 + m;
}

}  // namespace

Result<DeploymentWindow> ParseDeploymentWindow(std::string_view text) {
  auto bad = [&](std::string why) {
    return InvalidArgument(
        "bad deployment window \"" + std::string(text) + "\": " + why +
        " (expected e.g. \"Mon-Fri 22:00-06:00\" or \"daily 01:00-05:00\", UTC)");
  };
  size_t space = text.find(' ');
  if (space == std::string_view::npos) return bad("missing time range");
  std::string_view days = text.substr(0, space);
  std::string_view times = text.substr(space + 1);
  DeploymentWindow w;
  w.text = std::string(text);
  if (days == "daily") {
    w.weekdays = 0x7f;
  } else {
    // A comma-separated list of days or ranges: "Mon-Fri", "Sat,Sun".
    size_t start = 0;
    while (start <= days.size()) {
      size_t comma = days.find(',', start);
      std::string_view part = days.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      size_t dash = part.find('-');
      int from = DayIndex(part.substr(0, dash));
      int to = dash == std::string_view::npos ? from : DayIndex(part.substr(dash + 1));
      if (from < 0 || to < 0) return bad("unknown day in \"" + std::string(part) + "\"");
      for (int d = from;; d = (d + 1) % 7) {
        w.weekdays |= static_cast<uint8_t>(1u << d);
        if (d == to) break;
      }
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  size_t dash = times.find('-');
  if (dash == std::string_view::npos) return bad("missing '-' in time range");
  w.start_minute = ParseClock(times.substr(0, dash));
  w.end_minute = ParseClock(times.substr(dash + 1));
  if (w.start_minute < 0 || w.end_minute < 0) return bad("times are HH:MM");
  if (w.start_minute == w.end_minute) return bad("the window is empty");
  return w;
}

bool DeploymentWindow::Contains(TimePoint t) const {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  int minute = tm.tm_hour * 60 + tm.tm_min;
  auto open_on = [&](int day) { return (weekdays >> ((day + 7) % 7)) & 1; };
  if (start_minute < end_minute) {
    return open_on(tm.tm_wday) && minute >= start_minute && minute < end_minute;
  }
  // Wraps past midnight: the part after midnight belongs to the previous day.
  return (open_on(tm.tm_wday) && minute >= start_minute) ||
         (open_on(tm.tm_wday - 1) && minute < end_minute);
}

std::string AppSpecToJson(const AppSpec& spec, SensitiveValues sensitive) {
  using nlohmann::json;
  json j = json::object();
  j["description"] = spec.description;
  json vars = json::object();
  for (const auto& [name, var] : spec.variables) {
    std::string value =
        var.sensitive && sensitive == SensitiveValues::kMask ? std::string(kMask) : var.value;
    vars[name] = json{{"value", value}, {"sensitive", var.sensitive}};
  }
  j["variables"] = vars;
  json pipeline = json::array();
  for (const auto& s : spec.pipeline) {
    json windows = json::array();
    for (const auto& w : s.gates.windows) windows.push_back(w.text);
    pipeline.push_back(json{
        {"stage", s.stage},
        {"environment", s.environment},
        {"targets", s.targets},
        {"plan", s.plan},
        {"auto_promote", s.auto_promote},
        {"protected", s.is_protected},
        {"gates",
         {{"approvals", {{"count", s.gates.approvals.count}, {"role", s.gates.approvals.role}}},
          {"window", windows},
          {"allow_self_approval", s.gates.allow_self_approval}}},
    });
  }
  j["pipeline"] = pipeline;
  j["plans"] = spec.plans;
  return j.dump();
}

}  // namespace reprise
