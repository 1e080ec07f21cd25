// The names of an enum's values, listed once in a table that serves both
// ways: a value's name (NameOf) and a name's value (ValueOf).
//
//   constexpr EnumName<Scope> kScopeNames[] = {{Scope::kRuntime, "runtime"}, ...};
//   NameOf(kScopeNames, Scope::kRuntime, "unknown")  -> "runtime"
//   ValueOf(kScopeNames, "runtime")                  -> Scope::kRuntime
//
// A value missing from its table gets the fallback name, so each table sits
// beside its enum's other uses and a new value is added there too.
// Pure constexpr functions; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace reprise {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

// The name of `value` in `table`, or `fallback` when the table lacks it.
template <typename E, std::size_t N>
constexpr std::string_view NameOf(const EnumName<E> (&table)[N], E value,
                                  std::string_view fallback) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return fallback;
}

// The value named `name` in `table`; nullopt when none is.
template <typename E, std::size_t N>
constexpr std::optional<E> ValueOf(const EnumName<E> (&table)[N], std::string_view name) {
  for (const auto& entry : table)
    if (entry.name == name) return entry.value;
  return std::nullopt;
}

}  // namespace reprise
