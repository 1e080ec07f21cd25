// The deployments history: filters, JSON or CSV.
#include "server/api/deployment_list.h"

#include <cctype>
#include <set>

#include "server/api/list_query.h"
#include "server/http/list_params.h"

namespace reprise {

namespace {

const std::set<std::string> kStatuses = {"scheduled", "waiting",     "queued",
                                         "running",   "succeeded",   "failed",
                                         "cancelled", "interrupted", "expired"};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<DeploymentFilter> FilterFrom(const HttpRequest& req) {
  DeploymentFilter f;
  f.application = req.Query("application").value_or("");
  f.stage = req.Query("stage").value_or("");
  f.target = req.Query("target").value_or("");
  f.requested_by = req.Query("user").value_or("");
  f.release = req.Query("release").value_or("");
  for (auto& s : SplitCommaList(req.Query("status").value_or(""))) {
    s = Lower(s);
    if (!kStatuses.count(s))
      return InvalidArgument("query parameter 'status': unknown status '" + s + "'");
    f.statuses.push_back(s);
  }
  if (auto b = req.Query("build"); b && !b->empty()) {
    REPRISE_ASSIGN_OR_RETURN(f.build, ParseNumber(*b, "query parameter 'build'"));
  }
  REPRISE_ASSIGN_OR_RETURN(f.created_from, TimeQuery(req, "from"));
  REPRISE_ASSIGN_OR_RETURN(f.created_to, TimeQuery(req, "to"));
  if (f.created_from && f.created_to && f.created_to <= f.created_from)
    return InvalidArgument("query parameter 'to' must be after 'from'");
  return f;
}

}  // namespace

HttpResponse ListDeploymentsResponse(Store& store, const HttpRequest& req,
                                     const std::function<Json(const DeploymentRecord&)>& summary) {
  TRY_OR_ERROR(Page page, ListParams(req, {"application", "stage", "status", "target", "user",
                                           "release", "build", "from", "to", "format"}));
  TRY_OR_ERROR(bool csv, WantsCsv(req));
  TRY_OR_ERROR(auto filter, FilterFrom(req));
  TRY_OR_ERROR(auto list, store.ListDeployments(filter, page));
  if (!csv) return ListResponse(list, page, summary);
  Json items = Json::array();
  for (const auto& d : list) {
    Json j = summary(d);
    j["duration_seconds"] =
        j.contains("duration_ms") ? Json(j["duration_ms"].get<int64_t>() / 1000.0) : Json();
    items.push_back(std::move(j));
  }
  return CsvResponse(items,
                     {"id", "application", "release", "build", "stage", "kind", "status", "by",
                      "target_names", "created_at", "scheduled_at", "started_at", "finished_at",
                      "duration_seconds", "comment", "error"},
                     "deployments.csv");
}

}  // namespace reprise
