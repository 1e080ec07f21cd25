// The webhook URL guard against server-side request forgery: a webhook URL
// must be http(s), carry no credentials, and its host must resolve only to
// public addresses — not loopback, link-local, private (RFC 1918, fc00::/7),
// CGNAT (100.64/10), unspecified, multicast, broadcast, documentation or
// reserved ranges, the IPv4-mapped / -compatible / NAT64 IPv6 forms of
// those, nor cloud metadata addresses — unless private addresses are allowed
// (--webhook-allow-private). The check runs when a webhook is saved and
// again before every connection, which then goes to the address checked.
//
// Pure functions except ResolveWebhookHost (getaddrinfo); all thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace reprise {

struct WebhookUrl {
  std::string scheme;  // http | https
  std::string host;    // without brackets for an IPv6 literal
  int port = 0;        // explicit or the scheme's default
  std::string target;  // path and query, "/" at least
};

// Parses and checks the form of a webhook URL; kInvalidArgument saying
// what is wrong (scheme, credentials, host, port, fragment, length).
Result<WebhookUrl> ParseWebhookUrl(std::string_view url);

// Why `address` (a numeric IPv4 or IPv6 address) must not be connected to
// ("a loopback address", "a private address", ...); nullopt when it is a
// public address. A metadata address is refused even when private ones are
// allowed. Malformed input is refused too.
std::optional<std::string> RefusedAddressReason(std::string_view address, bool allow_private);

// Resolves `host` (a name or a literal) and checks every address it
// resolves to; returns the first one, to connect to. kInvalidArgument naming
// the host and the reason when one is refused; kUnavailable when it does
// not resolve.
Result<std::string> ResolveWebhookHost(const std::string& host, bool allow_private);

}  // namespace reprise
