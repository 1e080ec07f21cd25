// A small blocking HTTP client for tests (cpp-httplib behind a thin wrapper,
// so test files do not include httplib). Not thread-safe; one per thread.
#pragma once

#include <map>
#include <memory>
#include <string>

namespace reprise::testing {

struct HttpResult {
  int status = 0;  // 0: the connection failed
  std::string body;
  std::map<std::string, std::string> headers;  // keys lower-case
  std::string error;  // why the request failed when status is 0
};

class HttpClient {
 public:
  HttpClient(std::string host, int port);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sent as "Authorization: Bearer <token>" unless empty.
  void set_token(std::string token) { token_ = std::move(token); }

  HttpResult Get(const std::string& path, const std::map<std::string, std::string>& headers = {});
  HttpResult Send(const std::string& method, const std::string& path, const std::string& body,
                  const std::string& content_type = "application/json",
                  const std::map<std::string, std::string>& headers = {});
  HttpResult Put(const std::string& path, const std::string& body,
                 const std::string& content_type = "application/json") {
    return Send("PUT", path, body, content_type);
  }
  HttpResult Post(const std::string& path, const std::string& body) {
    return Send("POST", path, body);
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string token_;
};

}  // namespace reprise::testing
