// SqlStore, audit aggregate: the audit log.
#include "server/store/sql_store_internal.h"

namespace reprise {
namespace {
using Aud = AuditRecord;
constexpr auto ReadAudit =
    ReadFields<&Aud::id, &Aud::at, &Aud::actor, &Aud::action, &Aud::subject, &Aud::summary>;
}  // namespace

Status SqlStore::AppendAudit(const AuditRecord& e) {
  return Execute("append audit",
                 InsertSql("audit_log", {"at", "actor", "action", "subject", "summary"}), e.at,
                 e.actor, e.action, e.subject, e.summary);
}

Result<std::vector<AuditRecord>> SqlStore::ListAudit(const AuditFilter& f, const Page& page) {
  return SelectAll(
      "SELECT id, at, actor, action, subject, summary FROM audit_log "
      "WHERE (?1 = '' OR substr(action, 1, length(?1)) = ?1) AND (?2 = '' OR subject = ?2) "
      "AND (?3 = '' OR actor = ?3) AND (?4 = 0 OR at >= ?4) AND (?5 = 0 OR at < ?5) "
      "ORDER BY id DESC LIMIT ?6 OFFSET ?7",
      ReadAudit, f.action_prefix, f.subject, f.actor, f.from, f.to, ClampLimit(page),
      ClampOffset(page));
}

}  // namespace reprise
