#include "server/http/http_types.h"

#include <nlohmann/json.hpp>

#include "common/crypto.h"

namespace reprise {

std::string HttpRequest::Param(const std::string& name) const {
  auto it = path_params.find(name);
  return it == path_params.end() ? std::string() : it->second;
}

std::optional<std::string> HttpRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int http_status, std::string_view code, std::string_view message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  // Never throws on invalid UTF-8 in a message: such bytes become U+FFFD.
  return Json(http_status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

HttpResponse HttpResponse::Error(const Status& status) {
  return Error(HttpStatusFor(status.code()), CodeName(status.code()), status.message());
}

int HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kConflict:
      return 409;
    case Code::kTooLarge:
      return 413;
    case Code::kUnsafe:
      return 422;
    case Code::kFailedPrecondition:
      return 409;
    case Code::kCancelled:
      return 409;
    case Code::kTimeout:
      return 504;
    case Code::kUnavailable:
      return 503;
    case Code::kIo:
      return 500;
    case Code::kInternal:
      return 500;
  }
  return 500;
}

namespace {

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      std::string byte;
      if (i + 2 >= s.size() || !HexDecode(s.substr(i + 1, 2), &byte)) return std::nullopt;
      out += byte;
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(s.substr(start));
      break;
    }
    parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

}  // namespace

bool MatchRoute(const std::string& pattern, const std::string& path,
                std::map<std::string, std::string>& params) {
  auto pp = Split(pattern);
  auto xp = Split(path);
  if (pp.size() != xp.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < pp.size(); ++i) {
    if (pp[i].size() >= 2 && pp[i].front() == '{' && pp[i].back() == '}') {
      auto decoded = PercentDecode(xp[i]);
      if (!decoded || decoded->empty() || decoded->find('/') != std::string::npos) return false;
      found[std::string(pp[i].substr(1, pp[i].size() - 2))] = *decoded;
    } else if (pp[i] != xp[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

namespace {

// Decodes a query component: '+' is a space, %XX a byte.
std::optional<std::string> DecodeQueryPart(std::string_view s) {
  std::string plus(s);
  for (char& c : plus)
    if (c == '+') c = ' ';
  return PercentDecode(plus);
}

}  // namespace

Status ParseRequestTarget(std::string_view target, HttpRequest& req) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.empty() || path.front() != '/')
    return InvalidArgument("the request target must be a path starting with '/'");
  for (std::string_view segment : Split(path)) {
    auto decoded = PercentDecode(segment);
    if (!decoded) return InvalidArgument("path segment is not well percent-encoded");
    if (!IsValidUtf8(segment) || !IsValidUtf8(*decoded))
      return InvalidArgument("path segment is not valid UTF-8");
  }
  req.path = std::string(path);
  req.query.clear();
  if (q == std::string_view::npos) return Status::Ok();
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto name = DecodeQueryPart(pair.substr(0, eq));
    if (!name || !IsValidUtf8(*name) || !IsValidUtf8(pair.substr(0, eq)))
      return InvalidArgument("a query parameter name is not valid UTF-8 or percent-encoding");
    std::string_view raw_value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    auto value = DecodeQueryPart(raw_value);
    if (!value)
      return InvalidArgument("query parameter '" + *name + "' is not well percent-encoded");
    if (!IsValidUtf8(raw_value) || !IsValidUtf8(*value))
      return InvalidArgument("query parameter '" + *name + "' is not valid UTF-8");
    req.query.emplace(std::move(*name), std::move(*value));
  }
  return Status::Ok();
}

}  // namespace reprise
