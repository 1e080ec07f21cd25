// Deployment leases and named leases in the common SQL (see sql_leases.h).
// Per-target FIFO across servers is decided here, inside one write
// transaction, from every queued and running deployment's targets: the
// in-memory view of one server cannot see the others' claims.
#include "server/store/sql_leases.h"

#include <algorithm>
#include <set>

namespace reprise::sql_leases {
namespace {

std::vector<std::string> SplitTargets(const std::string& csv) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= csv.size()) {
    size_t comma = csv.find(',', start);
    if (comma == std::string::npos) comma = csv.size();
    if (comma > start) out.push_back(csv.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

struct Active {
  int64_t id = 0;
  std::string status;
  std::string owner;
  int64_t lease_until = 0;
  std::vector<std::string> targets;
};

}  // namespace

std::vector<int64_t> Claim(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner,
                           int64_t now, int64_t lease_until) {
  std::set<int64_t> wanted(ids.begin(), ids.end());
  std::vector<Active> active;
  db.Run(
      "SELECT id, status, owner, lease_until, targets_csv FROM deployments "
      "WHERE status IN ('queued','running') ORDER BY id",
      {}, [&](const SqlRow& row) {
        active.push_back(
            {row.Int64(0), row.Text(1), row.Text(2), row.Int64(3), SplitTargets(row.Text(4))});
      });
  // Targets taken: by running deployments and live claims (any server),
  // then, in id order, by every older queued deployment (FIFO per target).
  std::set<std::string> taken;
  for (const auto& a : active)
    if (a.status == "running" || (!a.owner.empty() && a.lease_until >= now))
      taken.insert(a.targets.begin(), a.targets.end());
  std::vector<int64_t> claimed;
  for (const auto& a : active) {
    if (a.status != "queued") continue;
    bool held = !a.owner.empty() && a.lease_until >= now;
    bool free = std::none_of(a.targets.begin(), a.targets.end(),
                             [&](const std::string& t) { return taken.count(t) > 0; });
    if (!held && free && wanted.count(a.id)) {
      int64_t changed =
          db.Run("UPDATE deployments SET owner=?, lease_until=? WHERE id=? AND status='queued'",
                 {owner, lease_until, a.id}, nullptr);
      if (changed > 0) claimed.push_back(a.id);
    }
    if (!held) taken.insert(a.targets.begin(), a.targets.end());
  }
  return claimed;
}

std::vector<int64_t> Renew(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner,
                           int64_t lease_until) {
  std::vector<int64_t> kept;
  for (int64_t id : ids) {
    int64_t changed = db.Run(
        "UPDATE deployments SET lease_until=? WHERE id=? AND owner=? "
        "AND status IN ('queued','running')",
        {lease_until, id, owner}, nullptr);
    // Not renewed: ended or released here since the caller listed it (still
    // `owner`'s, or nobody's), or taken (another server's name).
    bool mine = changed > 0;
    if (!mine)
      db.Run("SELECT owner FROM deployments WHERE id=?", {id},
             [&](const SqlRow& row) { mine = row.Text(0).empty() || row.Text(0) == owner; });
    if (mine) kept.push_back(id);
  }
  return kept;
}

void Release(SqlDb& db, const std::vector<int64_t>& ids, const std::string& owner) {
  for (int64_t id : ids)
    db.Run("UPDATE deployments SET owner='', lease_until=0 WHERE id=? AND owner=?", {id, owner},
           nullptr);
}

std::vector<OrphanedDeployment> InterruptOrphaned(SqlDb& db, const std::string& owner, int64_t now,
                                                  const std::vector<int64_t>& running_here,
                                                  const std::string& error, OrphanScope scope) {
  std::set<int64_t> here(running_here.begin(), running_here.end());
  // kLapsed: a live lease of this server may be a deployment it started
  // after listing `running_here`; only a lapsed one is surely nobody's.
  const bool with_own = scope == OrphanScope::kLapsedOrOwn;
  const std::string orphaned = with_own ? "(lease_until < ? OR owner = ?)" : "lease_until < ?";
  std::vector<SqlValue> orphaned_params{now};
  if (with_own) orphaned_params.push_back(owner);
  std::vector<OrphanedDeployment> found;
  db.Run(
      "SELECT id, owner FROM deployments WHERE status='running' AND " + orphaned + " ORDER BY id",
      orphaned_params, [&](const SqlRow& row) {
        if (!here.count(row.Int64(0))) found.push_back({row.Int64(0), row.Text(1)});
      });
  std::vector<OrphanedDeployment> out;
  for (const auto& f : found) {
    // The owner becomes the taker: the server that ran it sees, renewing,
    // that it was taken rather than ended.
    std::vector<SqlValue> params{now, error, owner, f.id};
    params.insert(params.end(), orphaned_params.begin(), orphaned_params.end());
    int64_t changed = db.Run(
        "UPDATE deployments SET status='interrupted', finished_at=?, error=?, owner=?, "
        "lease_until=0 WHERE id=? AND status='running' AND " +
            orphaned,
        params, nullptr);
    if (changed > 0) out.push_back(f);
  }
  return out;
}

bool TryTake(SqlDb& db, const std::string& name, const std::string& owner, int64_t now,
             int64_t until) {
  db.Run(
      "INSERT INTO leases (name, owner, lease_until) VALUES (?1, ?2, ?4) "
      "ON CONFLICT (name) DO UPDATE SET owner=?2, lease_until=?4 "
      "WHERE leases.owner=?2 OR leases.lease_until < ?3",
      {name, owner, now, until}, nullptr);
  bool mine = false;
  db.Run("SELECT owner FROM leases WHERE name=?", {name},
         [&](const SqlRow& row) { mine = row.Text(0) == owner; });
  return mine;
}

std::vector<LeaseRecord> Live(SqlDb& db, const std::string& prefix, int64_t now) {
  std::vector<LeaseRecord> out;
  db.Run("SELECT name, owner, lease_until FROM leases WHERE lease_until >= ? ORDER BY name", {now},
         [&](const SqlRow& row) {
           std::string name = row.Text(0);
           if (name.compare(0, prefix.size(), prefix) == 0)
             out.push_back({name, row.Text(1), row.Int64(2)});
         });
  return out;
}

std::optional<LeaseRecord> OfDeployment(SqlDb& db, int64_t id) {
  std::optional<LeaseRecord> out;
  db.Run("SELECT owner, lease_until FROM deployments WHERE id=?", {id}, [&](const SqlRow& row) {
    out = LeaseRecord{std::to_string(id), row.Text(0), row.Int64(1)};
  });
  return out;
}

}  // namespace reprise::sql_leases
