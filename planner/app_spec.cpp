#include "planner/app_spec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "common/json_members.h"

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

Result<DeploymentWindow> ParseDeploymentWindow(std::string_view text,
                                               std::shared_ptr<const TimeZone> zone) {
  auto bad = [&](std::string why) {
    return InvalidArgument("bad deployment window \"" + std::string(text) + "\": " + why +
                           " (expected e.g. \"Mon-Fri 22:00-06:00\" or \"daily 01:00-05:00 "
                           "Europe/Berlin\"; UTC unless a time zone is named)");
  };
  // "days times [zone]", separated by spaces.
  std::vector<std::string_view> parts;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    size_t end = std::min(text.find(' ', i), text.size());
    parts.push_back(text.substr(i, end - i));
    i = end;
  }
  if (parts.size() < 2) return bad("missing time range");
  if (parts.size() > 3) return bad("too many parts");
  std::string_view days = parts[0];
  std::string_view times = parts[1];
  DeploymentWindow w;
  w.text = std::string(text);
  w.zone = std::move(zone);
  if (parts.size() == 3) {
    auto named = TimeZone::Get(parts[2]);
    if (!named.ok()) {
      return InvalidArgument("bad deployment window \"" + std::string(text) +
                             "\": " + named.status().message());
    }
    w.zone = *named;
  }
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

namespace {

constexpr int64_t kDay = 86400;

int64_t FloorDay(int64_t local_seconds) {
  return local_seconds / kDay - (local_seconds % kDay < 0 ? 1 : 0);
}

TimePoint FromSeconds(int64_t s) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(s)));
}

// The window that opens on local day `day` (days since 1970-01-01), as UTC
// seconds [open, close); empty when the day is not a window day or DST
// swallows the window.
std::pair<int64_t, int64_t> WindowOn(const DeploymentWindow& w, const TimeZone& zone, int64_t day) {
  int weekday = static_cast<int>((day % 7 + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  if (((w.weekdays >> weekday) & 1) == 0) return {0, 0};
  int64_t close_day = w.end_minute <= w.start_minute ? day + 1 : day;
  return {zone.LocalSecondsToUtc(day * kDay + w.start_minute * int64_t{60}),
          zone.LocalSecondsToUtc(close_day * kDay + w.end_minute * int64_t{60})};
}

}  // namespace

std::string_view DeploymentWindow::zone_name() const {
  return zone ? zone->name() : std::string_view("UTC");
}

bool DeploymentWindow::Contains(TimePoint t) const {
  const TimeZone& z = zone ? *zone : *TimeZone::Utc();
  // Whole-second bounds, so comparing the floored instant is exact.
  int64_t s = FloorSeconds(t);
  int64_t today = FloorDay(s + z.OffsetAt(s));
  // A wrapping window opened yesterday; DST can shift a boundary across local
  // midnight, hence the extra day either side.
  for (int64_t day = today - 2; day <= today + 1; ++day) {
    auto [open, close] = WindowOn(*this, z, day);
    if (open <= s && s < close) return true;
  }
  return false;
}

std::optional<TimePoint> DeploymentWindow::NextOpening(TimePoint from) const {
  if (weekdays == 0) return std::nullopt;
  const TimeZone& z = zone ? *zone : *TimeZone::Utc();
  int64_t s = FloorSeconds(from);
  int64_t today = FloorDay(s + z.OffsetAt(s));
  // Windows open in day order (local-to-UTC is monotonic), so the first one
  // not yet closed is the answer. A window can vanish in a DST gap; a year
  // of days bounds the search.
  for (int64_t day = today - 2; day <= today + 400; ++day) {
    auto [open, close] = WindowOn(*this, z, day);
    if (close > open && close > s) return open <= s ? from : FromSeconds(open);
  }
  return std::nullopt;
}

bool GateSpec::InWindow(TimePoint t) const {
  if (windows.empty()) return true;
  return std::any_of(windows.begin(), windows.end(),
                     [&](const DeploymentWindow& w) { return w.Contains(t); });
}

std::optional<TimePoint> GateSpec::NextWindowOpening(TimePoint from) const {
  if (windows.empty()) return from;
  std::optional<TimePoint> best;
  for (const auto& w : windows) {
    std::optional<TimePoint> next = w.NextOpening(from);
    if (next && (!best || *next < *best)) best = next;
  }
  return best;
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
    json stage_json = JSON_MEMBERS(s, stage, environment, targets, plan, auto_promote);
    stage_json["protected"] = s.is_protected;
    stage_json["gates"] = {
        {"approvals", {{"count", s.gates.approvals.count}, {"role", s.gates.approvals.role}}},
        {"window", windows},
        {"timezone", s.gates.timezone},
        {"allow_self_approval", s.gates.allow_self_approval}};
    pipeline.push_back(std::move(stage_json));
  }
  j["pipeline"] = pipeline;
  j["plans"] = spec.plans;
  return j.dump();
}

}  // namespace reprise
