// POST /api/v1/admin/retention: applies the artifact retention policy
// (server/catalog/retention.h), as a dry run unless asked otherwise. Fields the
// request leaves out come from the server's defaults (--retention-* flags).
#include <algorithm>

#include "server/api/json_io.h"
#include "server/api/route_kinds.h"
#include "server/api/routes.h"
#include "server/artifacts/blob_store.h"
#include "server/catalog/catalog.h"
#include "server/catalog/retention.h"
#include "server/store/store.h"

namespace reprise {

namespace {

// An optional integer field in 0..max; absent keeps `out` as it is.
Status IntField(const Json& body, const char* key, int max, int& out) {
  if (!body.contains(key)) return Status::Ok();
  const Json& v = body[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > max)
    return InvalidArgument(std::string(key) + " must be an integer from 0 to " +
                           std::to_string(max));
  out = static_cast<int>(v.get<int64_t>());
  return Status::Ok();
}

Json DecisionJson(const RetentionDecision& d, int64_t now) {
  Json artifacts = Json::array();
  for (const auto& a : d.artifacts) {
    Json j = {{"name", a.name}, {"sha256", a.sha256}, {"size", a.size}};
    if (!d.keep) {
      j["blob_removed"] = a.blob_removed;
      j["blob_shared_with"] = a.blob_shared_with;
    }
    artifacts.push_back(std::move(j));
  }
  return {{"application", d.application},
          {"release", d.release},
          {"build", d.build},
          {"created_at", Time(d.created_at)},
          {"age_days", std::max<int64_t>(0, now - d.created_at) / (24LL * 60 * 60 * 1000)},
          {"decision", d.keep ? "keep" : "delete"},
          {"reasons", d.reasons},
          {"bytes", d.bytes},
          {"artifacts", std::move(artifacts)}};
}

}  // namespace

std::vector<Route> RetentionRoutes(ApiContext& ctx) {
  std::vector<Route> r;
  const RequestBody retention_body{
      "retention",
      {{"keep_builds", "integer", false, "builds kept per release"},
       {"keep_days", "integer", false, "builds younger than this are kept"},
       {"keep_rollback_candidates", "integer", false, "rollback candidates kept per stage"},
       {"dry_run", "boolean", false, "report what would go without removing it"}},
      false};
  r.push_back(JsonBodyRoute(
      Post, "/api/v1/admin/retention", Role::kAdmin,
      {.summary = "Remove the bytes of old artifacts",
       .tag = "Admin",
       .description = "Fields left out take the server's retention defaults. Deployed and "
                      "rollback-candidate builds are kept.",
       .body = retention_body,
       .success = "what was (or would be) removed"},
      [&ctx](HttpRequest& req, const Json& body) {
        RetentionPolicy policy =
            ctx.retention_defaults ? *ctx.retention_defaults : RetentionPolicy{};
        STATUS_OR_ERROR(IntField(body, "keep_builds", 1000000, policy.keep_builds_per_release));
        STATUS_OR_ERROR(IntField(body, "keep_days", 1000000, policy.keep_days));
        STATUS_OR_ERROR(
            IntField(body, "keep_rollback_candidates", 1000, policy.keep_rollback_candidates));
        // Deleting must be asked for explicitly.
        bool dry_run = true;
        if (body.contains("dry_run")) {
          if (!body["dry_run"].is_boolean())
            return HttpResponse::Error(InvalidArgument("dry_run must be true or false"));
          dry_run = body["dry_run"].get<bool>();
        }
        if (ctx.blobs == nullptr)
          return HttpResponse::Error(Unavailable("this server has no artifact store"));
        BlobRemover remove_blob = [&ctx](const std::string& sha) {
          return ctx.catalog->RemoveBlobIfUnreferenced(sha);
        };
        TRY_OR_ERROR(auto report, ApplyRetention(*ctx.store, *ctx.blobs, *ctx.clock, policy,
                                                 dry_run, req.principal.user, remove_blob));
        Json deleted = Json::array(), kept = Json::array();
        for (const auto& d : report.deleted) deleted.push_back(DecisionJson(d, report.at));
        for (const auto& d : report.kept) kept.push_back(DecisionJson(d, report.at));
        Json j = {{"dry_run", report.dry_run},
                  {"at", Time(report.at)},
                  {"policy",
                   {{"keep_builds", policy.keep_builds_per_release},
                    {"keep_days", policy.keep_days},
                    {"keep_rollback_candidates", policy.keep_rollback_candidates}}},
                  {"deleted", std::move(deleted)},
                  {"kept", std::move(kept)},
                  {"blobs_removed", report.blobs_removed.size()},
                  {"removed_blobs", report.blobs_removed},
                  {"bytes_freed", report.bytes_freed},
                  {"file_bytes_freed", report.file_bytes_freed},
                  {"warnings", report.warnings}};
        return Ok(j);
      }));
  return r;
}

}  // namespace reprise
