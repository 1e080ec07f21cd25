// SqlStore, deployment aggregate: the lease methods (deployment_store.h),
// each one write (or read) transaction around the common-SQL queries of
// sql_leases.cpp.
#include "server/store/sql_leases.h"
#include "server/store/sql_store_internal.h"

namespace reprise {

Result<std::vector<int64_t>> SqlStore::ClaimDeployments(const std::vector<int64_t>& ids,
                                                        const std::string& owner, int64_t now,
                                                        int64_t lease_until) {
  if (ids.empty()) return std::vector<int64_t>{};
  return WriteValue("claim deployments", std::vector<int64_t>{}, [&](std::vector<int64_t>& out) {
    out = sql_leases::Claim(*db_, ids, owner, now, lease_until);
    return Status::Ok();
  });
}

Result<std::vector<int64_t>> SqlStore::RenewDeploymentLeases(const std::vector<int64_t>& ids,
                                                             const std::string& owner,
                                                             int64_t lease_until) {
  if (ids.empty()) return std::vector<int64_t>{};
  return WriteValue("renew deployment leases", std::vector<int64_t>{},
                    [&](std::vector<int64_t>& out) {
                      out = sql_leases::Renew(*db_, ids, owner, lease_until);
                      return Status::Ok();
                    });
}

Status SqlStore::ReleaseDeploymentLeases(const std::vector<int64_t>& ids,
                                         const std::string& owner) {
  if (ids.empty()) return Status::Ok();
  return Write("release deployment leases", [&] {
    sql_leases::Release(*db_, ids, owner);
    return Status::Ok();
  });
}

Result<std::vector<OrphanedDeployment>> SqlStore::InterruptOrphaned(
    const std::string& owner, int64_t now, const std::vector<int64_t>& running_here,
    const std::string& error, OrphanScope scope) {
  return WriteValue("interrupt orphaned deployments", std::vector<OrphanedDeployment>{},
                    [&](std::vector<OrphanedDeployment>& out) {
                      out = sql_leases::InterruptOrphaned(*db_, owner, now, running_here, error,
                                                          scope);
                      return Status::Ok();
                    });
}

Result<bool> SqlStore::TryTakeLease(const std::string& name, const std::string& owner, int64_t now,
                                    int64_t until) {
  return WriteValue("take lease " + name, false, [&](bool& mine) {
    mine = sql_leases::TryTake(*db_, name, owner, now, until);
    return Status::Ok();
  });
}

Result<std::vector<LeaseRecord>> SqlStore::LiveLeases(const std::string& prefix, int64_t now) {
  std::vector<LeaseRecord> out;
  Status st = Read("live leases", [&] { out = sql_leases::Live(*db_, prefix, now); });
  if (!st.ok()) return st;
  return out;
}

Result<LeaseRecord> SqlStore::GetDeploymentLease(int64_t id) {
  std::optional<LeaseRecord> out;
  Status st = Read("deployment lease", [&] { out = sql_leases::OfDeployment(*db_, id); });
  if (!st.ok()) return st;
  if (!out) return NotFound("deployment " + std::to_string(id) + " not found");
  return *out;
}

}  // namespace reprise
