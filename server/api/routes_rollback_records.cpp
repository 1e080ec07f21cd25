// The rollback-record routes (docs/rollback-records.md): create from a
// succeeded deployment, read, change the selection, test the connection,
// submit, approve / reject, execute, validate, the validation file, and the
// "rollback logs" list (JSON or CSV). JSON in and out; the work is
// RollbackRecords' (server/rollback/).
#include "server/api/routes_rollback_records.h"

#include <map>
#include <optional>
#include <set>

#include "server/api/json_io.h"
#include "server/api/list_query.h"
#include "server/api/route_kinds.h"
#include "server/engine/irreversible.h"
#include "server/http/list_params.h"
#include "server/rollback/rollback_records.h"

namespace reprise {
namespace {

constexpr const char* kRecord = "/api/v1/rollback-records/{rid}";

Actor ActorOf(const HttpRequest& req) { return {req.principal.user, req.principal.role}; }

Json ParsedOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  Json j = Json::parse(text, nullptr, false);
  return j.is_discarded() ? Json(nullptr) : j;
}

std::string LogLink(int64_t execution) {
  return execution ? "/api/v1/deployments/" + std::to_string(execution) + "/log" : "";
}

Result<std::vector<std::string>> PathList(const Json& body, const char* key) {
  std::vector<std::string> out;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_array())
    return InvalidArgument(std::string("field '") + key + "' must be an array of paths");
  if (it->size() > 100000)
    return InvalidArgument(std::string("field '") + key + "' lists more than 100000 paths");
  for (const auto& p : *it) {
    if (!p.is_string())
      return InvalidArgument(std::string("field '") + key + "' must hold only strings (paths)");
    out.push_back(p.get<std::string>());
  }
  return out;
}

Result<RollbackSelection> SelectionFrom(const Json& body) {
  RollbackSelection s;
  REPRISE_ASSIGN_OR_RETURN(s.components, PathList(body, "components"));
  REPRISE_ASSIGN_OR_RETURN(s.exclude, PathList(body, "exclude"));
  return s;
}

Result<int64_t> RecordId(const HttpRequest& req) {
  return ParseNumber(req.Param("rid"), "rollback record id");
}

Json SummaryJson(Store& store, const RollbackRecord& r) {
  Json approvers = Json::array();
  auto approvals = store.ListRollbackApprovals(r.id);
  if (approvals.ok())
    for (const auto& a : *approvals)
      if (a.decision == "approved") approvers.push_back(a.user);
  Json j = JSON_MEMBERS(r, id, deployment_id, application, stage, release, build, status, comment,
                        created_by, submitted_by, executed_by, validated_by, error,
                        components_total, components_selected);
  j["created_at"] = Time(r.created_at);
  j["submitted_at"] = TimeOrNull(r.submitted_at);
  j["executed_at"] = TimeOrNull(r.executed_at);
  j["scheduled_at"] = TimeOrNull(r.scheduled_at);
  j["finished_at"] = TimeOrNull(r.finished_at);
  j["validated_at"] = TimeOrNull(r.validated_at);
  j["approved_by"] = approvers;
  j["execution_deployment_id"] =
      r.execution_deployment_id ? Json(r.execution_deployment_id) : Json(nullptr);
  j["log"] = LogLink(r.execution_deployment_id);
  return j;
}

Json TargetsJson(const std::vector<RollbackRecordTarget>& targets,
                 const std::vector<RollbackComponentRecord>& components, Json* warnings) {
  Json out = Json::array();
  for (const auto& t : targets) {
    std::map<std::string, int64_t> n;
    for (const auto& c : components) {
      if (c.target != t.target) continue;
      ++n["total"];
      if (c.selected) {
        ++n["selected"];
        ++n[c.type];
      }
    }
    Json previous = nullptr;
    if (t.previous_deployment_id != 0)
      previous = {{"deployment_id", t.previous_deployment_id},
                  {"release", t.previous_release},
                  {"build", t.previous_build},
                  {"release_dir", t.previous_release_dir},
                  {"artifact", t.previous_artifact},
                  {"sha256", t.previous_sha256}};
    else
      warnings->push_back("target " + t.target +
                          " ran nothing before this deployment: every component is a delete");
    out.push_back({{"target", t.target},
                   {"release_dir", t.release_dir},
                   {"manifest_hash", t.manifest_hash},
                   {"previous", previous},
                   {"composed_manifest_hash", t.composed_manifest_hash},
                   {"components", n["total"]},
                   {"selected", n["selected"]},
                   {"delete", n["delete"]},
                   {"override", n["override"]},
                   {"restore", n["restore"]}});
  }
  return out;
}

Json DetailJson(Store& store, RollbackRecords& records, const RollbackRecord& r) {
  Json j = SummaryJson(store, r);
  auto targets = store.ListRollbackRecordTargets(r.id);
  auto components = store.ListRollbackComponents(r.id);
  Json warnings = Json::array();
  std::vector<RollbackComponentRecord> comps =
      components.ok() ? *components : std::vector<RollbackComponentRecord>{};
  j["targets"] = targets.ok() ? TargetsJson(*targets, comps, &warnings) : Json::array();
  j["components"] = Json::array();
  for (const auto& c : comps)
    j["components"].push_back(
        {{"target", c.target}, {"path", c.path}, {"type", c.type}, {"selected", c.selected}});
  j["approvals"] = Json::array();
  if (auto a = store.ListRollbackApprovals(r.id); a.ok())
    for (const auto& x : *a)
      j["approvals"].push_back(
          {{"user", x.user}, {"decision", x.decision}, {"comment", x.comment}, {"at", Time(x.at)}});
  if (auto rule = records.ApprovalRule(r); rule.ok()) j["approval_rule"] = rule->Describe();
  j["connection"] = ParsedOrNull(r.connection_json);
  j["connection_ok"] = r.connection_ok;
  if (!r.connection_json.empty() && !r.connection_ok)
    warnings.push_back(
        "the last connection check found problems: execution is refused until "
        "a check passes");
  j["validation"] = r.validation_json.empty()
                        ? Json(nullptr)
                        : Json("/api/v1/rollback-records/" + std::to_string(r.id) + "/validation");
  j["irreversible"] = Json::array();
  if (auto steps = records.IrreversibleSteps(r); steps.ok())
    for (const auto& s : *steps) {
      j["irreversible"].push_back(IrreversibleStepJson(s));
      warnings.push_back("irreversible step, not undone by this record: " +
                         DescribeIrreversibleStep(s));
    }
  j["warnings"] = warnings;
  j["audit"] = AuditTrailJson(store, "rollback-record " + std::to_string(r.id));
  return j;
}

HttpResponse Csv(const Json& items) {
  static const std::vector<std::string> kColumns = {"id",
                                                    "status",
                                                    "application",
                                                    "stage",
                                                    "release",
                                                    "build",
                                                    "deployment_id",
                                                    "created_by",
                                                    "created_at",
                                                    "submitted_by",
                                                    "submitted_at",
                                                    "approved_by",
                                                    "executed_by",
                                                    "executed_at",
                                                    "finished_at",
                                                    "validated_by",
                                                    "validated_at",
                                                    "components_selected",
                                                    "components_total",
                                                    "log"};
  return CsvResponse(items, kColumns, "rollback-logs.csv");
}

Result<RollbackRecordFilter> FilterFrom(const HttpRequest& req) {
  RollbackRecordFilter f;
  f.application = req.Query("application").value_or("");
  f.stage = req.Query("stage").value_or("");
  std::string statuses = req.Query("status").value_or("");
  static const std::set<std::string> kKnown = {
      "draft",     "pending-approval", "approved", "rejected",  "scheduled",
      "executing", "executed",         "failed",   "validated", "validation-failed"};
  size_t start = 0;
  while (start < statuses.size()) {
    size_t comma = statuses.find(',', start);
    std::string s = statuses.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!kKnown.count(s))
      return InvalidArgument("query parameter 'status': unknown status '" + s + "'");
    f.statuses.push_back(s);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  REPRISE_ASSIGN_OR_RETURN(f.from, TimeQuery(req, "from"));
  REPRISE_ASSIGN_OR_RETURN(f.to, TimeQuery(req, "to"));
  if (auto dep = req.Query("deployment"); dep && !dep->empty()) {
    REPRISE_ASSIGN_OR_RETURN(f.deployment_id, ParseNumber(*dep, "deployment"));
  }
  auto format = req.Query("format").value_or("json");
  if (format != "json" && format != "csv")
    return InvalidArgument("query parameter 'format' must be json or csv");
  return f;
}

std::string ValidationText(const Json& v) {
  std::string out = "Rollback record #" + CsvValue(v["record"]) +
                    " validation: " + (v.value("ok", false) ? "PASSED" : "FAILED") + "\n";
  out += "Deployment " + CsvValue(v["deployment"]) + ": " + CsvValue(v["application"]) + " " +
         CsvValue(v["release"]) + " build " + CsvValue(v["build"]) + " on " + CsvValue(v["stage"]) +
         "\nValidated by " + CsvValue(v["validated_by"]) + " at " +
         Time(v.value("validated_at", int64_t{0})) + "\n";
  for (const auto& t : v["targets"]) {
    out += "\nTarget " + CsvValue(t["target"]) + ": " + (t.value("ok", false) ? "ok" : "PROBLEMS") +
           "\n";
    if (t.contains("problem")) out += "  could not validate: " + CsvValue(t["problem"]) + "\n";
    if (!t.contains("components")) continue;
    out += "  selected components (" + CsvValue(t["selected_components"]) +
           "): " + (t["components"].value("ok", false) ? "all reverted" : "problems") + "\n";
    for (const auto& p : t["components"]["problems"])
      out += "    " + CsvValue(p["type"]) + " " + CsvValue(p["path"]) + ": " +
             CsvValue(p["problem"]) + "\n";
    out += "  other files (" + CsvValue(t["files_checked"]) + " checked in all): " +
           (t["other_files"].value("ok", false) ? "exactly the deployment's" : "problems") + "\n";
    for (const auto& p : t["other_files"]["problems"])
      out += "    " + CsvValue(p["path"]) + ": " + CsvValue(p["problem"]) + "\n";
  }
  return out;
}

// POST …/execute {at?, acknowledge_irreversible?}
Result<RollbackRecord> ExecuteFromBody(RollbackRecords& rr, const Actor& a, int64_t id,
                                       const Json& body) {
  std::optional<TimePoint> at;
  if (auto it = body.find("at"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument("field 'at' must be an RFC 3339 string");
    at = ParseRfc3339(it->get<std::string>());
    if (!at)
      return InvalidArgument(
          "field 'at' must be RFC 3339 with an offset, e.g. 2026-11-23T22:00:00+01:00");
  }
  bool acknowledged = false;
  if (auto it = body.find("acknowledge_irreversible"); it != body.end()) {
    if (!it->is_boolean())
      return InvalidArgument("field 'acknowledge_irreversible' must be true or false");
    acknowledged = it->get<bool>();
  }
  return rr.Execute(a, id, at, acknowledged);
}

}  // namespace

// GET …/{rid}/validation[?format=text]: the validation file.
Route ValidationRoute(Store* s) {
  return {"GET",
          std::string(kRecord) + "/validation",
          Role::kViewer,
          false,
          [s](HttpRequest& req) {
            TRY_OR_ERROR(int64_t id, RecordId(req));
            TRY_OR_ERROR(RollbackRecord r, s->GetRollbackRecord(id));
            if (r.validation_json.empty())
              return HttpResponse::Error(NotFound("rollback record " + std::to_string(id) +
                                                  " has not been validated yet"));
            auto format = req.Query("format").value_or("json");
            if (format == "json") return HttpResponse::Json(200, r.validation_json);
            if (format != "text")
              return HttpResponse::Error(
                  InvalidArgument("query parameter 'format' must be json or text"));
            HttpResponse t;
            t.content_type = "text/plain; charset=utf-8";
            t.body = ValidationText(ParsedOrNull(r.validation_json));
            return t;
          },
          nullptr,
          {.summary = "A rollback record's last validation report",
           .tag = "Rollback records",
           .query = {{"format", "string", "json (default) or text"}},
           .success = "the validation report"}};
}

void AddRollbackRecordsToStages(Store& store, Json& stages) {
  if (!stages.is_array()) return;
  for (auto& stage : stages) {
    if (!stage.contains("targets")) continue;
    for (auto& t : stage["targets"]) {
      Json& current = t["current"];
      if (!current.is_object()) continue;
      auto rec = store.FindRollbackRecordByExecution(current.value("deployment_id", int64_t{0}));
      if (!rec.ok()) continue;
      auto components = store.ListRollbackComponents(rec->id);
      int64_t total = 0, reverted = 0;
      if (components.ok())
        for (const auto& c : *components)
          if (c.target == t.value("target", "")) {
            ++total;
            reverted += c.selected;
          }
      current["rollback_record"] = {{"id", rec->id},
                                    {"deployment_id", rec->deployment_id},
                                    {"reverted", reverted},
                                    {"components", total}};
      current["label"] = rec->release + " build " + std::to_string(rec->build) +
                         " + rollback record #" + std::to_string(rec->id) + " (" +
                         std::to_string(reverted) + " of " + std::to_string(total) +
                         " components reverted)";
    }
  }
}

namespace {

// The answer with a record's detail, or the error that kept it from being read.
auto DetailResponse(RollbackRecords& records, Store& store) {
  return [rr = &records, s = &store](const Result<RollbackRecord>& r, int status = 200) {
    if (!r.ok()) return HttpResponse::Error(r.status());
    return Ok(DetailJson(*s, *rr, *r), status);
  };
}

// Rollback records: create from a deployment, list, show, change the selection.
void AddRecordRoutes(RollbackRecords& records, Store& store, std::vector<Route>& out) {
  RollbackRecords* rr = &records;
  Store* s = &store;
  auto detail = DetailResponse(records, store);
  const BodyField components{"components", "array",
                             false,        "component paths to revert (absent: every component)",
                             {},           "string"};
  const BodyField exclude{"exclude", "array", false, "component paths to leave alone",
                          {},        "string"};
  const RequestBody create_body{
      "rollback record", {components, exclude, {"comment", "string", false, "why"}}, false};
  const RequestBody reselect_body{"rollback record", {components, exclude}};
  RouteGroup group(out, "Rollback records");
  group.Add(JsonBodyRoute(Post, "/api/v1/deployments/{id}/rollback-records", Role::kDeployer,
                          {.summary = "Create a rollback record for a deployment",
                           .body = create_body,
                           .success_status = 201,
                           .success = "the new rollback record"},
                          [rr, detail](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(int64_t id, ParseNumber(req.Param("id"), "deployment id"));
                            TRY_OR_ERROR(auto selection, SelectionFrom(body));
                            TRY_OR_ERROR(std::string comment, StringField(body, "comment", false));
                            return detail(rr->Create(ActorOf(req), id, selection, comment), 201);
                          }));
  group.Add(
      Get("/api/v1/rollback-records", Role::kViewer,
          {.summary = "List rollback records",
           .query = ExportListQuery({{"application", "string", "only this application"},
                                     {"stage", "string", "only this stage"},
                                     {"status", "string", "comma-separated statuses"},
                                     {"deployment", "integer", "only records of this deployment"}}),
           .success = kExportListAnswer},
          [rr, s](HttpRequest& req) {
            TRY_OR_ERROR(Page page, ListParams(req, {"application", "stage", "status", "from", "to",
                                                     "deployment", "format"}));
            TRY_OR_ERROR(auto filter, FilterFrom(req));
            TRY_OR_ERROR(auto list, s->ListRollbackRecords(filter, page));
            Json items = Json::array();
            for (const auto& r : list) {
              auto fresh = rr->Get(r.id);
              items.push_back(SummaryJson(*s, fresh.ok() ? *fresh : r));
            }
            TRY_OR_ERROR(bool csv, WantsCsv(req));
            if (csv) return Csv(items);
            return ListResponse(items, page);
          }));
  group.Add(Get(kRecord, Role::kViewer,
                {.summary = "Get a rollback record",
                 .success = "the record with components, approvals and warnings"},
                [rr, detail](HttpRequest& req) {
                  TRY_OR_ERROR(int64_t id, RecordId(req));
                  return detail(rr->Get(id));
                }));
  group.Add(JsonBodyRoute(Patch, kRecord, Role::kDeployer,
                          {.summary = "Change which components a record reverts",
                           .body = reselect_body,
                           .success = "the rollback record"},
                          [rr, detail](HttpRequest& req, const Json& body) {
                            TRY_OR_ERROR(int64_t id, RecordId(req));
                            TRY_OR_ERROR(auto selection, SelectionFrom(body));
                            return detail(rr->Reselect(ActorOf(req), id, selection));
                          }));
}

// What moves a rollback record through its statuses, and its validation file.
void AddRecordActionRoutes(RollbackRecords& records, Store& store, std::vector<Route>& out) {
  RollbackRecords* rr = &records;
  Store* s = &store;
  auto detail = DetailResponse(records, store);
  auto action = [&](const char* verb, const char* summary, auto call) {
    RequestBody body_doc{verb,
                         {{"comment", "string", false, "why"},
                          {"at", "string", false, "RFC 3339 time (execute: schedule it)"}},
                         false};
    if (std::string_view(verb) == "execute")
      body_doc.fields.push_back({"acknowledge_irreversible", "boolean", false,
                                 "confirm the irreversible steps will run"});
    out.push_back(JsonBodyRoute(Post, std::string(kRecord) + "/" + verb, Role::kDeployer,
                                {.summary = summary,
                                 .tag = "Rollback records",
                                 .body = body_doc,
                                 .success = "the rollback record after the change"},
                                [call, detail](HttpRequest& req, const Json& body) {
                                  TRY_OR_ERROR(int64_t id, RecordId(req));
                                  TRY_OR_ERROR(std::string comment,
                                               StringField(body, "comment", false));
                                  return detail(call(ActorOf(req), id, body, comment));
                                }));
  };
  action("test-connection", "Check the record's targets are reachable",
         [rr](const Actor& a, int64_t id, const Json&, const std::string&) {
           return rr->TestConnection(a, id);
         });
  action("submit", "Submit the record for approval",
         [rr](const Actor& a, int64_t id, const Json&, const std::string& c) {
           return rr->Submit(a, id, c);
         });
  action("approve", "Approve the record",
         [rr](const Actor& a, int64_t id, const Json&, const std::string& c) {
           return rr->Decide(a, id, true, c);
         });
  action("reject", "Reject the record",
         [rr](const Actor& a, int64_t id, const Json&, const std::string& c) {
           return rr->Decide(a, id, false, c);
         });
  action("execute", "Run the rollback (now or at a time)",
         [rr](const Actor& a, int64_t id, const Json& body, const std::string&) {
           return ExecuteFromBody(*rr, a, id, body);
         });
  action("validate", "Compare the targets with the record",
         [rr](const Actor& a, int64_t id, const Json&, const std::string&) {
           return rr->Validate(a, id);
         });
  out.push_back(ValidationRoute(s));
}

}  // namespace

std::vector<Route> RollbackRecordRoutes(RollbackRecords& records, Store& store) {
  std::vector<Route> out;
  AddRecordRoutes(records, store, out);
  AddRecordActionRoutes(records, store, out);
  return out;
}

}  // namespace reprise
