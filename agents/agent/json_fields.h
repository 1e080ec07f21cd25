// A plain struct's JSON object form with its fields declared once: a field
// table is a callable `fields(s, field)` that calls `field(name, s.member)`
// for each member (`field(name, s.member, kRequired)` for one that must be
// there). FieldsToJson writes every field; FieldsFromJson (or ReadFields,
// into a struct) reads each one present over the struct's default and throws
// nlohmann::json's exceptions on a missing required field or a value of the
// wrong type, so callers keep their own try/catch and error text;
// ParseFields parses JSON text and turns those into kInvalidArgument.
//
// Includes nlohmann/json: only for the .cpp files of agents/agent/ that
// already speak JSON. Thread-safety: pure functions on values.
#pragma once

#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"

namespace reprise::agent_runner {

enum FieldNeed { kOptional, kRequired };

template <class T, class Fields>
nlohmann::json FieldsToJson(const T& s, Fields fields) {
  nlohmann::json j = nlohmann::json::object();
  fields(s, [&j](const char* name, const auto& value, FieldNeed = kOptional) { j[name] = value; });
  return j;
}

// Reads the fields in order into `s`; those before a throw stay read.
template <class T, class Fields>
void ReadFields(const nlohmann::json& j, T& s, Fields fields) {
  fields(s, [&j](const char* name, auto& value, FieldNeed need = kOptional) {
    using V = std::remove_reference_t<decltype(value)>;
    value = need == kRequired ? j.at(name).template get<V>() : j.value(name, value);
  });
}

template <class T, class Fields>
T FieldsFromJson(const nlohmann::json& j, Fields fields) {
  T s;
  ReadFields(j, s, fields);
  return s;
}

// `text` parsed as a T; kInvalidArgument "bad <what>: ..." when it is not
// JSON or a field is missing or of the wrong type.
template <class T, class Fields>
Result<T> ParseFields(std::string_view text, Fields fields, const char* what) {
  try {
    return FieldsFromJson<T>(nlohmann::json::parse(text), fields);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("bad ") + what + ": " + e.what());
  }
}

}  // namespace reprise::agent_runner
