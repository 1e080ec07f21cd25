#include <doctest/doctest.h>

#include "server/http/http_types.h"

namespace reprise {

TEST_CASE("route patterns match whole segments and decode parameters") {
  std::map<std::string, std::string> p;
  CHECK(MatchRoute("/api/v1/applications/{app}", "/api/v1/applications/shop", p));
  CHECK(p["app"] == "shop");
  CHECK(MatchRoute("/a/{x}/b/{y}", "/a/1%2E0/b/2", p));
  CHECK(p["x"] == "1.0");
  CHECK(p["y"] == "2");
  CHECK_FALSE(MatchRoute("/a/{x}", "/a/", p));
  CHECK_FALSE(MatchRoute("/a/{x}", "/a/b/c", p));
  CHECK_FALSE(MatchRoute("/a/{x}", "/a/b%2Fc", p));  // an encoded '/' is not a segment
  CHECK_FALSE(MatchRoute("/a/{x}", "/a/%zz", p));
  CHECK_FALSE(MatchRoute("/a/b", "/a/c", p));
}

TEST_CASE("status codes map to HTTP statuses") {
  CHECK(HttpStatusFor(Code::kInvalidArgument) == 400);
  CHECK(HttpStatusFor(Code::kUnauthenticated) == 401);
  CHECK(HttpStatusFor(Code::kPermissionDenied) == 403);
  CHECK(HttpStatusFor(Code::kNotFound) == 404);
  CHECK(HttpStatusFor(Code::kConflict) == 409);
  CHECK(HttpStatusFor(Code::kTooLarge) == 413);
  CHECK(HttpStatusFor(Code::kUnsafe) == 422);
}

}  // namespace reprise
