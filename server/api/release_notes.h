// Release notes and links of releases and builds: validation of the request
// fields and their JSON form. Pure functions; thread-safe.
// Includes nlohmann/json (through json_io.h): include only from server/api/*.cpp.
#pragma once

#include <string>

#include "common/status.h"
#include "server/api/json_io.h"

namespace reprise {

inline constexpr size_t kMaxNotesBytes = 65536;
inline constexpr size_t kMaxLinks = 50;
inline constexpr size_t kMaxLinkUrlBytes = 2048;
inline constexpr size_t kMaxLinkTitleBytes = 200;

struct NotesAndLinks {
  std::string notes;              // Markdown as written; rendered by the UI
  std::string links_json = "[]";  // canonical [{"title", "url"}]
};

// Reads "notes" (a string) and "links" (a list of {title?, url} or of URL
// strings) from a request body; absent fields are empty. Refuses, naming the
// field: notes over 64 KiB or with NUL, more than 50 links, a URL that is not
// http(s) with a host, over 2048 bytes or with spaces or control characters,
// a title over 200 bytes or with control characters.
Result<NotesAndLinks> NotesAndLinksFields(const Json& body, std::string_view what);

// The documentation of the "notes" and "links" fields (their item keys are
// checked against LinksFieldDoc()).
BodyField NotesFieldDoc();
BodyField LinksFieldDoc();

// The stored links for a response (an empty list when unreadable).
Json LinksOut(const std::string& links_json);

}  // namespace reprise
