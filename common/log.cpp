#include "common/log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/enum_names.h"

namespace reprise::log {

namespace {

Level LevelFromEnvironment() {
  const char* env = std::getenv("REPRISE_LOG_LEVEL");
  std::string_view name = env ? env : "";
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

std::atomic<int>& Threshold() {
  static std::atomic<int> threshold{static_cast<int>(LevelFromEnvironment())};
  return threshold;
}

// Padded to one width, so that log lines line up.
// clang-format off
constexpr EnumName<Level> kLevelNames[] = {
    {Level::kDebug, "debug"}, {Level::kInfo, "info "}, {Level::kWarn, "warn "},
    {Level::kError, "error"},
};
// clang-format on

std::string_view LevelName(Level level) { return NameOf(kLevelNames, level, "?    "); }

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  return false;
}

void AppendValue(fmt::memory_buffer& out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out.append(std::string_view("\\n"));
    } else if (c < ' ' || c == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

}  // namespace

void SetLevel(Level level) { Threshold().store(static_cast<int>(level)); }

bool Enabled(Level level) { return static_cast<int>(level) >= Threshold().load(); }

std::string Format(Level level, std::string_view event, std::initializer_list<Field> fields) {
  fmt::memory_buffer out;
  out.append(LevelName(level));
  out.push_back(' ');
  out.append(event);
  for (const Field& f : fields) {
    out.push_back(' ');
    out.append(f.key);
    out.push_back('=');
    AppendValue(out, f.value);
  }
  return fmt::to_string(out);
}

void Write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  auto now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  std::string line = fmt::format("{:%FT%T}Z {}\n", now, Format(level, event, fields));
  static std::mutex mu;  // one write per line; stderr is unbuffered
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace reprise::log
