#include "agents/deployer/entry_rules.h"

#include <algorithm>
#include <deque>

#include "common/crypto.h"

namespace reprise {

namespace {

bool IsDriveLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Splits on '/', dropping empty and "." components.
std::vector<std::string_view> SplitComponents(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.push_back(part);
    start = slash + 1;
  }
  return parts;
}

std::string_view ParentOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

Status UnsafeEntry(std::string_view path, std::string_view why) {
  return Unsafe("unsafe archive entry " + QuoteEntryName(path) + ": " + std::string(why));
}

}  // namespace

std::string QuoteEntryName(std::string_view raw) {
  std::string out = "'";
  for (size_t at = 0; at < raw.size();) {
    const unsigned char c = static_cast<unsigned char>(raw[at]);
    const size_t n = Utf8SequenceLength(raw, at);
    if (n > 1) {  // well-formed UTF-8 stays readable
      out.append(raw.substr(at, n));
      at += n;
      continue;
    }
    if (n == 0 || c < 0x20 || c == 0x7f) {  // never a raw control or stray byte
      out += "\\x" + HexEncode(&c, 1);
    } else {
      out += static_cast<char>(c);
    }
    ++at;
  }
  out += "'";
  return out;
}

Result<std::string> NormaliseEntryPath(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos) return UnsafeEntry(raw, "NUL byte in path");
  if (raw.find('\\') != std::string_view::npos) return UnsafeEntry(raw, "backslash in path");
  if (!IsValidUtf8(raw)) return UnsafeEntry(raw, "name is not valid UTF-8");
  if (!raw.empty() && raw.front() == '/') return UnsafeEntry(raw, "absolute path");
  if (raw.size() >= 2 && IsDriveLetter(raw[0]) && raw[1] == ':')
    return UnsafeEntry(raw, "drive-letter path");
  if (raw.size() > kMaxEntryPathBytes) return UnsafeEntry(raw, "path too long");
  std::string out;
  size_t depth = 0;
  for (std::string_view part : SplitComponents(raw)) {
    if (++depth > kMaxPathDepth) return UnsafeEntry(raw, "path too deep");
    if (part == "..") return UnsafeEntry(raw, "'..' component leaves the destination");
    if (part.size() > kMaxPathComponentBytes) return UnsafeEntry(raw, "path component too long");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Result<std::string> ResolveSymlinkTarget(
    std::string_view link_path, std::string_view target,
    const std::unordered_map<std::string, std::string>& symlinks, uint64_t* work) {
  auto refuse = [&](std::string_view why) {
    return UnsafeEntry(link_path,
                       "symlink target " + QuoteEntryName(target) + " " + std::string(why));
  };
  if (target.empty()) return refuse("is empty");
  if (target.find('\0') != std::string_view::npos) return refuse("contains NUL");
  if (target.find('\\') != std::string_view::npos) return refuse("contains a backslash");
  if (!IsValidUtf8(target)) return refuse("is not valid UTF-8");
  if (target.front() == '/') return refuse("is absolute");
  if (target.size() >= 2 && IsDriveLetter(target[0]) && target[1] == ':')
    return refuse("is a drive path");
  if (target.size() > kMaxEntryPathBytes) return refuse("is too long");

  // `resolved` is the real (symlink-free) path walked so far, `ends` where each
  // of its components ends; `pending` the components still to walk. Meeting a
  // symlink replaces it by its target, relative to the symlink's directory,
  // as the kernel does.
  std::string resolved;
  std::vector<size_t> ends;
  auto push = [&](std::string_view part) {
    if (!resolved.empty()) resolved += '/';
    resolved += part;
    ends.push_back(resolved.size());
  };
  auto pop = [&] {
    ends.pop_back();
    resolved.resize(ends.empty() ? 0 : ends.back());
  };
  for (std::string_view part : SplitComponents(ParentOf(link_path))) push(part);
  std::deque<std::string> pending;
  for (std::string_view part : SplitComponents(target)) pending.emplace_back(part);
  int expansions = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == "..") {
      if (ends.empty()) return refuse("leaves the destination");
      pop();
      continue;
    }
    push(part);
    if (ends.size() > kMaxPathDepth) return refuse("is too deep");
    if (symlinks.empty()) continue;
    if (work != nullptr) {
      *work += resolved.size();
      if (*work > kMaxSymlinkResolutionWork)
        return UnsafeEntry(link_path, "archive symlinks are too complex to check (over " +
                                          std::to_string(kMaxSymlinkResolutionWork) +
                                          " bytes of lookups)");
    }
    auto link = symlinks.find(resolved);
    if (link == symlinks.end()) continue;
    if (++expansions > kMaxSymlinkExpansions) return refuse("loops (too many levels of symlinks)");
    const std::string& next = link->second;
    if (next.empty() || next.front() == '/' || next.find('\\') != std::string::npos ||
        (next.size() >= 2 && IsDriveLetter(next[0]) && next[1] == ':'))
      return refuse("goes through symlink " + QuoteEntryName(link->first) +
                    " that leaves the destination");
    pop();
    std::vector<std::string_view> next_parts = SplitComponents(next);
    for (auto it = next_parts.rbegin(); it != next_parts.rend(); ++it) pending.emplace_front(*it);
  }
  return resolved;
}

Status EntryTable::AddParents(const std::string& path) {
  // Every recorded path has all its ancestors recorded as directories, so the
  // walk up stops at the first ancestor that exists.
  std::vector<size_t> missing;  // ends of the missing ancestors, deepest first
  for (size_t slash = path.rfind('/'); slash != std::string::npos;
       slash = slash == 0 ? std::string::npos : path.rfind('/', slash - 1)) {
    auto it = nodes_.find(path.substr(0, slash));
    if (it == nodes_.end()) {
      missing.push_back(slash);
      continue;
    }
    const std::string parent = path.substr(0, slash);
    if (it->second.type == EntryType::kSymlink)
      return UnsafeEntry(path, "would be written through symlink " + QuoteEntryName(parent));
    if (it->second.type != EntryType::kDirectory)
      return UnsafeEntry(path, "parent " + QuoteEntryName(parent) + " is not a directory");
    break;
  }
  for (auto end = missing.rbegin(); end != missing.rend(); ++end) {
    Node dir;
    dir.type = EntryType::kDirectory;
    dir.implied = true;
    dir.mode = 0755;
    REPRISE_RETURN_IF_ERROR(Record(path.substr(0, *end), std::move(dir)));
  }
  return Status::Ok();
}

Status EntryTable::Record(std::string path, Node node) {
  if (nodes_.size() >= max_nodes_)
    return UnsafeEntry(path, "archive has more than " + std::to_string(max_nodes_) +
                                 " entries, implied directories included (limit max_entries)");
  path_bytes_ += path.size();
  if (path_bytes_ > kMaxTotalPathBytes)
    return UnsafeEntry(
        path, "archive paths exceed " + std::to_string(kMaxTotalPathBytes) + " bytes in total");
  if (node.type == EntryType::kDirectory) directories_.push_back(path);
  nodes_.emplace(std::move(path), std::move(node));
  return Status::Ok();
}

Status EntryTable::AddNode(const std::string& path, Node node) {
  REPRISE_RETURN_IF_ERROR(AddParents(path));
  auto it = nodes_.find(path);
  if (it != nodes_.end()) {
    Node& existing = it->second;
    if (existing.implied && node.type == EntryType::kDirectory) {
      existing.implied = false;
      existing.mode = node.mode;
      return Status::Ok();
    }
    if (existing.type == EntryType::kDirectory && node.type != EntryType::kDirectory)
      return UnsafeEntry(path, std::string("is a directory and then a ") +
                                   std::string(EntryTypeName(node.type)) + " of the same name");
    return UnsafeEntry(path, "duplicate entry (" + std::string(EntryTypeName(existing.type)) +
                                 " then " + std::string(EntryTypeName(node.type)) + ")");
  }
  return Record(path, std::move(node));
}

Status EntryTable::AddDirectory(const std::string& path, unsigned mode) {
  Node node;
  node.type = EntryType::kDirectory;
  node.mode = mode;
  return AddNode(path, std::move(node));
}

Status EntryTable::AddFile(const std::string& path, unsigned mode) {
  Node node;
  node.type = EntryType::kFile;
  node.mode = mode;
  return AddNode(path, std::move(node));
}

Status EntryTable::AddSymlink(const std::string& path, const std::string& target) {
  // Checks the target's form now (so the message comes early); where it points
  // is resolved in FinishChecks, once later symlinks are known too.
  REPRISE_RETURN_IF_ERROR(ResolveSymlinkTarget(path, target, {}).status());
  Node node;
  node.type = EntryType::kSymlink;
  node.mode = 0777;
  node.link_target = target;
  REPRISE_RETURN_IF_ERROR(AddNode(path, std::move(node)));
  symlinks_.emplace(path, target);
  return Status::Ok();
}

Result<std::string> EntryTable::AddHardlink(const std::string& path, const std::string& target) {
  auto it = nodes_.find(target);
  if (it == nodes_.end())
    return UnsafeEntry(path, "hardlink to missing entry " + QuoteEntryName(target));
  const Node& linked = it->second;
  if (linked.type == EntryType::kSymlink)
    return UnsafeEntry(path, "hardlink to symlink " + QuoteEntryName(target));
  if (linked.type == EntryType::kDirectory)
    return UnsafeEntry(path, "hardlink to directory " + QuoteEntryName(target));
  if (target == path) return UnsafeEntry(path, "hardlink to itself");
  std::string file = linked.type == EntryType::kHardlink ? linked.link_target : target;
  Node node;
  node.type = EntryType::kHardlink;
  node.mode = linked.mode;
  node.size = linked.size;
  node.sha256 = linked.sha256;
  node.link_target = file;
  REPRISE_RETURN_IF_ERROR(AddNode(path, std::move(node)));
  return file;
}

void EntryTable::SetFileData(const std::string& path, uint64_t size, std::string sha256) {
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return;
  it->second.size = size;
  it->second.sha256 = std::move(sha256);
}

Status EntryTable::FinishChecks() const {
  // Sorted so the same archive always reports the same entry.
  std::vector<const std::pair<const std::string, std::string>*> links;
  links.reserve(symlinks_.size());
  for (const auto& link : symlinks_) links.push_back(&link);
  std::sort(links.begin(), links.end(), [](auto* a, auto* b) { return a->first < b->first; });
  uint64_t work = 0;
  for (const auto* link : links) {
    REPRISE_RETURN_IF_ERROR(
        ResolveSymlinkTarget(link->first, link->second, symlinks_, &work).status());
  }
  return Status::Ok();
}

Manifest EntryTable::BuildManifest() const {
  Manifest manifest;
  manifest.entries.reserve(nodes_.size());
  for (const auto& [path, node] : nodes_) {
    ManifestEntry entry;
    entry.path = path;
    entry.type = node.type;
    entry.mode = node.mode;
    if (node.type == EntryType::kFile || node.type == EntryType::kHardlink) {
      entry.size = node.size;
      entry.sha256 = node.sha256;
      ++manifest.file_count;
      if (node.type == EntryType::kFile) manifest.total_bytes += node.size;
    }
    if (node.type == EntryType::kSymlink || node.type == EntryType::kHardlink)
      entry.link_target = node.link_target;
    manifest.entries.push_back(std::move(entry));
  }
  std::sort(manifest.entries.begin(), manifest.entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  manifest.manifest_hash = ComputeManifestHash(manifest.entries);
  return manifest;
}

}  // namespace reprise
