#include "tests/support/http_client.h"

#include <httplib.h>

#include <algorithm>

namespace reprise::testing {

struct HttpClient::Impl {
  httplib::Client client;
  Impl(const std::string& host, int port) : client(host, port) {
    client.set_connection_timeout(5);
    client.set_read_timeout(60);
    client.set_write_timeout(60);
  }
};

HttpClient::HttpClient(std::string host, int port)
    : impl_(std::make_unique<Impl>(host, port)) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

namespace {
HttpResult Convert(const httplib::Result& r) {
  HttpResult out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) {
    std::string key = k;
    std::transform(key.begin(), key.end(), key.begin(), ::tolower);
    out.headers[key] = v;
  }
  return out;
}
}  // namespace

HttpResult HttpClient::Get(const std::string& path,
                           const std::map<std::string, std::string>& headers) {
  httplib::Headers h(headers.begin(), headers.end());
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  return Convert(impl_->client.Get(path, h));
}

HttpResult HttpClient::Send(const std::string& method, const std::string& path,
                            const std::string& body, const std::string& content_type,
                            const std::map<std::string, std::string>& headers) {
  httplib::Headers h(headers.begin(), headers.end());
  if (!token_.empty()) h.emplace("Authorization", "Bearer " + token_);
  if (method == "PUT") return Convert(impl_->client.Put(path, h, body, content_type));
  if (method == "POST") return Convert(impl_->client.Post(path, h, body, content_type));
  if (method == "PATCH") return Convert(impl_->client.Patch(path, h, body, content_type));
  if (method == "DELETE") return Convert(impl_->client.Delete(path, h, body, content_type));
  return {};
}

}  // namespace reprise::testing
