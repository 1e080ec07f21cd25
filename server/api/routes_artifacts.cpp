// Artifact upload (streamed), download (ETag, Range), manifests, verification.
#include <cstdio>

#include "agents/deployer/archive.h"
#include "server/api/json_io.h"
#include "server/api/routes.h"
#include "server/artifacts/blob_store.h"
#include "server/catalog/artifact_verify.h"
#include "server/catalog/catalog.h"
#include "server/metrics/metrics.h"
#include "server/store/store.h"

namespace reprise {

namespace {

constexpr const char* kArtifactPath =
    "/api/v1/applications/{app}/releases/{rel}/builds/{n}/artifacts/{name}";

std::string OctalMode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// An artifact with the build it belongs to.
Json ArtifactJson(const ArtifactRecord& a) {
  Json j = ArtifactSummaryJson(a);
  j["application"] = a.application;
  j["release"] = a.release;
  j["build"] = a.build;
  return j;
}

// PUT …/artifacts/{name}: the request body streams into the catalog.
Route UploadRoute(ApiContext& ctx) {
  Catalog& catalog = *ctx.catalog;
  Route upload;
  upload.method = "PUT";
  upload.pattern = kArtifactPath;
  upload.min_role = Role::kDeployer;
  upload.streaming = [&ctx, &catalog](HttpRequest& req, const BodyReader& body) {
    TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
    ArchiveLimits limits = ctx.archive_limits ? *ctx.archive_limits : ArchiveLimits{};
    TRY_OR_ERROR(auto result,
                 catalog.UploadArtifact(req.principal.user, req.Param("app"), req.Param("rel"), n,
                                        req.Param("name"), body, limits, ctx.max_artifact_bytes));
    if (ctx.metrics) ctx.metrics->AddUploadedBytes(static_cast<uint64_t>(result.artifact.size));
    Json j = ArtifactJson(result.artifact);
    j["created"] = result.created;
    j["restored"] = result.restored;
    HttpResponse res = Ok(j, result.created ? 201 : 200);
    res.headers.emplace_back("ETag", "\"" + result.artifact.sha256 + "\"");
    return res;
  };
  upload.doc = {.summary = "Upload an artifact (a .tar.gz) to a build",
                .tag = "Artifacts",
                .description =
                    "The body streams in; the archive is checked (paths, sizes, modes) "
                    "before it is stored. Refused once the build is sealed.",
                .success = "the artifact (201 when new, 200 when the same bytes were there)"};
  return upload;
}

}  // namespace

namespace {

// POST /admin/verify: every stored artifact checked against its checksum.
Route VerifyRoute(ApiContext& ctx) {
  return Route{
      "POST",
      "/api/v1/admin/verify",
      Role::kAdmin,
      false,
      [&ctx](HttpRequest& req) {
        TRY_OR_ERROR(auto report, VerifyArtifactStore(*ctx.store, *ctx.blobs));
        Json wrong_mode = Json::array();
        for (const auto& w : report.blobs.wrong_mode)
          wrong_mode.push_back({{"sha256", w.sha256}, {"mode", OctalMode(w.mode)}});
        Json missing = Json::array();
        for (const auto& m : report.missing)
          missing.push_back(JSON_MEMBERS(m, application, release, build, name, sha256));
        Json j = {{"ok", report.ok()},
                  {"blobs_checked", report.blobs.blobs_checked},
                  {"bytes_checked", report.blobs.bytes_checked},
                  {"records_checked", report.records_checked},
                  {"corrupt", report.blobs.corrupt},
                  {"unexpected", report.blobs.unexpected},
                  {"wrong_mode", std::move(wrong_mode)},
                  {"missing", std::move(missing)}};
        Status st = ctx.store->AppendAudit(
            {0, ToUnixMillis(ctx.clock->Now()), req.principal.user, "artifacts.verify", "blobs",
             std::to_string(report.blobs.blobs_checked) + " checked, " +
                 std::to_string(report.blobs.corrupt.size()) + " corrupt, " +
                 std::to_string(report.missing.size()) + " missing, " +
                 std::to_string(report.blobs.wrong_mode.size()) + " with a wrong mode"});
        (void)st;
        return Ok(j);
      },
      nullptr,
      {.summary = "Verify every stored artifact against its checksum",
       .tag = "Admin",
       .success = "what is missing, corrupt or has the wrong mode"}};
}

}  // namespace

std::vector<Route> ArtifactRoutes(ApiContext& ctx) {
  Store& store = *ctx.store;
  std::vector<Route> r;

  r.push_back(UploadRoute(ctx));

  r.push_back(Get(
      kArtifactPath, Role::kViewer,
      {.summary = "Download an artifact",
       .tag = "Artifacts",
       .success = "the archive bytes (Range and If-None-Match honoured)",
       .success_type = "application/octet-stream"},
      [&ctx, &store](HttpRequest& req) {
        TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
        TRY_OR_ERROR(auto a,
                     store.GetArtifact(req.Param("app"), req.Param("rel"), n, req.Param("name")));
        if (a.blob_removed_at != 0)
          return HttpResponse::Error(NotFound("the bytes of artifact '" + a.name + "' of build " +
                                              a.release + " #" + std::to_string(a.build) +
                                              " were removed by retention at " +
                                              Time(a.blob_removed_at) + "; " + RestoreHint(a)));
        std::string etag = "\"" + a.sha256 + "\"";
        if (req.Header("if-none-match") == etag) {
          HttpResponse res;
          res.status = 304;
          res.content_type = "application/octet-stream";
          res.headers.emplace_back("ETag", etag);
          return res;
        }
        TRY_OR_ERROR(auto path, ctx.blobs->Path(a.sha256));
        HttpResponse res;
        res.content_type = "application/octet-stream";
        res.file_path = path.string();
        res.file_size = a.size;
        res.headers.emplace_back("ETag", etag);
        res.headers.emplace_back("X-Checksum-Sha256", a.sha256);
        res.headers.emplace_back("Accept-Ranges", "bytes");
        res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + a.name + "\"");
        return res;
      }));

  r.push_back(Get(std::string(kArtifactPath) + "/manifest", Role::kViewer,
                  {.summary = "An artifact's manifest",
                   .tag = "Artifacts",
                   .success = "the artifact with its file manifest"},
                  [&store](HttpRequest& req) {
                    TRY_OR_ERROR(auto n, ParseNumber(req.Param("n"), "build number"));
                    TRY_OR_ERROR(auto a, store.GetArtifact(req.Param("app"), req.Param("rel"), n,
                                                           req.Param("name")));
                    Json j = ArtifactJson(a);
                    j["manifest"] = Json::parse(a.manifest_json, nullptr, false);
                    return Ok(j);
                  }));

  r.push_back(VerifyRoute(ctx));
  return r;
}

}  // namespace reprise
