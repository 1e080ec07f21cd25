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

#include <memory>
#include <string>

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

}  // namespace reprise
