// Internal to the planner: the yaml-cpp primitives the plan parser
// (yaml_parser.cpp) and the application spec parser (app_spec_parser.cpp)
// share: error positions per source, the fields of one map, scalar readers.
// yaml-cpp is used only by these three files; include this header nowhere
// else. Stateless helpers; thread-safe.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "planner/plan.h"

namespace reprise::yaml_internal {

constexpr int kMaxNesting = 32;

// Formats errors for one source. Plans embedded in a spec as text report
// "spec:line:col: plan 'name' line L column C: message".
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  Reader(std::string outer_prefix, bool nested)
      : source_(std::move(outer_prefix)), nested_(nested) {}

  Status Error(const YAML::Mark& mark, std::string_view message) const {
    return InvalidArgument(Where(mark) + ": " + std::string(message));
  }
  Status Error(const YAML::Node& node, std::string_view message) const {
    return Error(node.Mark(), message);
  }
  std::string Where(const YAML::Mark& mark) const {
    SourcePosition p = Position(mark);
    if (nested_) {
      return source_ + "line " + std::to_string(p.line) + " column " + std::to_string(p.column);
    }
    return FormatPosition(source_, p);
  }
  static SourcePosition Position(const YAML::Mark& mark) {
    if (mark.is_null()) return {};
    return {mark.line + 1, mark.column + 1};
  }

 private:
  std::string source_;
  bool nested_ = false;
};

// The entries of a mapping, checked against the keys allowed there.
class Fields {
 public:
  Result<bool> Load(const Reader& r, const YAML::Node& node, std::string_view what,
                    std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) return r.Error(node, std::string(what) + " must be a map of arguments");
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: the iterator proxy dies here
      if (!key.IsScalar())
        return r.Error(key, std::string("a key in ") + std::string(what) + " must be a plain word");
      const std::string& name = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return r.Error(
            key, "unknown key '" + name + "' in " + std::string(what) + " (allowed: " + list + ")");
      }
      for (const auto& [seen, unused1, unused2] : entries_) {
        if (seen == name) {
          return r.Error(key, "duplicate key '" + name + "' in " + std::string(what));
        }
      }
      entries_.emplace_back(name, key, it->second);
    }
    return true;
  }
  // An undefined node when absent.
  YAML::Node Get(std::string_view name) const {
    for (const auto& [key, key_node, value] : entries_) {
      if (key == name) return value;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }
  bool Has(std::string_view name) const { return Get(name).IsDefined(); }
  YAML::Mark KeyMark(std::string_view name) const {
    for (const auto& [key, key_node, value] : entries_) {
      if (key == name) return key_node.Mark();
    }
    return YAML::Mark::null_mark();
  }

 private:
  std::vector<std::tuple<std::string, YAML::Node, YAML::Node>> entries_;
};

inline Result<std::string> ReadString(const Reader& r, const YAML::Node& node,
                                      std::string_view desc) {
  if (!node.IsScalar()) return r.Error(node, std::string(desc) + " must be a string");
  return node.Scalar();
}

inline Result<int64_t> ReadInt(const Reader& r, const YAML::Node& node, std::string_view desc,
                               int64_t min, int64_t max) {
  if (!node.IsScalar()) return r.Error(node, std::string(desc) + " must be an integer");
  const std::string& s = node.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return r.Error(node, std::string(desc) + " must be an integer, not \"" + s + "\"");
  }
  if (v < min || v > max) {
    return r.Error(node, std::string(desc) + " must be between " + std::to_string(min) + " and " +
                             std::to_string(max));
  }
  return v;
}

inline Result<bool> ReadBool(const Reader& r, const YAML::Node& node, std::string_view desc) {
  if (node.IsScalar()) {
    if (auto b = ParseBoolWord(node.Scalar()); b && node.Scalar() != "1" && node.Scalar() != "0")
      return *b;
  }
  return r.Error(node, std::string(desc) + " must be true or false");
}

inline Result<uint32_t> ReadMode(const Reader& r, const YAML::Node& node, std::string_view desc) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 8);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size() && v <= 07777) return v;
  }
  return r.Error(node, std::string(desc) + " must be an octal file mode such as \"0644\"");
}

inline Result<std::vector<std::string>> ReadStringList(const Reader& r, const YAML::Node& node,
                                                       std::string_view desc) {
  if (!node.IsSequence()) return r.Error(node, std::string(desc) + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : node) {
    if (!item.IsScalar())
      return r.Error(item, "each item of " + std::string(desc) + " must be a string");
    out.push_back(item.Scalar());
  }
  return out;
}

// Validates `$` references early so a typo is reported where it is written.
inline Status CheckTemplate(const Reader& r, const YAML::Node& node, std::string_view desc) {
  auto refs = ReferencedVariables(node.Scalar());
  if (!refs.ok()) return r.Error(node, std::string(desc) + ": " + refs.status().message());
  return Status::Ok();
}

inline Result<std::string> ReadTemplate(const Reader& r, const YAML::Node& node,
                                        std::string_view desc) {
  REPRISE_ASSIGN_OR_RETURN(std::string s, ReadString(r, node, desc));
  REPRISE_RETURN_IF_ERROR(CheckTemplate(r, node, desc));
  return s;
}

// Runs `body` and turns yaml-cpp exceptions into positioned errors.
template <typename T, typename Body>
Result<T> Guarded(const Reader& r, Body body) {
  try {
    return body();
  } catch (const YAML::Exception& e) {
    return r.Error(e.mark, e.msg);
  } catch (const std::exception& e) {
    return r.Error(YAML::Mark::null_mark(), std::string("cannot parse: ") + e.what());
  }
}

// A plan from its YAML node (a list of steps); `r` places its errors.
Result<Plan> ParsePlanNode(const Reader& r, const YAML::Node& root, std::string_view source);

}  // namespace reprise::yaml_internal
