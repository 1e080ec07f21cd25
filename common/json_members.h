// JSON_MEMBERS: the JSON object of a record's members, each under its own
// name, so that a record-to-JSON function lists the members it copies once and
// spells out only those it renames or converts:
//   Json j = JSON_MEMBERS(d, id, status);  // {"id": d.id, "status": d.status}
//   j["created_at"] = Time(d.created_at);
// The member list is expanded by the machinery of nlohmann's own
// NLOHMANN_DEFINE_TYPE macros (up to 64 members).
// Includes nlohmann/json: include only from .cpp files. Stateless.
#pragma once

#include <nlohmann/json.hpp>

#define JSON_MEMBERS(record, ...)                                            \
  [&](const auto& nlohmann_json_t) {                                         \
    ::nlohmann::json nlohmann_json_j = ::nlohmann::json::object();           \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_TO, __VA_ARGS__)) \
    return nlohmann_json_j;                                                  \
  }(record)
