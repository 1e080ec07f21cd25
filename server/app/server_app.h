// ServerApp: one running Reprise server — store, catalog, HTTP API — built
// from ServerOptions. main.cpp and the integration tests both use it, so what
// the tests start is what users run.
//
// Thread-safety: Start/Stop from one thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agents/deployer/archive.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/catalog/retention.h"

namespace reprise {

struct ServerOptions {
  std::filesystem::path data_dir = "./var";
  // The store: a postgresql:// URL (servers sharing one database), or
  // "sqlite:DIR"; empty: SQLite in DATA/reprise.db.
  std::string store;
  // Where artifact blobs live; empty: DATA/artifacts. Servers sharing one
  // store share this directory too (a filesystem all of them mount).
  std::filesystem::path artifact_dir;
  std::string http_host = "127.0.0.1";
  int http_port = 8080;   // 0: any free port
  int agent_port = 8081;  // 0: any free port; -1: no agent listener
  std::string agent_host = "0.0.0.0";
  bool agent_tls = true;  // plain TCP is accepted only on a loopback agent_host
  bool local_agent = false;
  // Targets of the local agent must lie under this directory; empty:
  // DATA/targets (where the demo's targets are).
  std::filesystem::path local_agent_root;
  bool demo = false;
  std::string admin_token;       // from REPRISE_ADMIN_TOKEN; empty: DATA/admin.token
  std::string admin_password;    // from REPRISE_ADMIN_PASSWORD; empty: DATA/admin.password
  const Clock* clock = nullptr;  // null: the system clock
  int64_t max_json_body = 1 << 20;
  uint64_t max_artifact_bytes = 8ULL << 30;
  ArchiveLimits archive_limits;  // what an uploaded archive may hold (--artifact-*)
  RetentionPolicy retention;     // defaults of POST /admin/retention (--retention-*)
  bool metrics_public = false;   // GET /metrics answers without a token
  // Webhooks may target loopback, private and link-local addresses.
  bool webhook_allow_private = false;
  // Webhook retries: the first wait (doubling), its cap, and when to give up.
  std::chrono::milliseconds webhook_first_retry{30000};
  std::chrono::milliseconds webhook_max_retry{std::chrono::hours(1)};
  std::chrono::milliseconds webhook_give_up_after{std::chrono::hours(24)};
  bool secure_cookies = false;  // the UI is reached over HTTPS (a TLS proxy in front)
  bool quiet = false;           // no start-up banner (tests)
  int engine_workers = 4;
  // Several servers on one store: this server's id (the owner of its
  // leases; shown in logs and /metrics). Empty: the one kept in
  // DATA/server-id, made on first start from the host name and random hex,
  // so a restarted server takes back at once what it left running.
  std::string server_id;
  // How long a server's claim on a deployment holds without renewal
  // (renewed every third of it): another server takes over within about
  // this long after a server dies.
  std::chrono::milliseconds lease{15000};
  bool fsync = true;  // the local agent's extraction (tests may turn it off)
};

// A server id: 1 to 64 of [A-Za-z0-9._-].
bool IsValidServerId(std::string_view id);

struct VerifySummary {
  uint64_t blobs_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<std::string> corrupt;
  std::vector<std::string> unexpected;
  std::vector<std::string> wrong_mode;  // "SHA256 0644": blobs that are not read-only
  std::vector<std::string> missing;     // "app/release/build/name SHA256": records without a blob
  uint64_t records_checked = 0;
  bool ok() const {
    return corrupt.empty() && unexpected.empty() && wrong_mode.empty() && missing.empty();
  }
};
// The artifact directory `options` name (DATA/artifacts unless set).
std::filesystem::path ArtifactDir(const ServerOptions& options);

// Re-hashes every stored artifact blob in the artifact directory and checks
// that every artifact record of the store (when it exists) has its blob;
// changes nothing.
Result<VerifySummary> VerifyArtifacts(const ServerOptions& options);

// reprise-server --migrate-store FROM TO: copies the SQLite store of the
// data directory FROM ("sqlite:DIR") into the empty PostgreSQL database TO,
// holding DIR's lock (no server may run on it meanwhile). Returns a line
// saying what was copied.
Result<std::string> MigrateStore(const std::string& from, const std::string& to);

class ServerApp {
 public:
  explicit ServerApp(ServerOptions options);
  ~ServerApp();

  // Takes DATA/lock first (flock; the pid written into it): a second server
  // on the same data directory fails with "data directory DIR is in use by
  // pid N" before touching anything.
  Status Start();
  void Stop();

  int http_port() const;
  int agent_port() const;
  // What agents pin: the SHA-256 of the server's TLS certificate.
  std::string agent_cert_fingerprint() const;
  struct RouteInfo {
    std::string method;
    std::string pattern;
    int min_role;  // Role as int
    bool public_route;
  };
  // The API's routes, for tests that must cover every endpoint.
  std::vector<RouteInfo> Routes() const;

  // Where the bootstrap admin token was written (empty when from the environment).
  std::filesystem::path admin_token_file() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise
