// One webhook POST through cpp-httplib, pinned to the checked address.
#include "server/webhooks/delivery.h"

#include <fcntl.h>
#include <httplib.h>

#include "server/webhooks/url_guard.h"

namespace reprise {

DeliveryResult SendDelivery(const DeliveryRequest& request) {
  DeliveryResult out;
  auto url = ParseWebhookUrl(request.url);
  if (!url.ok()) {
    out.error = url.status().message();
    return out;
  }
  // Checked again on every connection: the name may resolve elsewhere now.
  auto address = ResolveWebhookHost(url->host, request.allow_private);
  if (!address.ok()) {
    out.error = "not sent: " + address.status().message();
    return out;
  }
  std::string host = url->host.find(':') != std::string::npos ? "[" + url->host + "]" : url->host;
  httplib::Client client(url->scheme + "://" + host + ":" + std::to_string(url->port));
  // Connect to the address checked, not to a second resolution of the name
  // (TLS still verifies the certificate against the name).
  client.set_hostname_addr_map({{url->host, *address}});
  client.set_follow_location(false);
  client.set_connection_timeout(static_cast<time_t>(request.connect_timeout.count()), 0);
  client.set_read_timeout(static_cast<time_t>(request.read_timeout.count()), 0);
  client.set_write_timeout(static_cast<time_t>(request.read_timeout.count()), 0);
  client.set_keep_alive(false);
  // The local agent runs plan commands in child processes: the socket must
  // not leak into them.
  client.set_socket_options([](int sock) { ::fcntl(sock, F_SETFD, FD_CLOEXEC); });
  client.enable_server_certificate_verification(true);
  httplib::Headers headers{{"User-Agent", "Reprise-Webhooks/1"}};
  for (const auto& [name, value] : request.headers) headers.emplace(name, value);
  auto res = client.Post(url->target, headers, request.body, "application/json");
  if (!res) {
    out.error =
        "no answer from " + url->host + " (" + *address + "): " + httplib::to_string(res.error());
    return out;
  }
  out.status_code = res->status;
  return out;
}

}  // namespace reprise
