#include "agents/agent/http_check.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>

#include "common/enum_names.h"

namespace reprise {
namespace {

constexpr int kDefaultTimeoutSeconds = 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Status BadUrl(std::string_view url, std::string_view why) {
  return InvalidArgument("http-check: cannot check '" + std::string(url) +
                         "': " + std::string(why));
}

// What went wrong with a request that got no response, in words; the
// timeouts are said below with their length.
constexpr EnumName<httplib::Error> kErrorTexts[] = {
    {httplib::Error::Connection, "cannot connect"},
    {httplib::Error::Write, "cannot send the request"},
    {httplib::Error::Canceled, "cancelled"},
    {httplib::Error::SSLConnection, "TLS handshake failed"},
    {httplib::Error::SSLLoadingCerts, "cannot load the CA certificates"},
    {httplib::Error::SSLServerVerification, "the server's TLS certificate is not trusted"},
    {httplib::Error::Compression, "cannot decompress the response"},
};

std::string ErrorText(httplib::Error e, int timeout_seconds) {
  const std::string t = std::to_string(timeout_seconds) + " s";
  if (e == httplib::Error::ConnectionTimeout) return "no connection within " + t;
  if (e == httplib::Error::Read) {
    return "no complete response within " + t + " (or the connection was closed)";
  }
  const std::string_view text = NameOf(kErrorTexts, e, "");
  if (!text.empty()) return std::string(text);
  return "request failed (" + httplib::to_string(e) + ")";
}

OperationOutcome Stopped(const CancelToken& cancel, const std::string& url, int attempt) {
  const std::string where = "http-check: GET " + url + " stopped after " + std::to_string(attempt) +
                            " attempt" + (attempt == 1 ? "" : "s");
  if (cancel.DeadlineExceeded())
    return OperationOutcome::Failed(where + ": step deadline exceeded");
  return OperationOutcome::Error(Cancelled(where + ": cancelled"));
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) return BadUrl(url, "it contains spaces or control characters");
  }
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return BadUrl(url, "not an absolute URL (expected http://host[:port]/path or https://...)");
  }
  HttpUrl u;
  u.scheme = Lower(url.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") {
    return BadUrl(url, "only http:// and https:// URLs can be checked");
  }
  std::string_view rest = url.substr(sep + 3);
  const auto auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view tail = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    u.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "unterminated [IPv6 address]");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadUrl(url, "unexpected text after the [IPv6 address]");
      port_text = after.substr(1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    for (char c : u.host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return BadUrl(url, "malformed [IPv6 address]");
      }
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return BadUrl(url, "empty port");
    }
    if (u.host.find_first_of("[]\\") != std::string::npos) return BadUrl(url, "malformed host");
  }
  if (u.host.empty()) return BadUrl(url, "no host");
  if (port_text.empty()) {
    u.port = u.scheme == "https" ? 443 : 80;
  } else {
    if (port_text.size() > 5) return BadUrl(url, "invalid port");
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return BadUrl(url, "invalid port");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return BadUrl(url, "invalid port");
    u.port = port;
  }
  if (auto hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  u.path = std::string(tail);
  if (u.path.empty() || u.path.front() != '/') u.path.insert(0, "/");
  return u;
}

OperationOutcome RunHttpCheck(const HttpCheckOp& op, const RunnerLog& log,
                              const CancelToken& cancel) {
  auto parsed = ParseHttpUrl(op.url);
  if (!parsed.ok()) return OperationOutcome::Failed(parsed.status().message());
  const HttpUrl& u = *parsed;
  const int timeout = op.timeout_seconds > 0 ? op.timeout_seconds : kDefaultTimeoutSeconds;
  const int attempts = std::max(op.retries, 0) + 1;
  const auto delay = std::chrono::milliseconds(int64_t{std::max(op.delay_seconds, 0)} * 1000);
  const std::string expected = std::to_string(op.expect_status);

  httplib::Headers headers;
  if (u.host.find(':') != std::string::npos) {  // IPv6: httplib would omit the brackets
    const bool default_port = u.port == (u.scheme == "https" ? 443 : 80);
    headers.emplace("Host",
                    "[" + u.host + "]" + (default_port ? "" : ":" + std::to_string(u.port)));
  }

  std::string last_failure;  // what the last attempt got
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (cancel.IsCancelled()) return Stopped(cancel, op.url, attempt - 1);
    std::unique_ptr<httplib::ClientImpl> client;
    if (u.scheme == "https") {
      client = std::make_unique<httplib::SSLClient>(u.host, u.port);
    } else {
      client = std::make_unique<httplib::ClientImpl>(u.host, u.port);
    }
    client->set_connection_timeout(timeout, 0);
    client->set_read_timeout(timeout, 0);
    client->set_write_timeout(timeout, 0);
    client->set_keep_alive(false);
    client->set_follow_location(false);
    if (!u.userinfo.empty()) {
      const auto colon = u.userinfo.find(':');
      client->set_basic_auth(u.userinfo.substr(0, colon),
                             colon == std::string::npos ? "" : u.userinfo.substr(colon + 1));
    }
    // Stops reading a long body once cancelled; the timeouts bound the rest.
    auto progress = [&cancel](uint64_t, uint64_t) { return !cancel.IsCancelled(); };
    httplib::Result res = client->Get(u.path, headers, progress);

    const std::string prefix =
        "attempt " + std::to_string(attempt) + "/" + std::to_string(attempts) + ": GET " + op.url;
    if (res) {
      const int status = res->status;
      if (status == op.expect_status) {
        log(LogLevel::kInfo, prefix + " -> " + std::to_string(status));
        return OperationOutcome::Succeeded();
      }
      log(LogLevel::kInfo, prefix + " -> " + std::to_string(status) + ", expected " + expected);
      last_failure = "answered " + std::to_string(status);
    } else {
      if (cancel.IsCancelled()) return Stopped(cancel, op.url, attempt);
      const std::string why = ErrorText(res.error(), timeout);
      log(LogLevel::kInfo, prefix + ": " + why);
      last_failure = why;
    }
    if (attempt < attempts && delay.count() > 0 && !cancel.WaitFor(delay)) {
      return Stopped(cancel, op.url, attempt);
    }
  }
  const std::string times = std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s");
  if (last_failure.rfind("answered ", 0) == 0) {
    return OperationOutcome::Failed("http-check: " + op.url + " " + last_failure + " after " +
                                    times + ", expected " + expected);
  }
  return OperationOutcome::Failed("http-check: GET " + op.url + ": " + last_failure + " (after " +
                                  times + ")");
}

}  // namespace reprise
