// Validation of release and build notes and links.
#include "server/api/release_notes.h"

#include <algorithm>
#include <cctype>

namespace reprise {

namespace {

bool HasControl(std::string_view s, bool allow_newlines) {
  return std::any_of(s.begin(), s.end(), [&](char c) {
    auto u = static_cast<unsigned char>(c);
    if (allow_newlines && (c == '\n' || c == '\r' || c == '\t')) return false;
    return u < 0x20 || u == 0x7f;
  });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// An absolute http or https URL with a host; nothing a browser could run.
Status CheckUrl(const std::string& url, const std::string& field) {
  if (url.empty()) return InvalidArgument(field + ".url is required");
  if (url.size() > kMaxLinkUrlBytes)
    return InvalidArgument(field + ".url is longer than " + std::to_string(kMaxLinkUrlBytes) +
                           " bytes");
  if (HasControl(url, false) || url.find(' ') != std::string::npos)
    return InvalidArgument(field + ".url must not contain spaces or control characters");
  std::string lower = Lower(url);
  size_t host_start = lower.starts_with("https://") ? 8 : lower.starts_with("http://") ? 7 : 0;
  if (host_start == 0)
    return InvalidArgument(field + ".url must start with http:// or https:// (got '" +
                           url.substr(0, 40) + "')");
  if (host_start >= url.size() ||
      std::string_view("/?#").find(url[host_start]) != std::string::npos)
    return InvalidArgument(field + ".url has no host");
  return Status::Ok();
}

Result<Json> ReadLink(const Json& item, const std::string& field) {
  std::string title;
  std::string url;
  if (item.is_string()) {
    url = item.get<std::string>();
  } else if (item.is_object()) {
    Status keys = CheckKeys(item, RequestBody{field, LinksFieldDoc().fields});
    if (!keys.ok()) return keys;
    auto t = StringField(item, "title", false);
    if (!t.ok()) return InvalidArgument(field + ": " + t.status().message());
    auto u = StringField(item, "url", true);
    if (!u.ok()) return InvalidArgument(field + ": " + u.status().message());
    title = *t;
    url = *u;
  } else {
    return InvalidArgument(field + " must be a URL or an object {title, url}");
  }
  if (title.size() > kMaxLinkTitleBytes)
    return InvalidArgument(field + ".title is longer than " + std::to_string(kMaxLinkTitleBytes) +
                           " bytes");
  if (HasControl(title, false))
    return InvalidArgument(field + ".title must not contain control characters");
  Status st = CheckUrl(url, field);
  if (!st.ok()) return st;
  return Json{{"title", title}, {"url", url}};
}

}  // namespace

BodyField NotesFieldDoc() {
  return {"notes", "string", false, "release notes in Markdown (up to 64 KiB)"};
}

BodyField LinksFieldDoc() {
  return {"links",
          "array",
          false,
          "up to 50 links, each {title, url} (a bare http(s) URL string is accepted too)",
          {{"title", "string", false, "what the link shows (up to 200 bytes)"},
           {"url", "string", true, "an http(s) URL"}},
          "object"};
}

Result<NotesAndLinks> NotesAndLinksFields(const Json& body, std::string_view what) {
  NotesAndLinks out;
  const std::string prefix(what);
  if (auto it = body.find("notes"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument(prefix + " field 'notes' must be a string");
    out.notes = it->get<std::string>();
    if (out.notes.size() > kMaxNotesBytes)
      return InvalidArgument(prefix + " notes are " + std::to_string(out.notes.size()) +
                             " bytes; at most " + std::to_string(kMaxNotesBytes) + " are allowed");
    if (out.notes.find('\0') != std::string::npos)
      return InvalidArgument(prefix + " notes must not contain NUL characters");
  }
  if (auto it = body.find("links"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument(prefix + " field 'links' must be a list");
    if (it->size() > kMaxLinks)
      return InvalidArgument(prefix + " has " + std::to_string(it->size()) + " links; at most " +
                             std::to_string(kMaxLinks) + " are allowed");
    Json links = Json::array();
    for (size_t i = 0; i < it->size(); ++i) {
      auto link = ReadLink((*it)[i], "links[" + std::to_string(i) + "]");
      if (!link.ok()) return link.status();
      links.push_back(std::move(*link));
    }
    out.links_json = DumpJson(links);
  }
  return out;
}

Json LinksOut(const std::string& links_json) {
  Json links = Json::parse(links_json, nullptr, false);
  return links.is_array() ? links : Json::array();
}

}  // namespace reprise
