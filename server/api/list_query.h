// Query parameters and answers shared by list endpoints: comma-separated
// lists, RFC 3339 time bounds, `format=json|csv` and CSV bodies.
// Pure functions; thread-safe. Includes nlohmann/json (through json_io.h):
// include only from server/api/*.cpp.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "server/api/json_io.h"

namespace reprise {

// "a,b,,c" -> {"a", "b", "", "c"}; an empty text is an empty list.
std::vector<std::string> SplitCommaList(const std::string& text);

// Query parameter `name` as unix milliseconds (RFC 3339 with an offset);
// absent or empty: 0. Otherwise kInvalidArgument naming the parameter.
Result<int64_t> TimeQuery(const HttpRequest& req, const char* name);

// A JSON value as plain text: strings as they are, lists joined by spaces,
// null as nothing, anything else as JSON.
std::string CsvValue(const Json& v);

// One CSV field (RFC 4180): quoted when it holds a comma, quote or line
// break; one a spreadsheet would run as a formula (starting with = + - @,
// not a negative number) gets a leading apostrophe.
std::string CsvField(std::string s);

// True for ?format=csv, false for none or json; kInvalidArgument otherwise.
Result<bool> WantsCsv(const HttpRequest& req);

// The documentation of a list that can be exported: limit, offset, the
// list's own `filters`, the time bounds from and to (`moment` says of what:
// "created " makes "created at or after"), and format=json|csv.
std::vector<QueryParam> ExportListQuery(std::vector<QueryParam> filters,
                                        const std::string& moment = "created ");
// Its answer, as the documentation states it.
inline constexpr const char* kExportListAnswer = "{items, limit, offset, next_offset?} (or CSV)";

// A CSV download of `items` (one line each, the `columns` in order; lists
// joined by spaces) named `filename`. Fields that a spreadsheet would run as
// a formula (starting with = + - @) get a leading apostrophe.
HttpResponse CsvResponse(const Json& items, const std::vector<std::string>& columns,
                         const std::string& filename);

}  // namespace reprise
