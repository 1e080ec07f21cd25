// Store: the durable state of a Reprise server, behind an interface so the
// engine and API do not depend on the database: one implementation
// (sql_store.h) runs on SQLite or PostgreSQL.
//
// Records are plain values. JSON-valued fields (variables, specs, manifests,
// execution contexts) are kept as canonical JSON text; the store does not
// interpret them. Times are milliseconds since the Unix epoch, UTC.
//
// Thread-safety: every method is safe to call from any thread; each call is
// atomic (writes: one transaction that excludes every other writer, as
// SQLite's IMMEDIATE does). Atomically() groups several calls, e.g. a change
// and its audit entry, into one transaction.
//
// The interface is split by aggregate (catalog_store.h, deployment_store.h,
// agent_store.h, user_store.h, audit_store.h, stats_store.h, webhook_store.h); Store is all of
// them. A caller that needs one aggregate may take the narrower interface.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "server/store/agent_store.h"
#include "server/store/audit_store.h"
#include "server/store/catalog_store.h"
#include "server/store/deployment_store.h"
#include "server/store/page.h"
#include "server/store/rollback_record_store.h"
#include "server/store/stats_store.h"
#include "server/store/user_store.h"
#include "server/store/webhook_store.h"

namespace reprise {

class Store : public CatalogStore,
              public DeploymentStore,
              public AgentStore,
              public UserStore,
              public AuditStore,
              public RollbackRecordStore,
              public StatsStore,
              public WebhookStore {
 public:
  ~Store() override = default;

  // Schema version after migrations.
  virtual int64_t SchemaVersion() = 0;
  // "ok" when the database answers.
  virtual Status Ping() = 0;
};

struct SqliteStoreOptions {
  std::string path;  // the database file; created when missing
  int busy_timeout_ms = 5000;
};

// Opens (creating if needed) and migrates the SQLite database.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

struct PostgresStoreOptions {
  std::string url;  // postgresql://… (libpq's URI; its password is never logged)
  // How long a write waits for another server's write transaction.
  int busy_timeout_ms = 5000;
};

// Connects to the PostgreSQL database and migrates it (once, whichever of
// several servers starting together gets there first).
Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options);

// Where a server's store is: "postgresql://…" (or "postgres://…"), or
// "sqlite:DIR" for the SQLite file DIR/reprise.db.
bool IsPostgresUrl(std::string_view location);
// kInvalidArgument naming the accepted forms when `location` is neither.
Status CheckStoreLocation(std::string_view location);
// "sqlite:DIR" for the store inside the data directory `dir`.
std::string SqliteStoreLocation(const std::filesystem::path& dir);
// `location` with a URL's password replaced by "***", for messages.
std::string RedactStoreLocation(std::string_view location);
// Opens the store at `location` (see above).
Result<std::unique_ptr<Store>> OpenStore(std::string_view location);

}  // namespace reprise
