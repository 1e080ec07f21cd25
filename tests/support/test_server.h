// TestServer: a real ServerApp on 127.0.0.1, port 0, with its SQLite file in a
// temporary directory and a known admin token. Hermetic; one per test.
#pragma once

#include <memory>
#include <string>

#include "server/app/server_app.h"
#include "tests/support/http_client.h"
#include "tests/temp_dir.h"

namespace reprise::testing {

inline constexpr const char* kAdminToken = "test-admin-token-0123456789abcdef";

class TestServer {
 public:
  explicit TestServer(ServerOptions options = {});
  ~TestServer();

  int port() const { return app_->http_port(); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  // A client authenticated as the bootstrap admin.
  HttpClient Admin() const;
  HttpClient Anonymous() const;
  HttpClient As(const std::string& token) const;
  // Creates a user with that role and returns a token for it.
  std::string CreateUser(const std::string& name, const std::string& role);
  std::vector<ServerApp::RouteInfo> Routes() const { return app_->Routes(); }
  // Stops and starts the server on the same data directory (a restart).
  void Restart();
  void Stop();
  void Start();
  int agent_port() const { return app_->agent_port(); }

 private:
  ServerOptions options_;
  std::unique_ptr<TempDir> temp_;
  std::filesystem::path data_dir_;
  std::unique_ptr<ServerApp> app_;
};

}  // namespace reprise::testing
