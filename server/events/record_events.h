// Events about store records shared by several publishers: a rollback
// record's status change (the engine runs records, server/rollback/ moves
// them otherwise). Pure functions; thread-safe.
#pragma once

#include <string>

#include "server/events/event_bus.h"
#include "server/store/rollback_record_store.h"

namespace reprise {

// "rollback-record.<status>" about `r`, whose status is now `status`; a new
// draft is rollback-record.created, one pending approval .submitted.
inline Event RollbackRecordEvent(const RollbackRecord& r, const std::string& status,
                                 const std::string& actor, const std::string& reason = {}) {
  Event e;
  e.type = "rollback-record." + (status == "draft"              ? std::string("created")
                                 : status == "pending-approval" ? std::string("submitted")
                                                                : status);
  e.actor = actor;
  e.deployment_id = r.execution_deployment_id != 0 ? r.execution_deployment_id : r.deployment_id;
  e.application = r.application;
  e.stage = r.stage;
  e.release = r.release;
  e.build = r.build;
  e.status = status;
  e.record_id = r.id;
  e.reason = reason;
  return e;
}

}  // namespace reprise
