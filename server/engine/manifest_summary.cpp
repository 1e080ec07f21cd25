// ManifestSummaryOf (manifest_summary.h): parsed once per artifact sha256.
#include "server/engine/manifest_summary.h"

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

namespace reprise {

namespace {

// Enough for every artifact a server deploys in a while; cleared when full.
constexpr size_t kMaxKept = 4096;

ManifestSummary Parse(const std::string& manifest_json) {
  ManifestSummary out;
  auto doc = nlohmann::json::parse(manifest_json, nullptr, false);
  if (!doc.is_object()) return out;
  if (auto it = doc.find("manifest_hash"); it != doc.end() && it->is_string())
    out.manifest_hash = it->get<std::string>();
  if (auto it = doc.find("total_bytes"); it != doc.end() && it->is_number_unsigned())
    out.total_bytes = it->get<uint64_t>();
  return out;
}

}  // namespace

ManifestSummary ManifestSummaryOf(const std::string& sha256, const std::string& manifest_json) {
  static std::mutex mu;
  static std::map<std::pair<std::string, size_t>, ManifestSummary> kept;
  // The length too: a manifest written by another version of the scanner
  // for the same bytes is parsed on its own.
  const std::pair<std::string, size_t> key{sha256, manifest_json.size()};
  if (!sha256.empty()) {
    std::lock_guard lock(mu);
    if (auto it = kept.find(key); it != kept.end()) return it->second;
  }
  ManifestSummary summary = Parse(manifest_json);
  if (sha256.empty()) return summary;
  std::lock_guard lock(mu);
  if (kept.size() >= kMaxKept) kept.clear();
  kept[key] = summary;
  return summary;
}

}  // namespace reprise
