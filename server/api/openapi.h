// The API's OpenAPI 3.1 description, generated from the route table: each
// Route carries its documentation (RouteDoc in server/http/http_types.h), so
// the document cannot drift from what the router serves.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_types.h"

namespace reprise {

// The OpenAPI 3.1 document (JSON text) describing `routes`.
std::string OpenApiDocument(const std::vector<Route>& routes, std::string_view version);

// Appends GET /api/v1/openapi.json (public) to `routes`; it serves the
// document of every route in `routes` at this moment, itself included.
void AddOpenApiRoute(std::vector<Route>& routes, std::string_view version);

}  // namespace reprise
