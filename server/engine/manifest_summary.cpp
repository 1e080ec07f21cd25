// ManifestSummaryOf (manifest_summary.h): parsed once per artifact sha256.
#include "server/engine/manifest_summary.h"

#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

namespace reprise {

namespace {

// Enough for every artifact a server deploys in a while; cleared when full.
constexpr size_t kMaxKept = 4096;

// Reads the top-level "manifest_hash" and "total_bytes" as the parser meets
// them, and stops once both are in: the manifest writes them before its
// list of entries, so the list (nearly all of the text) is never tokenized.
class SummaryReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit SummaryReader(ManifestSummary& out) : out_(out) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t v) override {
    if (depth_ == 1 && key_ == "total_bytes") {
      out_.total_bytes = v;
      have_bytes_ = true;
    }
    return !Done();
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& v) override {
    if (depth_ == 1 && key_ == "manifest_hash") {
      out_.manifest_hash = v;
      have_hash_ = true;
    }
    return !Done();
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_object_ = true;
    return Enter();
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool end_object() override { return Leave(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_array() override { return Leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    failed_ = true;
    return false;
  }
  bool failed() const { return failed_ || !top_object_; }
  bool Done() const { return have_hash_ && have_bytes_; }

 private:
  bool Enter() {
    ++depth_;
    return true;
  }
  bool Leave() {
    --depth_;
    return true;
  }
  ManifestSummary& out_;
  int depth_ = 0;
  std::string key_;
  bool have_hash_ = false, have_bytes_ = false, failed_ = false;
  bool top_object_ = false;
};

ManifestSummary Parse(const std::string& manifest_json) {
  ManifestSummary out;
  SummaryReader reader(out);
  const bool whole = nlohmann::json::sax_parse(manifest_json, &reader);
  // Stopped early with both facts: the rest is the entries, unread. A text
  // that is not a JSON object (or broken before both) summarises as empty.
  if (reader.Done() && !reader.failed()) return out;
  if (!whole || reader.failed()) return ManifestSummary{};
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
