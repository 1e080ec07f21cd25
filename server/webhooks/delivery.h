// One webhook delivery attempt over HTTP(S): checks the URL and the address
// its host resolves to (url_guard.h), then POSTs to exactly that address
// (no second resolution), with timeouts and without following redirects.
// cpp-httplib stays inside delivery.cpp.
// Thread-safety: SendDelivery is thread-safe (one client per call).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace reprise {

struct DeliveryRequest {
  std::string url;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
  bool allow_private = false;
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{10};
};

struct DeliveryResult {
  int status_code = 0;  // 0: no HTTP answer
  std::string error;    // why there was no answer (refused address, connection error)
};

DeliveryResult SendDelivery(const DeliveryRequest& request);

}  // namespace reprise
