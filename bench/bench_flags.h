// Command-line flags of the benchmark programs: each program lists its
// `--name` flags with the variable each one sets, and ParseFlags reads
// `--name value` pairs into them. Only main() uses it: no thread-safety.
#pragma once

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace reprise::bench {

inline bool ParseFlagValue(const std::string& text, std::string& out) {
  out = text;
  return true;
}
inline bool ParseFlagValue(const std::string& text, std::filesystem::path& out) {
  out = text;
  return true;
}
// A number: the whole text, in the variable's type and range.
template <class N>
requires std::is_arithmetic_v<N>
bool ParseFlagValue(const std::string& text, N& out) {
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && stop == end;
}

// One `--name` and the variable its value goes into.
struct Flag {
  template <class T>
  Flag(const char* flag_name, T& variable)
      : name(flag_name),
        set([&variable](const std::string& text) { return ParseFlagValue(text, variable); }) {}

  std::string_view name;
  std::function<bool(const std::string&)> set;
};

// Reads argv[first..] as `--name value` pairs into `flags`. On an unknown
// flag, a flag without a value or a value that does not parse, says which on
// stderr and returns false.
inline bool ParseFlags(int argc, char** argv, int first, std::initializer_list<Flag> flags) {
  for (int i = first; i < argc; i += 2) {
    const std::string name = argv[i];
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (f.name == name) flag = &f;
    }
    if (flag == nullptr) {
      std::fprintf(stderr, "unknown option %s\n", name.c_str());
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "option %s needs a value\n", name.c_str());
      return false;
    }
    if (!flag->set(argv[i + 1])) {
      std::fprintf(stderr, "option %s: bad value '%s'\n", name.c_str(), argv[i + 1]);
      return false;
    }
  }
  return true;
}

}  // namespace reprise::bench
