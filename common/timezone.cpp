#include "common/timezone.h"

#include "common/fs.h"

// The one user of date/tz; see timezone.h.
#include <date/tz.h>

// ptz.h (POSIX TZ rules) names hh_mm_ss unqualified under both `using
// namespace date` and `using namespace std::chrono`, which C++20 makes
// ambiguous; a declaration in its namespace settles the lookup.
namespace Posix {
using ::date::hh_mm_ss;
}  // namespace Posix
#include <date/ptz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <system_error>

namespace reprise {
namespace {

constexpr size_t kMaxNameLength = 64;
// Where Debian's libdate-tz reads tzdata (it was built with USE_OS_TZDB).
constexpr const char* kZoneInfoDir = "/usr/share/zoneinfo";
constexpr uintmax_t kMaxZoneFileBytes = 1 << 20;
// Real offsets stay within about +-15h; the bound keeps FromLocal's search exact.
constexpr int kMaxOffset = 26 * 3600;
constexpr int64_t kSecondsPerDay = 86400;
// About the year 19000: queries are clamped to +-this (date/tz counts years
// in 16 bits), and a stretch ending beyond it never ends.
constexpr int64_t kForever = int64_t{1} << 39;

constexpr std::array<std::string_view, 4> kBuiltinUtc = {"UTC", "Etc/UTC", "GMT", "Etc/GMT"};

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

int WeekdayFromDays(int64_t days) { return static_cast<int>(FloorMod(days + 4, 7)); }

date::sys_seconds SysSeconds(int64_t t) {
  return date::sys_seconds(std::chrono::seconds(std::clamp(t, -kForever, kForever)));
}
int64_t Seconds(date::sys_seconds t) { return t.time_since_epoch().count(); }

// The POSIX TZ rule at the end of a TZif file (v2 and later): the text
// between the file's last two newlines, e.g. "CET-1CEST,M3.5.0,M10.5.0/3".
// Empty when there is none or the file cannot be read.
std::string ReadFooterRule(const std::filesystem::path& path) {
  std::error_code ec;
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxZoneFileBytes) return "";
  Result<std::string> read = ReadFileToString(path);  // close-on-exec, unlike ifstream
  if (!read.ok()) return "";
  const std::string& bytes = *read;
  if (bytes.size() < 6 || bytes.compare(0, 4, "TZif") != 0 || bytes[4] == '\0' ||
      bytes.back() != '\n') {
    return "";
  }
  size_t start = bytes.rfind('\n', bytes.size() - 2);
  if (start == std::string::npos) return "";
  return bytes.substr(start + 1, bytes.size() - start - 2);
}

}  // namespace

// --- calendar ---------------------------------------------------------------

// After Howard Hinnant's days_from_civil / civil_from_days.
int64_t DaysFromCivil(int64_t year, int month, int day) {
  int64_t y = year - (month <= 2 ? 1 : 0);
  int64_t era = FloorDiv(y, 400);
  int64_t yoe = y - era * 400;
  int64_t mp = month > 2 ? month - 3 : month + 9;
  int64_t doy = (153 * mp + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilTime CivilFromSeconds(int64_t seconds) {
  int64_t days = FloorDiv(seconds, kSecondsPerDay);
  int64_t rem = seconds - days * kSecondsPerDay;
  int64_t z = days + 719468;
  int64_t era = FloorDiv(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  CivilTime c;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
  c.weekday = WeekdayFromDays(days);
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem / 60 % 60);
  c.second = static_cast<int>(rem % 60);
  return c;
}

int64_t SecondsFromCivil(const CivilTime& c) {
  int64_t year = c.year + FloorDiv(c.month - 1, 12);
  int month = static_cast<int>(FloorMod(c.month - 1, 12)) + 1;
  // Linear in the day, so day 0 or 32 normalises too.
  return (DaysFromCivil(year, month, 1) + c.day - 1) * kSecondsPerDay + c.hour * int64_t{3600} +
         c.minute * int64_t{60} + c.second;
}

int64_t FloorSeconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

namespace {
TimePoint FromSeconds(int64_t s) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(s)));
}
}  // namespace

// --- TimeZone ---------------------------------------------------------------

struct TimeZone::Data {
  const date::time_zone* zone = nullptr;  // owned by date/tz's database
  // From `rule_from` on, the file's POSIX rule, which date/tz does not read:
  // it would keep the last listed offset forever.
  std::optional<Posix::time_zone> rule;
  int64_t rule_from = 0;
};

bool TimeZone::IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view seg =
        name.substr(start, slash == std::string_view::npos ? slash : slash - start);
    // Also rules out "", ".", ".." and a leading '/'.
    if (seg.empty() || !std::isalnum(static_cast<unsigned char>(seg[0]))) return false;
    for (char c : seg) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '+' && c != '-') {
        return false;
      }
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> utc = [] {
    TimeZone tz;
    tz.name_ = "UTC";
    return std::make_shared<const TimeZone>(std::move(tz));
  }();
  return utc;
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  std::string quoted = "\"" + std::string(name.substr(0, kMaxNameLength)) +
                       (name.size() > kMaxNameLength ? "...\"" : "\"");
  if (!IsValidName(name)) {
    return InvalidArgument("invalid time zone name " + quoted +
                           " (expected an IANA name such as \"Europe/Berlin\")");
  }
  TimeZone tz;
  tz.name_ = std::string(name);
  if (std::find(kBuiltinUtc.begin(), kBuiltinUtc.end(), name) != kBuiltinUtc.end()) return tz;
  if (name.substr(0, 6) == "right/") {
    return InvalidArgument("time zone " + quoted + " counts leap seconds; use \"" +
                           std::string(name.substr(6)) + "\"");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(kZoneInfoDir, ec)) {
    return NotFound("unknown time zone " + quoted + ": no time zone data in " + kZoneInfoDir +
                    " (install tzdata)");
  }
  auto data = std::make_shared<Data>();
  try {
    data->zone = date::locate_zone(name);
    // The stretch that starts at the last listed transition never ends.
    data->rule_from = Seconds(data->zone->get_info(SysSeconds(kForever)).begin);
  } catch (const std::exception&) {  // date/tz's text is no better than ours
    return NotFound("unknown time zone " + quoted);
  }
  if (std::string rule = ReadFooterRule(std::filesystem::path(kZoneInfoDir) / tz.name_);
      !rule.empty()) {
    try {
      data->rule.emplace(rule);
    } catch (const std::exception&) {
      // A rule date/tz cannot read (negative hours, as in America/Nuuk):
      // the last listed offset stays, as date/tz alone would do.
    }
  }
  tz.data_ = std::move(data);
  return tz;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::Get(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const TimeZone>, std::less<>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(name); it != cache.end()) return it->second;
  }
  // Loaded outside the lock; a concurrent duplicate load is harmless.
  REPRISE_ASSIGN_OR_RETURN(TimeZone tz, Load(name));
  auto loaded = std::make_shared<const TimeZone>(std::move(tz));
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(std::string(name), std::move(loaded)).first->second;
}

int TimeZone::OffsetAt(int64_t t) const {
  if (!data_) return 0;
  if (data_->rule && t >= data_->rule_from) {
    return static_cast<int>(data_->rule->get_info(SysSeconds(t)).offset.count());
  }
  return static_cast<int>(data_->zone->get_info(SysSeconds(t)).offset.count());
}

std::optional<int64_t> TimeZone::NextEventAfter(int64_t t) const {
  if (!data_) return std::nullopt;
  int64_t end = data_->rule && t >= data_->rule_from
                    ? Seconds(data_->rule->get_info(SysSeconds(t)).end)
                    : Seconds(data_->zone->get_info(SysSeconds(t)).end);
  if (end >= kForever || end <= t) return std::nullopt;
  return end;
}

std::optional<int64_t> TimeZone::NextTransitionAfter(int64_t t) const {
  int current = OffsetAt(t);
  // Skips entries that change only the abbreviation or the DST flag.
  for (int i = 0; i < 1000; ++i) {
    std::optional<int64_t> next = NextEventAfter(t);
    if (!next) return std::nullopt;
    if (OffsetAt(*next) != current) return next;
    t = *next;
  }
  return std::nullopt;
}

int64_t TimeZone::LocalSecondsToUtc(int64_t local) const {
  // Walk the stretches of constant offset from before the earliest possible
  // answer; within one stretch the clock reads utc + offset, increasing.
  int64_t from = local - kMaxOffset - 3600;
  for (int i = 0; i < 64; ++i) {
    int offset = OffsetAt(from);
    std::optional<int64_t> until = NextTransitionAfter(from);
    int64_t candidate = std::max(from, local - offset);
    if (!until || candidate < *until) return candidate;
    from = *until;
  }
  return local - OffsetAt(local);  // not reached for real zones
}

int TimeZone::OffsetSeconds(TimePoint utc) const { return OffsetAt(FloorSeconds(utc)); }

CivilTime TimeZone::ToLocal(TimePoint utc) const {
  int64_t s = FloorSeconds(utc);
  return CivilFromSeconds(s + OffsetAt(s));
}

TimePoint TimeZone::FromLocal(const CivilTime& local) const {
  return FromSeconds(LocalSecondsToUtc(SecondsFromCivil(local)));
}

std::optional<TimePoint> TimeZone::NextTransition(TimePoint after) const {
  std::optional<int64_t> next = NextTransitionAfter(FloorSeconds(after));
  if (!next) return std::nullopt;
  return FromSeconds(*next);
}

}  // namespace reprise
