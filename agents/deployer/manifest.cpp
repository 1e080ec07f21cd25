// Manifest hashing and its JSON form (the only nlohmann user in the deployer).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "agents/deployer/archive.h"
#include "agents/deployer/entry_rules.h"
#include "common/crypto.h"
#include "common/enum_names.h"

namespace reprise {

namespace {

constexpr std::string_view kManifestMagic = "reprise-manifest-v1\n";

bool IsSha256Hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string OctalMode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// The manifest's (and its hash's) name of each entry type.
constexpr EnumName<EntryType> kEntryTypeNames[] = {
    {EntryType::kFile, "file"},
    {EntryType::kDirectory, "dir"},
    {EntryType::kSymlink, "symlink"},
    {EntryType::kHardlink, "hardlink"},
};

Result<EntryType> ParseEntryType(std::string_view name) {
  if (auto type = ValueOf(kEntryTypeNames, name)) return *type;
  return InvalidArgument("unknown manifest entry type '" + std::string(name) + "'");
}

Result<unsigned> ParseOctalMode(const std::string& text) {
  if (text.empty() || text.size() > 4) return InvalidArgument("bad mode '" + text + "'");
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return InvalidArgument("bad mode '" + text + "'");
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 0777) return InvalidArgument("mode '" + text + "' has special bits");
  return mode;
}

}  // namespace

std::string_view EntryTypeName(EntryType type) { return NameOf(kEntryTypeNames, type, "unknown"); }

std::string ComputeManifestHash(const std::vector<ManifestEntry>& sorted_entries) {
  Sha256 hasher;
  hasher.Update(kManifestMagic);
  std::string record;
  for (const ManifestEntry& e : sorted_entries) {
    record.clear();
    record += EntryTypeName(e.type);
    record += '\0';
    record += OctalMode(e.mode);
    record += '\0';
    record += std::to_string(e.size);
    record += '\0';
    record += e.sha256;
    record += '\0';
    record += e.path;
    record += '\0';
    record += e.link_target;
    record += '\0';
    record += '\n';
    hasher.Update(record);
  }
  return hasher.FinishHex();
}

std::string ManifestToJson(const Manifest& manifest) {
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const ManifestEntry& e : manifest.entries) {
    nlohmann::ordered_json j;
    j["path"] = e.path;
    j["type"] = EntryTypeName(e.type);
    j["mode"] = OctalMode(e.mode);
    if (e.type == EntryType::kFile || e.type == EntryType::kHardlink) {
      j["size"] = e.size;
      j["sha256"] = e.sha256;
    }
    if (e.type == EntryType::kSymlink || e.type == EntryType::kHardlink)
      j["target"] = e.link_target;
    entries.push_back(std::move(j));
  }
  nlohmann::ordered_json doc;
  doc["version"] = 1;
  doc["manifest_hash"] = manifest.manifest_hash;
  doc["file_count"] = manifest.file_count;
  doc["total_bytes"] = manifest.total_bytes;
  doc["entries"] = std::move(entries);
  // Replace invalid UTF-8 (tar paths are bytes) instead of throwing.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Manifest> ManifestFromJson(std::string_view json) {
  try {
    nlohmann::json doc = nlohmann::json::parse(json);
    if (!doc.is_object()) return InvalidArgument("manifest: not a JSON object");
    if (doc.value("version", 0) != 1) return InvalidArgument("manifest: unsupported version");
    if (!doc.contains("entries") || !doc["entries"].is_array())
      return InvalidArgument("manifest: 'entries' must be an array");
    Manifest manifest;
    for (const nlohmann::json& j : doc["entries"]) {
      ManifestEntry e;
      e.path = j.at("path").get<std::string>();
      REPRISE_ASSIGN_OR_RETURN(std::string normal, NormaliseEntryPath(e.path));
      if (normal != e.path || normal.empty())
        return InvalidArgument("manifest: path " + QuoteEntryName(e.path) + " is not normalised");
      REPRISE_ASSIGN_OR_RETURN(e.type, ParseEntryType(j.at("type").get<std::string>()));
      REPRISE_ASSIGN_OR_RETURN(e.mode, ParseOctalMode(j.at("mode").get<std::string>()));
      if (e.type == EntryType::kFile || e.type == EntryType::kHardlink) {
        e.size = j.at("size").get<uint64_t>();
        e.sha256 = j.at("sha256").get<std::string>();
        if (!IsSha256Hex(e.sha256))
          return InvalidArgument("manifest: bad sha256 for " + QuoteEntryName(e.path));
        ++manifest.file_count;
        if (e.type == EntryType::kFile) manifest.total_bytes += e.size;
      }
      if (e.type == EntryType::kSymlink || e.type == EntryType::kHardlink) {
        e.link_target = j.at("target").get<std::string>();
        if (e.link_target.empty())
          return InvalidArgument("manifest: empty link target for " + QuoteEntryName(e.path));
      }
      manifest.entries.push_back(std::move(e));
    }
    std::sort(manifest.entries.begin(), manifest.entries.end(),
              [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
    for (size_t i = 1; i < manifest.entries.size(); ++i) {
      if (manifest.entries[i].path == manifest.entries[i - 1].path)
        return InvalidArgument("manifest: duplicate path " +
                               QuoteEntryName(manifest.entries[i].path));
    }
    manifest.manifest_hash = ComputeManifestHash(manifest.entries);
    if (doc.contains("manifest_hash") &&
        doc["manifest_hash"].get<std::string>() != manifest.manifest_hash)
      return InvalidArgument("manifest: manifest_hash does not match its entries");
    return manifest;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("manifest: invalid JSON: ") + e.what());
  }
}

ReuseSource ReuseSource::FromManifest(std::filesystem::path dir, const Manifest& manifest) {
  ReuseSource source;
  source.dir = std::move(dir);
  for (const ManifestEntry& e : manifest.entries) {
    if (e.type != EntryType::kFile && e.type != EntryType::kHardlink) continue;
    source.files.emplace(e.path, File{e.mode, e.size, e.sha256});
  }
  return source;
}

}  // namespace reprise
