// Selective rollback components and the composed manifest (components.h).
#include "server/rollback/components.h"

#include <algorithm>
#include <map>

namespace reprise {
namespace {

using EntryMap = std::map<std::string, ManifestEntry, std::less<>>;

EntryMap ByPath(const Manifest* manifest) {
  EntryMap out;
  if (manifest != nullptr)
    for (const auto& e : manifest->entries) out.emplace(e.path, e);
  return out;
}

bool Differs(const ManifestEntry& a, const ManifestEntry& b) {
  return a.type != b.type || a.mode != b.mode || a.sha256 != b.sha256 ||
         a.link_target != b.link_target;
}

std::string_view Trimmed(std::string_view selector) {
  while (!selector.empty() && selector.back() == '/') selector.remove_suffix(1);
  if (selector == ".") return {};
  return selector;
}

std::string Parent(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

bool IsBelow(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// Whether anything below `dir` is in `entries` ("dir-x" sorts between "dir"
// and "dir/...", hence the search from "dir/").
bool HasChildren(const EntryMap& entries, const std::string& dir) {
  auto next = entries.lower_bound(dir + "/");
  return next != entries.end() && IsBelow(next->first, dir);
}

// Removes directories only D has that hold nothing any more, deepest first.
void DropEmptyNewDirectories(EntryMap& composed, const EntryMap& previous) {
  std::vector<std::string> dirs;
  for (const auto& [path, e] : composed)
    if (e.type == EntryType::kDirectory) {
      auto prev = previous.find(path);
      if (prev == previous.end() || prev->second.type != EntryType::kDirectory)
        dirs.push_back(path);
    }
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return a.size() > b.size() || (a.size() == b.size() && a < b);
  });
  for (const auto& dir : dirs) {
    if (!HasChildren(composed, dir)) composed.erase(dir);
  }
}

// Creates the directories a restored entry needs, with A's mode.
Status AddParents(EntryMap& composed, const EntryMap& previous, const std::string& path) {
  for (std::string dir = Parent(path); !dir.empty(); dir = Parent(dir)) {
    auto it = composed.find(dir);
    if (it != composed.end()) {
      if (it->second.type != EntryType::kDirectory)
        return FailedPrecondition("restoring " + path + " needs the directory " + dir +
                                  ", which D's release keeps as a " +
                                  std::string(EntryTypeName(it->second.type)) + "; select " + dir +
                                  " too");
      continue;
    }
    auto prev = previous.find(dir);
    ManifestEntry e;
    e.path = dir;
    e.type = EntryType::kDirectory;
    e.mode = prev != previous.end() ? prev->second.mode : 0755;
    composed.emplace(dir, e);
  }
  return Status::Ok();
}

}  // namespace

std::vector<RollbackComponent> ComputeComponents(const Manifest* previous,
                                                 const Manifest& deployed) {
  EntryMap before = ByPath(previous);
  EntryMap after = ByPath(&deployed);
  std::vector<RollbackComponent> out;
  for (const auto& [path, d] : after) {
    if (d.type == EntryType::kDirectory) continue;
    auto a = before.find(path);
    if (a == before.end() || a->second.type == EntryType::kDirectory)
      out.push_back({path, "delete", true, d, std::nullopt});
    else if (Differs(a->second, d))
      out.push_back({path, "override", true, d, a->second});
  }
  for (const auto& [path, a] : before) {
    if (a.type == EntryType::kDirectory) continue;
    auto d = after.find(path);
    if (d == after.end() || d->second.type == EntryType::kDirectory)
      out.push_back({path, "restore", true, std::nullopt, a});
  }
  std::sort(out.begin(), out.end(),
            [](const RollbackComponent& x, const RollbackComponent& y) { return x.path < y.path; });
  return out;
}

bool SelectorMatches(std::string_view selector, std::string_view path) {
  std::string_view s = Trimmed(selector);
  if (s.empty()) return true;
  return path == s || IsBelow(path, s);
}

std::set<std::string> ApplySelection(std::vector<RollbackComponent>& components,
                                     const std::vector<std::string>& include,
                                     const std::vector<std::string>& exclude) {
  std::set<std::string> matched;
  for (auto& c : components) {
    if (!include.empty()) {
      c.selected = false;
      for (const auto& s : include)
        if (SelectorMatches(s, c.path)) {
          c.selected = true;
          matched.insert(s);
        }
    } else {
      c.selected = true;
    }
    for (const auto& s : exclude)
      if (SelectorMatches(s, c.path)) {
        c.selected = false;
        matched.insert(s);
      }
  }
  return matched;
}

Status CheckSelector(std::string_view selector, std::string_view field) {
  std::string where = "field '" + std::string(field) + "'";
  if (selector.size() > 4096) return InvalidArgument(where + ": a path is longer than 4096 bytes");
  if (selector.find('\0') != std::string_view::npos)
    return InvalidArgument(where + ": a path contains a NUL byte");
  if (!selector.empty() && selector.front() == '/')
    return InvalidArgument(where + ": '" + std::string(selector) +
                           "' must be relative to the release (like bin/tool)");
  size_t start = 0;
  while (start <= selector.size()) {
    size_t slash = selector.find('/', start);
    std::string_view part = selector.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..")
      return InvalidArgument(where + ": '" + std::string(selector) + "' must not contain '..'");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Result<Manifest> ComposeManifest(const Manifest* previous, const Manifest& deployed,
                                 const std::vector<RollbackComponent>& components) {
  EntryMap before = ByPath(previous);
  EntryMap composed = ByPath(&deployed);
  for (const auto& c : components)
    if (c.selected && c.type == "delete") composed.erase(c.path);
  DropEmptyNewDirectories(composed, before);
  for (const auto& c : components) {
    if (!c.selected || c.type == "delete" || !c.source) continue;
    auto it = composed.find(c.path);
    if (it != composed.end() && it->second.type == EntryType::kDirectory) {
      if (HasChildren(composed, c.path))
        return FailedPrecondition("restoring " + c.path + " needs D's directory " + c.path +
                                  " gone, but it still holds entries; select " + c.path + " too");
      composed.erase(it);
    }
    REPRISE_RETURN_IF_ERROR(AddParents(composed, before, c.path));
    composed[c.path] = *c.source;
  }
  Manifest out;
  for (auto& [path, e] : composed) {
    if (e.type == EntryType::kFile || e.type == EntryType::kHardlink) {
      ++out.file_count;
      if (e.type == EntryType::kFile) out.total_bytes += e.size;
    }
    out.entries.push_back(std::move(e));
  }
  out.manifest_hash = ComputeManifestHash(out.entries);
  return out;
}

ComponentCounts CountComponents(const std::vector<RollbackComponent>& components) {
  ComponentCounts n;
  for (const auto& c : components) {
    ++n.total;
    if (!c.selected) continue;
    ++n.selected;
    if (c.type == "delete") ++n.deletes;
    if (c.type == "override") ++n.overrides;
    if (c.type == "restore") ++n.restores;
  }
  return n;
}

}  // namespace reprise
