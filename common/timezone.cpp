#include "common/timezone.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>
#include <map>
#include <mutex>
#include <system_error>

#include "common/fs.h"

namespace reprise {
namespace {

constexpr size_t kMaxNameLength = 64;
constexpr uintmax_t kMaxTzifBytes = 1 << 20;
// Real offsets stay within about +-15h; the bound keeps FromLocal's search exact.
constexpr int kMaxOffset = 26 * 3600;
constexpr int64_t kSecondsPerDay = 86400;

constexpr std::array<std::string_view, 4> kBuiltinUtc = {"UTC", "Etc/UTC", "GMT", "Etc/GMT"};

bool IsLeap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t FloorMod(int64_t a, int64_t b) { return a - FloorDiv(a, b) * b; }

int WeekdayFromDays(int64_t days) { return static_cast<int>(FloorMod(days + 4, 7)); }

// --- TZif -----------------------------------------------------------------

class Bytes {
 public:
  explicit Bytes(std::string_view data) : data_(data) {}
  bool Has(uint64_t n) const { return n <= data_.size() - pos_; }
  size_t pos() const { return pos_; }
  void Skip(uint64_t n) { pos_ += static_cast<size_t>(n); }
  uint8_t U8() { return static_cast<uint8_t>(data_[pos_++]); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | U8();
    return v;
  }
  int64_t I64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | U8();
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct TzifHeader {
  char version = 0;
  uint64_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;

  uint64_t BlockSize(int time_size) const {
    return timecnt * time_size + timecnt + typecnt * 6 + charcnt + leapcnt * (time_size + 4) +
           isstdcnt + isutcnt;
  }
};

Result<TzifHeader> ReadHeader(Bytes& in) {
  if (!in.Has(44)) return InvalidArgument("truncated TZif header");
  if (in.Rest().substr(0, 4) != "TZif") return InvalidArgument("not a TZif file");
  in.Skip(4);
  TzifHeader h;
  h.version = static_cast<char>(in.U8());
  if (h.version != 0 && (h.version < '2' || h.version > '4')) {
    return InvalidArgument("unsupported TZif version");
  }
  in.Skip(15);
  h.isutcnt = in.U32();
  h.isstdcnt = in.U32();
  h.leapcnt = in.U32();
  h.timecnt = in.U32();
  h.typecnt = in.U32();
  h.charcnt = in.U32();
  if (h.typecnt == 0 || h.typecnt > 256) return InvalidArgument("bad TZif type count");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
    return InvalidArgument("bad TZif indicator counts");
  }
  // Counts are at most 2^32; the bound keeps BlockSize() far from overflow.
  if (h.timecnt > kMaxTzifBytes || h.charcnt > kMaxTzifBytes || h.leapcnt > kMaxTzifBytes) {
    return InvalidArgument("TZif counts too large");
  }
  return h;
}

struct TzifData {
  std::vector<int64_t> times;
  std::vector<int> offsets;
  int initial_offset = 0;
};

Result<TzifData> ReadBlock(Bytes& in, const TzifHeader& h, int time_size) {
  if (!in.Has(h.BlockSize(time_size))) return InvalidArgument("truncated TZif data");
  if (h.leapcnt != 0) return InvalidArgument("leap-second time zones are not supported");
  TzifData d;
  d.times.reserve(h.timecnt);
  for (uint64_t i = 0; i < h.timecnt; ++i) {
    int64_t t = time_size == 8 ? in.I64() : static_cast<int32_t>(in.U32());
    if (!d.times.empty() && t <= d.times.back()) {
      return InvalidArgument("TZif transitions out of order");
    }
    d.times.push_back(t);
  }
  std::vector<uint8_t> indices;
  for (uint64_t i = 0; i < h.timecnt; ++i) {
    indices.push_back(in.U8());
    if (indices.back() >= h.typecnt) return InvalidArgument("bad TZif type index");
  }
  std::vector<int> type_offsets;
  for (uint64_t i = 0; i < h.typecnt; ++i) {
    auto utoff = static_cast<int32_t>(in.U32());
    in.Skip(2);  // isdst, abbreviation index: offsets are all we need
    if (utoff < -kMaxOffset || utoff > kMaxOffset) return InvalidArgument("bad TZif UTC offset");
    type_offsets.push_back(utoff);
  }
  in.Skip(h.charcnt + h.isstdcnt + h.isutcnt);
  d.initial_offset = type_offsets[0];
  for (uint8_t idx : indices) d.offsets.push_back(type_offsets[idx]);
  return d;
}

// --- POSIX TZ rule ----------------------------------------------------------

class RuleParser {
 public:
  explicit RuleParser(std::string_view s) : s_(s) {}
  bool AtEnd() const { return i_ == s_.size(); }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }

  // "CET" or "<+0530>".
  bool Name() {
    size_t start = i_;
    if (Eat('<')) {
      while (i_ < s_.size() && s_[i_] != '>') {
        char c = s_[i_];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-') return false;
        ++i_;
      }
      if (!Eat('>')) return false;
      return i_ - start - 2 >= 3;
    }
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ - start >= 3;
  }
  bool Number(int max, int* out) {
    int v = 0;
    size_t start = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && i_ - start < 4) {
      v = v * 10 + (s_[i_] - '0');
      ++i_;
    }
    if (i_ == start || v > max) return false;
    *out = v;
    return true;
  }
  // [+-]hh[:mm[:ss]] in seconds.
  bool Duration(int max_hours, int* out) {
    int sign = 1;
    if (Eat('-')) {
      sign = -1;
    } else {
      Eat('+');
    }
    int h = 0, m = 0, sec = 0;
    if (!Number(max_hours, &h)) return false;
    if (Eat(':')) {
      if (!Number(59, &m)) return false;
      if (Eat(':') && !Number(59, &sec)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool Date(TimeZone::PosixRule::Date* d) {
    using Kind = TimeZone::PosixRule::Kind;
    if (Eat('J')) {
      d->kind = Kind::kJulian1;
      if (!Number(365, &d->day) || d->day < 1) return false;
    } else if (Eat('M')) {
      d->kind = Kind::kMonthWeekDay;
      if (!Number(12, &d->month) || d->month < 1 || !Eat('.') || !Number(5, &d->week) ||
          d->week < 1 || !Eat('.') || !Number(6, &d->day)) {
        return false;
      }
    } else {
      d->kind = Kind::kJulian0;
      if (!Number(365, &d->day)) return false;
    }
    d->time_seconds = 7200;
    // TZif v3 allows -167..167 hours here (e.g. "M3.5.0/-1", "J365/25").
    if (Eat('/') && !Duration(167, &d->time_seconds)) return false;
    return true;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// The day (days since the epoch) a rule date falls on in `year`.
int64_t RuleDay(const TimeZone::PosixRule::Date& d, int64_t year) {
  using Kind = TimeZone::PosixRule::Kind;
  int64_t jan1 = DaysFromCivil(year, 1, 1);
  switch (d.kind) {
    case Kind::kJulian1:  // 1..365, February 29 never counted
      return jan1 + d.day - 1 + (IsLeap(year) && d.day >= 60 ? 1 : 0);
    case Kind::kJulian0:
      return jan1 + d.day;
    case Kind::kMonthWeekDay: {
      int64_t first = DaysFromCivil(year, d.month, 1);
      int day = 1 + (d.day - WeekdayFromDays(first) + 7) % 7 + 7 * (d.week - 1);
      while (day > DaysInMonth(year, d.month)) day -= 7;
      return first + day - 1;
    }
  }
  return jan1;
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

Result<TimeZone::PosixRule> TimeZone::ParsePosixRule(std::string_view tz) {
  auto bad = [&] { return InvalidArgument("bad TZ rule \"" + std::string(tz) + "\""); };
  RuleParser p(tz);
  PosixRule r;
  int posix_offset = 0;  // POSIX counts west of Greenwich as positive
  if (!p.Name() || !p.Duration(24, &posix_offset)) return bad();
  r.std_offset = -posix_offset;
  if (p.AtEnd()) return r;
  if (!p.Name()) return bad();
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (p.Peek() != ',' && !p.AtEnd()) {
    if (!p.Duration(24, &posix_offset)) return bad();
    r.dst_offset = -posix_offset;
  }
  if (p.AtEnd()) {
    // No rule given: POSIX leaves it open; tzcode and glibc use the US rule.
    r.start = {PosixRule::Kind::kMonthWeekDay, 0, 3, 2, 7200};
    r.end = {PosixRule::Kind::kMonthWeekDay, 0, 11, 1, 7200};
    return r;
  }
  if (!p.Eat(',') || !p.Date(&r.start) || !p.Eat(',') || !p.Date(&r.end) || !p.AtEnd()) {
    return bad();
  }
  if (r.std_offset < -kMaxOffset || r.std_offset > kMaxOffset || r.dst_offset < -kMaxOffset ||
      r.dst_offset > kMaxOffset) {
    return bad();
  }
  return r;
}

Result<TimeZone> TimeZone::FromTzif(std::string name, std::string_view bytes) {
  Bytes in(bytes);
  REPRISE_ASSIGN_OR_RETURN(TzifHeader h, ReadHeader(in));
  TimeZone tz;
  tz.name_ = std::move(name);
  TzifData data;
  if (h.version == 0) {
    REPRISE_ASSIGN_OR_RETURN(data, ReadBlock(in, h, 4));
  } else {
    // v2+: skip the 32-bit block; the 64-bit one and the footer follow.
    if (!in.Has(h.BlockSize(4))) return InvalidArgument("truncated TZif data");
    in.Skip(h.BlockSize(4));
    REPRISE_ASSIGN_OR_RETURN(TzifHeader h2, ReadHeader(in));
    REPRISE_ASSIGN_OR_RETURN(data, ReadBlock(in, h2, 8));
    std::string_view rest = in.Rest();
    if (rest.empty() || rest[0] != '\n') return InvalidArgument("missing TZif footer");
    size_t end = rest.find('\n', 1);
    if (end == std::string_view::npos) return InvalidArgument("unterminated TZif footer");
    std::string_view footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      REPRISE_ASSIGN_OR_RETURN(tz.rule_, ParsePosixRule(footer));
    }
  }
  tz.transitions_ = std::move(data.times);
  tz.transition_offsets_ = std::move(data.offsets);
  tz.initial_offset_ = data.initial_offset;
  return tz;
}

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> utc = [] {
    TimeZone tz;
    tz.name_ = "UTC";
    return std::make_shared<const TimeZone>(std::move(tz));
  }();
  return utc;
}

Result<TimeZone> TimeZone::Load(std::string_view name, const std::filesystem::path& zoneinfo_dir) {
  std::string quoted = "\"" + std::string(name.substr(0, kMaxNameLength)) +
                       (name.size() > kMaxNameLength ? "...\"" : "\"");
  if (!IsValidName(name)) {
    return InvalidArgument("invalid time zone name " + quoted +
                           " (expected an IANA name such as \"Europe/Berlin\")");
  }
  if (std::find(kBuiltinUtc.begin(), kBuiltinUtc.end(), name) != kBuiltinUtc.end()) {
    TimeZone tz;
    tz.name_ = std::string(name);
    return tz;
  }
  std::error_code ec;
  std::filesystem::path path = zoneinfo_dir / std::string(name);
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (!std::filesystem::is_directory(zoneinfo_dir, ec)) {
      return NotFound("unknown time zone " + quoted + ": no time zone data in " +
                      zoneinfo_dir.string() + " (install tzdata)");
    }
    return NotFound("unknown time zone " + quoted);
  }
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxTzifBytes) return InvalidArgument("time zone " + quoted + " is not TZif");
  Result<std::string> bytes = ReadFileToString(path);  // close-on-exec, unlike ifstream
  if (!bytes.ok()) return IoError("cannot read time zone " + quoted);
  Result<TimeZone> tz = FromTzif(std::string(name), *bytes);
  if (!tz.ok()) {
    return InvalidArgument("time zone " + quoted + " (" + path.string() +
                           "): " + tz.status().message());
  }
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

std::vector<TimeZone::Event> TimeZone::RuleEvents(int64_t first_year, int64_t last_year) const {
  std::vector<Event> events;
  for (int64_t y = first_year; y <= last_year; ++y) {
    // End before start, so that when one year's end meets the next year's
    // start (permanent DST, "EST5EDT,0/0,J365/25") the start wins.
    events.push_back(
        {RuleDay(rule_->end, y) * kSecondsPerDay + rule_->end.time_seconds - rule_->dst_offset,
         rule_->std_offset});
    events.push_back(
        {RuleDay(rule_->start, y) * kSecondsPerDay + rule_->start.time_seconds - rule_->std_offset,
         rule_->dst_offset});
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.at < b.at; });
  return events;
}

int TimeZone::RuleOffsetAt(int64_t t) const {
  if (!rule_->has_dst) return rule_->std_offset;
  int64_t year = CivilFromSeconds(t).year;
  std::vector<Event> events = RuleEvents(year - 2, year + 1);
  int offset = events.front().offset;
  for (const Event& e : events) {
    if (e.at > t) break;
    offset = e.offset;
  }
  return offset;
}

int TimeZone::OffsetAt(int64_t t) const {
  if (transitions_.empty() || t >= transitions_.back()) {
    if (rule_) return RuleOffsetAt(t);
    return transitions_.empty() ? initial_offset_ : transition_offsets_.back();
  }
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  if (it == transitions_.begin()) return initial_offset_;
  return transition_offsets_[static_cast<size_t>(it - transitions_.begin() - 1)];
}

std::optional<int64_t> TimeZone::NextEventAfter(int64_t t) const {
  if (!transitions_.empty() && t < transitions_.back()) {
    return *std::upper_bound(transitions_.begin(), transitions_.end(), t);
  }
  if (!rule_ || !rule_->has_dst) return std::nullopt;
  int64_t year = CivilFromSeconds(t).year;
  for (const Event& e : RuleEvents(year - 1, year + 2)) {
    if (e.at > t) return e.at;
  }
  return std::nullopt;
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
