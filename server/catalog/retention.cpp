#include "server/catalog/retention.h"

#include <algorithm>
#include <compare>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "common/crypto.h"
#include "common/log.h"
#include "planner/app_spec.h"
#include "server/artifacts/blob_store.h"
#include "server/artifacts/file_index.h"

namespace reprise {

namespace {

constexpr int64_t kDayMs = 24LL * 60 * 60 * 1000;
constexpr int64_t kPageSize = 1000;

// Runs in one process never overlap: two runs removing the same blobs would
// report each other's work, and the second would race the first's deletions.
std::mutex g_retention_mu;

struct BuildKey {
  std::string app;
  std::string release;
  int64_t build = 0;
  auto operator<=>(const BuildKey&) const = default;
};

std::string Describe(const BuildKey& k) {
  return k.app + " " + k.release + " build " + std::to_string(k.build);
}

// Reasons a build is protected, whatever the policy says.
using Protection = std::map<BuildKey, std::vector<std::string>>;

template <typename T, typename Fetch>
Result<std::vector<T>> AllPages(Fetch fetch) {
  std::vector<T> out;
  Page page{kPageSize, 0};
  for (;;) {
    Result<std::vector<T>> r = fetch(page);
    if (!r.ok()) return r.status();
    size_t n = r->size();
    for (auto& v : *r) out.push_back(std::move(v));
    if (n < static_cast<size_t>(kPageSize)) return out;
    page.offset += kPageSize;
  }
}

void AddReason(std::vector<std::string>& reasons, std::string reason) {
  if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end())
    reasons.push_back(std::move(reason));
}

// Every stage the application has or had: its current spec's, then those of
// every release snapshot (a stage dropped from the spec can still hold
// targets). An unreadable spec is an error: protection must be complete.
Result<std::vector<std::string>> StagesOf(Store& store, const ApplicationRecord& app) {
  std::vector<std::string> stages;
  std::set<std::string> seen;
  auto add = [&](const std::string& spec_json, const std::string& source) -> Status {
    auto spec = ParseAppSpec(spec_json, source);
    if (!spec.ok())
      return Internal("retention cannot read the stages of " + source + ": " +
                      spec.status().message());
    for (const auto& s : spec->pipeline)
      if (seen.insert(s.stage).second) stages.push_back(s.stage);
    return Status::Ok();
  };
  REPRISE_RETURN_IF_ERROR(add(app.spec_json, "application " + app.name));
  REPRISE_ASSIGN_OR_RETURN(auto releases, AllPages<ReleaseRecord>([&](const Page& page) {
                             return store.ListReleases(app.name, page);
                           }));
  std::set<std::string> snapshots;  // hashes of the snapshots already read
  for (const auto& rel : releases) {
    if (!snapshots.insert(Sha256Hex(rel.snapshot_json)).second) continue;
    REPRISE_RETURN_IF_ERROR(
        add(rel.snapshot_json, "the snapshot of " + app.name + " release " + rel.number));
  }
  return stages;
}

Result<Protection> ComputeProtection(Store& store, int rollback_candidates) {
  Protection p;
  REPRISE_ASSIGN_OR_RETURN(auto apps, AllPages<ApplicationRecord>([&](const Page& page) {
                             return store.ListApplications(page);
                           }));
  for (const auto& app : apps) {
    REPRISE_ASSIGN_OR_RETURN(auto stages, StagesOf(store, app));
    for (const auto& stage : stages) {
      REPRISE_ASSIGN_OR_RETURN(auto current, store.CurrentBuilds(app.name, stage));
      std::set<std::pair<std::string, int64_t>> held;
      for (const auto& c : current) {
        AddReason(p[{app.name, c.release, c.build}],
                  "deployed on " + c.target + " (" + stage + ")");
        held.insert({c.release, c.build});
      }
      if (rollback_candidates <= 0) continue;
      REPRISE_ASSIGN_OR_RETURN(
          auto succeeded,
          store.SucceededBuilds(app.name, stage,
                                rollback_candidates + static_cast<int64_t>(held.size())));
      int n = 0;
      for (const auto& b : succeeded) {
        if (held.count({b.release, b.build})) continue;
        if (++n > rollback_candidates) break;
        AddReason(p[{app.name, b.release, b.build}],
                  "rollback candidate #" + std::to_string(n) + " on " + stage);
      }
    }
  }
  // A deployment still to run needs its build's artifacts.
  DeploymentFilter pending;
  pending.statuses = {"scheduled", "waiting", "queued", "running"};
  REPRISE_ASSIGN_OR_RETURN(auto deployments, AllPages<DeploymentRecord>([&](const Page& page) {
                             return store.ListDeployments(pending, page);
                           }));
  for (const auto& d : deployments)
    AddReason(
        p[{d.application, d.release, d.build}],
        "pending deployment #" + std::to_string(d.id) + " to " + d.stage + " (" + d.status + ")");
  return p;
}

struct Candidate {
  BuildKey key;
  RetentionDecision decision;
};

std::string ShortHash(const std::string& sha) { return sha.substr(0, 12); }

std::string AuditSummary(const RetentionDecision& d) {
  std::string s = "artifact bytes removed, records kept:";
  bool first = true;
  for (const auto& a : d.artifacts) {
    s += (first ? " " : ", ") + a.name + " (" + ShortHash(a.sha256) + ", " +
         std::to_string(a.size) + " bytes, blob " + (a.blob_removed ? "removed" : "kept") + ")";
    first = false;
  }
  s += "; ";
  for (size_t i = 0; i < d.reasons.size(); ++i) s += (i ? "; " : "") + d.reasons[i];
  return s;
}

// Sha256 -> the candidates whose artifacts reference it.
using References = std::map<std::string, std::vector<size_t>>;

// Why a build `b` is kept or deleted under `policy`, before re-checking.
Candidate Decide(const BuildRecord& b, std::vector<ArtifactRecord> artifacts,
                 const Protection& protection, const RetentionPolicy& policy, int64_t rank,
                 int64_t now) {
  const int keep_builds = policy.keep_builds_per_release;
  const int keep_days = policy.keep_days;
  Candidate c;
  c.key = {b.application, b.release, b.number};
  RetentionDecision& d = c.decision;
  d.application = b.application;
  d.release = b.release;
  d.build = b.number;
  d.created_at = b.created_at;
  for (const auto& a : artifacts) {
    d.artifacts.push_back({a.name, a.sha256, a.size, {}, false});
    d.bytes += a.size;
  }
  if (auto it = protection.find(c.key); it != protection.end()) d.reasons = it->second;
  if (keep_builds > 0 && rank < keep_builds)
    d.reasons.push_back("among the newest " + std::to_string(keep_builds) + " of release " +
                        b.release);
  const int64_t age_ms = std::max<int64_t>(0, now - b.created_at);
  if (keep_days > 0 && age_ms < keep_days * kDayMs)
    d.reasons.push_back("younger than " + std::to_string(keep_days) + " days");
  d.keep = !d.reasons.empty();
  if (!d.keep) {
    d.reasons.push_back("not deployed on any target");
    d.reasons.push_back(policy.keep_rollback_candidates > 0
                            ? "not among the last " +
                                  std::to_string(policy.keep_rollback_candidates) +
                                  " rollback candidates of any stage"
                            : "rollback candidates not protected (keep_rollback_candidates 0)");
    d.reasons.push_back(keep_builds > 0 ? "not among the newest " + std::to_string(keep_builds) +
                                              " of release " + b.release
                                        : "no build kept by number (keep_builds 0)");
    d.reasons.push_back(keep_days > 0 ? std::to_string(age_ms / kDayMs) + " days old (keep_days " +
                                            std::to_string(keep_days) + ")"
                                      : "no build kept by age (keep_days 0)");
  }
  return c;
}

// One candidate per build whose artifact bytes are still there, with the
// blobs each references.
Result<std::vector<Candidate>> Candidates(Store& store, const std::vector<BuildRecord>& builds,
                                          const Protection& protection,
                                          const RetentionPolicy& policy, int64_t now,
                                          References& refs) {
  // The rank of each build in its release, newest (highest number) first.
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> numbers;
  for (const auto& b : builds) numbers[{b.application, b.release}].push_back(b.number);
  for (auto& [_, v] : numbers) std::sort(v.rbegin(), v.rend());
  auto rank = [&](const BuildRecord& b) {
    const auto& v = numbers[{b.application, b.release}];
    return static_cast<int64_t>(std::lower_bound(v.begin(), v.end(), b.number, std::greater<>()) -
                                v.begin());
  };

  std::vector<Candidate> candidates;
  for (const auto& b : builds) {
    REPRISE_ASSIGN_OR_RETURN(auto recorded,
                             store.ListArtifacts(b.application, b.release, b.number));
    std::vector<ArtifactRecord> artifacts;  // those whose bytes are still there
    for (auto& a : recorded)
      if (a.blob_removed_at == 0) artifacts.push_back(std::move(a));
    if (artifacts.empty()) continue;
    for (const auto& a : artifacts) {
      auto& r = refs[a.sha256];
      if (r.empty() || r.back() != candidates.size()) r.push_back(candidates.size());
    }
    candidates.push_back(Decide(b, std::move(artifacts), protection, policy, rank(b), now));
  }
  return candidates;
}

// Which blobs only deleted builds reference; and, per deleted artifact, the
// kept builds that share its blob.
std::set<std::string> OnlyDeleted(const References& refs, std::vector<Candidate>& candidates) {
  std::set<std::string> only_deleted;
  for (const auto& [sha, users] : refs) {
    bool any_kept = false;
    for (size_t i : users) any_kept = any_kept || candidates[i].decision.keep;
    if (!any_kept) only_deleted.insert(sha);
  }
  for (auto& c : candidates) {
    if (c.decision.keep) continue;
    for (auto& a : c.decision.artifacts)
      for (size_t i : refs.at(a.sha256))
        if (candidates[i].decision.keep) AddReason(a.blob_shared_with, Describe(candidates[i].key));
  }
  return only_deleted;
}

// Tombstones the artifacts of the builds to delete (the records stay; only
// the bytes go) and lists them in the report.
Status RemoveArtifacts(Store& store, std::vector<Candidate>& candidates, bool dry_run,
                       RetentionReport& report) {
  Status failure;
  if (!dry_run) {
    for (auto& c : candidates) {
      if (c.decision.keep) continue;
      // A deployment requested since protection was read keeps the build,
      // decided in the same transaction as the request
      // (Store::MarkArtifactBlobsRemoved).
      auto marked =
          store.MarkArtifactBlobsRemoved(c.key.app, c.key.release, c.key.build, report.at);
      if (!marked.ok()) {
        failure = marked.status().WithContext("removing the artifacts of " + Describe(c.key));
        break;
      }
      if (!*marked) {
        c.decision.keep = true;
        c.decision.reasons = {"a deployment of it was requested during the run"};
        continue;
      }
      report.deleted.push_back(c.decision);
    }
  } else {
    for (const auto& c : candidates)
      if (!c.decision.keep) report.deleted.push_back(c.decision);
  }
  for (const auto& c : candidates)
    if (c.decision.keep) report.kept.push_back(c.decision);
  return failure;
}

// Removes the blobs no artifact record references (dry run: would
// reference), into `removed`.
Status RemoveBlobs(Store& store, BlobStore& blobs, const std::set<std::string>& only_deleted,
                   bool dry_run, const BlobRemover& remove_blob, RetentionReport& report,
                   std::set<std::string>& removed) {
  auto referenced = store.ReferencedBlobs();
  if (!referenced.ok()) return referenced.status();
  auto listed = blobs.List();
  if (!listed.ok()) return listed.status();
  Status failure;
  std::set<std::string> keep(referenced->begin(), referenced->end());
  if (dry_run)
    for (const auto& sha : only_deleted) keep.erase(sha);
  std::set<std::string> removing;
  for (const auto& sha : *listed)
    if (!keep.count(sha)) removing.insert(sha);
  // Counted before the removals drop the indexes. A cache that cannot be
  // read changes no decision: it is only left uncounted.
  auto file_bytes = FileIndex::BytesOnlyOf(blobs.root(), removing);
  if (file_bytes.ok()) {
    report.file_bytes_freed = *file_bytes;
    report.bytes_freed += *file_bytes;
  } else {
    report.warnings.push_back("could not count the file contents of the removed blobs: " +
                              file_bytes.status().message());
  }
  for (const auto& sha : removing) {
    auto size = blobs.Size(sha);
    if (!dry_run) {
      auto gone = remove_blob(sha);
      if (!gone.ok()) {
        failure = gone.status().WithContext("removing blob " + sha);
        break;
      }
      if (!*gone) continue;  // referenced again, or gone already
    }
    removed.insert(sha);
    report.blobs_removed.push_back(sha);
    if (size.ok()) report.bytes_freed += *size;
  }
  if (!dry_run && !removed.empty()) {
    // An upload that committed the same bytes and recorded them while the
    // blob was being removed leaves a record without bytes: say so.
    auto after = store.ReferencedBlobs();
    if (after.ok()) {
      for (const auto& sha : *after)
        if (removed.count(sha))
          report.warnings.push_back("blob " + sha +
                                    " was removed while an upload recorded it; upload that "
                                    "artifact again");
    } else {
      report.warnings.push_back("could not re-check the removed blobs: " +
                                after.status().message());
    }
  }
  return failure;
}

// One audit entry per deleted build.
void AuditDeleted(Store& store, const Clock& clock, const std::string& actor,
                  RetentionReport& report) {
  for (const auto& d : report.deleted) {
    AuditRecord rec;
    rec.at = ToUnixMillis(clock.Now());
    rec.actor = actor;
    rec.action = "artifact.retention";
    rec.subject = d.application + "/" + d.release + "/" + std::to_string(d.build);
    rec.summary = AuditSummary(d);
    Status st = store.AppendAudit(rec);
    if (!st.ok()) {
      // The artifacts are gone already: the caller is told the entry is missing.
      log::Error("retention.audit-lost", {{"subject", rec.subject}, {"error", st.ToString()}});
      report.warnings.push_back("the audit entry of " + rec.subject +
                                " could not be written: " + st.message());
    }
  }
}

}  // namespace

Status ValidateRetentionPolicy(const RetentionPolicy& policy) {
  if (policy.keep_builds_per_release < 0 || policy.keep_builds_per_release > 1000000)
    return InvalidArgument("keep_builds must be between 0 and 1000000");
  if (policy.keep_days < 0 || policy.keep_days > 1000000)
    return InvalidArgument("keep_days must be between 0 and 1000000");
  if (policy.keep_rollback_candidates < 0 || policy.keep_rollback_candidates > 1000)
    return InvalidArgument("keep_rollback_candidates must be between 0 and 1000");
  return Status::Ok();
}

Result<RetentionReport> ApplyRetention(Store& store, BlobStore& blobs, const Clock& clock,
                                       const RetentionPolicy& policy, bool dry_run,
                                       const std::string& actor, const BlobRemover& remove_blob) {
  REPRISE_RETURN_IF_ERROR(ValidateRetentionPolicy(policy));
  std::lock_guard lock(g_retention_mu);

  RetentionReport report;
  report.dry_run = dry_run;
  report.policy = policy;
  report.at = ToUnixMillis(clock.Now());

  REPRISE_ASSIGN_OR_RETURN(auto builds, store.ListAllBuilds());
  REPRISE_ASSIGN_OR_RETURN(Protection protection,
                           ComputeProtection(store, policy.keep_rollback_candidates));
  References refs;
  REPRISE_ASSIGN_OR_RETURN(std::vector<Candidate> candidates,
                           Candidates(store, builds, protection, policy, report.at, refs));

  // Deleting for real: protection is read again right before deleting, so a
  // build deployed (or scheduled) since the start of the run is kept.
  if (!dry_run) {
    REPRISE_ASSIGN_OR_RETURN(Protection again,
                             ComputeProtection(store, policy.keep_rollback_candidates));
    for (auto& c : candidates) {
      auto it = again.find(c.key);
      if (c.decision.keep || it == again.end()) continue;
      c.decision.keep = true;
      c.decision.reasons = it->second;
    }
  }

  const std::set<std::string> only_deleted = OnlyDeleted(refs, candidates);
  Status failure = RemoveArtifacts(store, candidates, dry_run, report);
  std::set<std::string> removed;
  if (failure.ok())
    failure = RemoveBlobs(store, blobs, only_deleted, dry_run, remove_blob, report, removed);
  for (auto& d : report.deleted)
    for (auto& a : d.artifacts) a.blob_removed = removed.count(a.sha256) > 0;

  if (!dry_run) AuditDeleted(store, clock, actor, report);
  if (!failure.ok())
    return Status(failure.code(), "retention stopped after deleting the artifacts of " +
                                      std::to_string(report.deleted.size()) +
                                      " builds: " + failure.message());
  return report;
}

}  // namespace reprise
