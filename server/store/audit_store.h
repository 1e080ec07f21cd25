// AuditStore: the audit log, and Atomically(), which records a change of
// any aggregate together with its audit entry.
// Thread-safety: implementations are safe to call from any thread (see
// store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/page.h"

namespace reprise {

struct AuditRecord {
  int64_t id = 0;
  int64_t at = 0;
  std::string actor;
  std::string action;   // e.g. "application.put"
  std::string subject;  // e.g. "shop"
  std::string summary;
};

struct AuditFilter {
  std::string action_prefix;
  std::string subject;
  std::string actor = {};
  int64_t from = 0;  // at >= from (0: no bound)
  int64_t to = 0;    // at < to (0: no bound)
};

class AuditStore {
 public:
  virtual ~AuditStore() = default;

  virtual Status AppendAudit(const AuditRecord& entry) = 0;

  // Runs `body` in one IMMEDIATE transaction: the writes it makes through
  // this store from this thread commit together when it returns OK, and none
  // does when it returns an error (or throws). A write inside that fails is
  // undone alone and its error returned to `body`. Other threads' calls wait
  // until it ends, so `body` must not wait for them. Used to record a change
  // together with its audit entry: neither is ever kept without the other.
  [[nodiscard]] virtual Status Atomically(const std::function<Status()>& body) = 0;
  // Newest first.
  virtual Result<std::vector<AuditRecord>> ListAudit(const AuditFilter& filter,
                                                     const Page& page) = 0;
};

}  // namespace reprise
