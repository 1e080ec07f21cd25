#include "server/catalog/artifact_settings.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace reprise {

namespace {

enum class Kind { kSize, kCount, kRatio };

struct Flag {
  std::string_view name;
  Kind kind;
  uint64_t min;
  uint64_t max;
  std::string_view default_value;  // as --print-config shows it
};

constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

constexpr Flag kFlags[] = {
    {"--artifact-max-bytes", Kind::kSize, 0, kMaxU64, "8G"},
    {"--artifact-max-entries", Kind::kCount, 1, kMaxU64, "200000"},
    {"--artifact-max-total-bytes", Kind::kSize, 1, kMaxU64, "8G"},
    {"--artifact-max-entry-bytes", Kind::kSize, 1, kMaxU64, "8G"},
    {"--artifact-max-ratio", Kind::kRatio, 1, 0, "200"},
    {"--artifact-ratio-min-bytes", Kind::kSize, 0, kMaxU64, "64M"},
    {"--retention-keep-builds", Kind::kCount, 0, 1000000, "10"},
    {"--retention-keep-days", Kind::kCount, 0, 1000000, "30"},
    {"--retention-keep-candidates", Kind::kCount, 0, 1000, "5"},
};

const Flag* Find(std::string_view name) {
  for (const Flag& f : kFlags)
    if (f.name == name) return &f;
  return nullptr;
}

Result<uint64_t> ParseCount(std::string_view text) {
  if (text.empty() || text.size() > 20) return InvalidArgument("not a number");
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return InvalidArgument("not a number");
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (n > (kMaxU64 - digit) / 10) return InvalidArgument("too large");
    n = n * 10 + digit;
  }
  return n;
}

}  // namespace

const char* ArtifactFlagsUsage() {
  return "Artifact limits and retention defaults:\n"
         "  --artifact-max-bytes SIZE         largest upload body; 413 above (default 8G; 0: "
         "none)\n"
         "  --artifact-max-entries N          entries per archive (default 200000)\n"
         "  --artifact-max-total-bytes SIZE   uncompressed bytes per archive (default 8G)\n"
         "  --artifact-max-entry-bytes SIZE   uncompressed bytes per file (default 8G)\n"
         "  --artifact-max-ratio R            uncompressed / archive bytes (default 200)\n"
         "  --artifact-ratio-min-bytes SIZE   the ratio applies above this (default 64M)\n"
         "  --retention-keep-builds N         retention default: newest N per release (10)\n"
         "  --retention-keep-days D           retention default: younger than D days (30)\n"
         "  --retention-keep-candidates K     retention default: rollback candidates (5)\n"
         "  Archives over a limit are refused with 422 naming the entry; SIZE takes K/M/G/T.\n";
}

bool IsArtifactFlag(std::string_view flag) { return Find(flag) != nullptr; }

std::vector<std::pair<std::string, std::string>> ArtifactFlagNames() {
  std::vector<std::pair<std::string, std::string>> names;
  for (const Flag& f : kFlags)
    names.emplace_back(std::string(f.name.substr(2)), std::string(f.default_value));
  return names;
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  // An optional binary suffix: k, m, g or t (either case) for 2^10 .. 2^40.
  constexpr std::string_view kSuffixes = "kmgt";
  uint64_t multiplier = 1;
  if (!text.empty()) {
    const char last = static_cast<char>(std::tolower(static_cast<unsigned char>(text.back())));
    if (const size_t i = kSuffixes.find(last); i != std::string_view::npos) {
      multiplier = 1ULL << (10 * (i + 1));
      text.remove_suffix(1);
    }
  }
  REPRISE_ASSIGN_OR_RETURN(uint64_t n, ParseCount(text));
  if (n > kMaxU64 / multiplier) return InvalidArgument("too large");
  return n * multiplier;
}

Status ApplyArtifactFlag(std::string_view flag, const char* value, ArchiveLimits& limits,
                         uint64_t& max_artifact_bytes, RetentionPolicy& retention) {
  const Flag* f = Find(flag);
  if (f == nullptr) return InvalidArgument("unknown flag '" + std::string(flag) + "'");
  const std::string name(flag);
  if (value == nullptr) return InvalidArgument(name + " needs a value");
  const std::string_view text(value);

  if (f->kind == Kind::kRatio) {
    errno = 0;
    char* end = nullptr;
    double ratio = std::strtod(value, &end);
    if (text.empty() || end != value + text.size() || errno != 0 || !std::isfinite(ratio) ||
        ratio < 1.0)
      return InvalidArgument(name + " needs a number of at least 1, got '" + std::string(text) +
                             "'");
    limits.max_compression_ratio = ratio;
    return Status::Ok();
  }

  Result<uint64_t> parsed = f->kind == Kind::kSize ? ParseByteSize(text) : ParseCount(text);
  if (!parsed.ok() || *parsed < f->min || *parsed > f->max) {
    std::string range = f->max == kMaxU64
                            ? "at least " + std::to_string(f->min)
                            : std::to_string(f->min) + " to " + std::to_string(f->max);
    return InvalidArgument(
        name + " needs " +
        (f->kind == Kind::kSize ? "a size in bytes (K, M, G, T allowed), " : "a whole number, ") +
        range + ", got '" + std::string(text) + "'");
  }
  const uint64_t n = *parsed;
  if (flag == "--artifact-max-bytes") max_artifact_bytes = n;
  if (flag == "--artifact-max-entries") limits.max_entries = n;
  if (flag == "--artifact-max-total-bytes") limits.max_total_bytes = n;
  if (flag == "--artifact-max-entry-bytes") limits.max_entry_bytes = n;
  if (flag == "--artifact-ratio-min-bytes") limits.ratio_check_min_bytes = n;
  if (flag == "--retention-keep-builds") retention.keep_builds_per_release = static_cast<int>(n);
  if (flag == "--retention-keep-days") retention.keep_days = static_cast<int>(n);
  if (flag == "--retention-keep-candidates")
    retention.keep_rollback_candidates = static_cast<int>(n);
  return Status::Ok();
}

}  // namespace reprise
