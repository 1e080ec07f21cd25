#include "tests/support/test_server.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace reprise::testing {

TestServer::TestServer(ServerOptions options) : options_(std::move(options)) {
  temp_ = std::make_unique<TempDir>();
  data_dir_ = temp_->path() / "data";
  options_.data_dir = data_dir_;
  options_.http_host = "127.0.0.1";
  options_.http_port = 0;
  options_.agent_port = 0;
  options_.agent_host = "127.0.0.1";
  options_.agent_tls = false;
  options_.fsync = false;
  options_.admin_token = kAdminToken;
  options_.quiet = true;
  app_ = std::make_unique<ServerApp>(options_);
  Status st = app_->Start();
  if (!st.ok()) throw std::runtime_error("test server: " + st.ToString());
}

TestServer::~TestServer() { Stop(); }

HttpClient TestServer::Admin() const {
  HttpClient c("127.0.0.1", port());
  c.set_token(kAdminToken);
  return c;
}

HttpClient TestServer::Anonymous() const { return HttpClient("127.0.0.1", port()); }

HttpClient TestServer::As(const std::string& token) const {
  HttpClient c("127.0.0.1", port());
  c.set_token(token);
  return c;
}

std::string TestServer::CreateUser(const std::string& name, const std::string& role) {
  auto admin = Admin();
  auto created = admin.Post("/api/v1/users", nlohmann::json{{"name", name}, {"role", role}}.dump());
  if (created.status != 201) throw std::runtime_error("create user: " + created.body);
  auto token = admin.Post("/api/v1/users/" + name + "/tokens", "{}");
  if (token.status != 201) throw std::runtime_error("create token: " + token.body);
  return nlohmann::json::parse(token.body)["token"].get<std::string>();
}

void TestServer::Restart() {
  Stop();
  Start();
}

void TestServer::Stop() {
  if (!app_) return;
  app_->Stop();
  app_.reset();
}

void TestServer::Start() {
  app_ = std::make_unique<ServerApp>(options_);
  Status st = app_->Start();
  if (!st.ok()) throw std::runtime_error("test server start: " + st.ToString());
}

}  // namespace reprise::testing
