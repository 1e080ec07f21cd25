// The webhook URL guard: URL form, address classification, resolution.
#include "server/webhooks/url_guard.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cctype>
#include <cstring>
#include <vector>

namespace reprise {
namespace {

constexpr size_t kMaxUrlLength = 2048;

bool InV4(uint32_t addr, uint32_t net, int bits) {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (addr & mask) == (net & mask);
}

constexpr uint32_t V4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

std::optional<std::string> ClassifyV4(uint32_t a, bool allow_private) {
  if (a == V4(169, 254, 169, 254) || a == V4(100, 100, 100, 200)) return "a cloud metadata address";
  struct Range {
    uint32_t net;
    int bits;
    const char* why;
    bool private_kind;  // allowed with --webhook-allow-private
  };
  static const Range kRanges[] = {
      {V4(0, 0, 0, 0), 8, "an unspecified (\"this network\") address", true},
      {V4(127, 0, 0, 0), 8, "a loopback address", true},
      {V4(10, 0, 0, 0), 8, "a private address", true},
      {V4(172, 16, 0, 0), 12, "a private address", true},
      {V4(192, 168, 0, 0), 16, "a private address", true},
      {V4(100, 64, 0, 0), 10, "a shared (CGNAT) address", true},
      {V4(169, 254, 0, 0), 16, "a link-local address", true},
      {V4(192, 0, 0, 0), 24, "a reserved (IETF protocol) address", true},
      {V4(192, 0, 2, 0), 24, "a documentation address", true},
      {V4(198, 51, 100, 0), 24, "a documentation address", true},
      {V4(203, 0, 113, 0), 24, "a documentation address", true},
      {V4(198, 18, 0, 0), 15, "a benchmarking address", true},
      {V4(255, 255, 255, 255), 32, "the broadcast address", false},
      {V4(224, 0, 0, 0), 4, "a multicast address", false},
      {V4(240, 0, 0, 0), 4, "a reserved address", false},
  };
  for (const auto& r : kRanges) {
    if (!InV4(a, r.net, r.bits)) continue;
    if (allow_private && r.private_kind) return std::nullopt;
    return std::string(r.why);
  }
  return std::nullopt;
}

std::optional<std::string> ClassifyV6(const std::array<uint8_t, 16>& b, bool allow_private) {
  auto v4_at = [&](int i) {
    return (uint32_t(b[i]) << 24) | (uint32_t(b[i + 1]) << 16) | (uint32_t(b[i + 2]) << 8) |
           uint32_t(b[i + 3]);
  };
  auto zeros = [&](int from, int to) {
    for (int i = from; i < to; ++i)
      if (b[i] != 0) return false;
    return true;
  };
  // fd00:ec2::254: the EC2 metadata service over IPv6.
  static const std::array<uint8_t, 16> kEc2 = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                               0,    0, 0,    0,    0, 0, 0x02, 0x54};
  if (b == kEc2) return "a cloud metadata address";
  if (zeros(0, 15) && b[15] == 0)
    return allow_private ? std::nullopt : std::optional<std::string>("an unspecified address");
  if (zeros(0, 15) && b[15] == 1)
    return allow_private ? std::nullopt : std::optional<std::string>("a loopback address");
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64):
  // judged by the IPv4 address they carry.
  if (zeros(0, 10) && b[10] == 0xff && b[11] == 0xff) return ClassifyV4(v4_at(12), allow_private);
  if (zeros(0, 12)) return ClassifyV4(v4_at(12), allow_private);
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zeros(4, 12))
    return ClassifyV4(v4_at(12), allow_private);
  if (b[0] == 0xff) return "a multicast address";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
    return allow_private ? std::nullopt : std::optional<std::string>("a link-local address");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
    return allow_private ? std::nullopt : std::optional<std::string>("a site-local address");
  if ((b[0] & 0xfe) == 0xfc)
    return allow_private ? std::nullopt
                         : std::optional<std::string>("a private (unique local) address");
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return allow_private ? std::nullopt : std::optional<std::string>("a documentation address");
  // 2002::/16 (6to4) embeds an IPv4 address in bytes 2..5.
  if (b[0] == 0x20 && b[1] == 0x02) return ClassifyV4(v4_at(2), allow_private);
  return std::nullopt;
}

bool ValidHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

}  // namespace

std::optional<std::string> RefusedAddressReason(std::string_view address, bool allow_private) {
  std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1)
    return ClassifyV4(ntohl(v4.s_addr), allow_private);
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), v6.s6_addr, 16);
    return ClassifyV6(bytes, allow_private);
  }
  return "not an IP address";
}

Result<WebhookUrl> ParseWebhookUrl(std::string_view url) {
  if (url.empty()) return InvalidArgument("field 'url' is required");
  if (url.size() > kMaxUrlLength)
    return InvalidArgument("field 'url' is longer than " + std::to_string(kMaxUrlLength) +
                           " characters");
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return InvalidArgument("field 'url' contains a space, a control or a non-ASCII character");
  WebhookUrl out;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos)
    return InvalidArgument("field 'url' must start with http:// or https://");
  std::string scheme(url.substr(0, colon));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https")
    return InvalidArgument("field 'url': scheme '" + scheme + "' is not allowed (http or https)");
  out.scheme = scheme;
  std::string_view rest = url.substr(colon + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (tail.find('#') != std::string_view::npos)
    return InvalidArgument("field 'url' must not have a fragment (#...)");
  if (authority.find('@') != std::string_view::npos)
    return InvalidArgument(
        "field 'url' must not carry credentials (user:password@); use the "
        "webhook's secret to authenticate deliveries");
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return InvalidArgument("field 'url' has an unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("field 'url' has a malformed host");
      port = after.substr(1);
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1)
      return InvalidArgument("field 'url' has a malformed IPv6 address");
  } else {
    size_t c = authority.rfind(':');
    if (c != std::string_view::npos) {
      host = authority.substr(0, c);
      port = authority.substr(c + 1);
    }
    for (char ch : host)
      if (!ValidHostChar(ch))
        return InvalidArgument("field 'url' has a host with a character that is not allowed");
  }
  if (host.empty()) return InvalidArgument("field 'url' has no host");
  out.host = std::string(host);
  out.port = scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    if (port.size() > 5) return InvalidArgument("field 'url' has a port out of range");
    int p = 0;
    for (char ch : port) {
      if (ch < '0' || ch > '9')
        return InvalidArgument("field 'url' has a port that is not a number");
      p = p * 10 + (ch - '0');
    }
    if (p < 1 || p > 65535) return InvalidArgument("field 'url' has a port out of range");
    out.port = p;
  }
  out.target = tail.empty() ? "/" : std::string(tail);
  if (out.target.front() == '?') out.target = "/" + out.target;
  return out;
}

Result<std::string> ResolveWebhookHost(const std::string& host, bool allow_private) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr)
    return Unavailable("host '" + host + "' does not resolve: " + gai_strerror(rc));
  std::vector<std::string> addresses;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    const void* src =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
        inet_ntop(a->ai_family, src, text, sizeof text) != nullptr)
      addresses.emplace_back(text);
  }
  freeaddrinfo(found);
  if (addresses.empty()) return Unavailable("host '" + host + "' has no IP address");
  // Every address is checked: a name must not smuggle a private address in
  // beside a public one.
  for (const auto& a : addresses)
    if (auto why = RefusedAddressReason(a, allow_private))
      return InvalidArgument("host '" + host + "' resolves to " + a + ", " + *why +
                             " (refused; the server allows it only with "
                             "--webhook-allow-private)");
  return addresses.front();
}

}  // namespace reprise
