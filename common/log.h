// Structured event log on stderr: one line per event,
//   2026-12-06T20:15:43.123Z warn  deployment.write-lost deployment=7 what="audit entry"
// a UTC timestamp, a level, an event name, then key=value fields (values with
// spaces, quotes, '=' or control bytes are quoted and escaped, so a line is
// always one line and parses back). Thread-safe: a line is written whole.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace reprise::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, long long v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, long v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

// Events below `level` are dropped. The default is kInfo, or the level named
// by REPRISE_LOG_LEVEL (debug, info, warn, error) read on first use.
void SetLevel(Level level);
bool Enabled(Level level);

// The line Write would emit, without the timestamp (for tests).
std::string Format(Level level, std::string_view event, std::initializer_list<Field> fields);

void Write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void Debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kDebug, event, fields);
}
inline void Info(std::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kInfo, event, fields);
}
inline void Warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kWarn, event, fields);
}
inline void Error(std::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kError, event, fields);
}

}  // namespace reprise::log
