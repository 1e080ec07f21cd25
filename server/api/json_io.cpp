#include "server/api/json_io.h"

#include "server/catalog/catalog.h"

namespace reprise {

Result<Json> ParseJsonBody(const HttpRequest& req, bool allow_empty) {
  if (req.body.empty() && allow_empty) return Json::object();
  Json j;
  try {
    j = Json::parse(req.body);
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("malformed JSON body: ") + e.what());
  }
  if (!j.is_object()) return InvalidArgument("the request body must be a JSON object");
  return j;
}

Status CheckKeys(const Json& obj, std::initializer_list<const char*> allowed,
                 std::string_view what) {
  for (const auto& [key, _] : obj.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return InvalidArgument("unknown field '" + key + "' in " + std::string(what) +
                             " (expected: " + list + ")");
    }
  }
  return Status::Ok();
}

Status CheckKeys(const Json& obj, const RequestBody& declared) {
  if (declared.any_keys) return Status::Ok();
  for (const auto& [key, _] : obj.items()) {
    bool known = false;
    for (const auto& f : declared.fields) known = known || key == f.name;
    if (!known) {
      std::string list;
      for (const auto& f : declared.fields) list += (list.empty() ? "" : ", ") + f.name;
      return InvalidArgument("unknown field '" + key + "' in " + declared.what +
                             " (expected: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> StringField(const Json& obj, const char* key, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return InvalidArgument(std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!it->is_string()) return InvalidArgument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

Result<VariableMap> VariablesField(const Json& obj) {
  auto it = obj.find("variables");
  if (it == obj.end() || it->is_null()) return VariableMap{};
  if (!it->is_object()) return InvalidArgument("field 'variables' must be an object");
  auto vars = VariablesFromJson(it->dump());
  if (!vars.ok()) return vars.status().WithContext("field 'variables'");
  return vars;
}

BodyField VariablesFieldDoc(std::string description) {
  return {"variables",
          "map",
          false,
          std::move(description),
          {{"value", "string", true, "the value"},
           {"sensitive", "boolean", false, "masked in every answer and log"}}};
}

Json VariablesOut(const VariableMap& vars) {
  Json out = Json::object();
  for (const auto& [name, v] : vars)
    out[name] = {{"value", v.sensitive ? "******" : v.value}, {"sensitive", v.sensitive}};
  return out;
}

Json VariablesOut(const std::string& canonical_json) {
  auto vars = VariablesFromJson(canonical_json);
  return vars.ok() ? VariablesOut(*vars) : Json::object();
}

std::string Time(int64_t unix_millis) {
  return unix_millis == 0 ? std::string() : FormatRfc3339Utc(FromUnixMillis(unix_millis));
}

Json TimeOrNull(int64_t unix_millis) {
  return unix_millis == 0 ? Json(nullptr) : Json(Time(unix_millis));
}

Json ArtifactSummaryJson(const ArtifactRecord& a) {
  Json j = JSON_MEMBERS(a, name, sha256, size, file_count, created_by);
  j["created_at"] = Time(a.created_at);
  j["blob_removed"] = a.blob_removed_at != 0;
  j["blob_removed_at"] = Time(a.blob_removed_at);
  return j;
}

Json IrreversibleStepJson(const IrreversibleStepRecord& s) {
  Json j = JSON_MEMBERS(s, deployment_id, release, build, step_id, position, target, outcome, note,
                        has_undo);
  j["step"] = s.label;
  j["ran_at"] = Time(s.ran_at);
  return j;
}

Result<int64_t> ParseNumber(const std::string& text, const char* what) {
  if (text.empty() || text.size() > 12)
    return InvalidArgument(std::string(what) + " '" + text + "' is invalid");
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return InvalidArgument(std::string(what) + " '" + text + "' is invalid");
    v = v * 10 + (c - '0');
  }
  return v;
}

Page PageFrom(const HttpRequest& req) {
  Page page;
  auto number = [](const std::optional<std::string>& s, int64_t fallback) {
    if (!s || s->empty() || s->size() > 9) return fallback;
    int64_t v = 0;
    for (char c : *s) {
      if (c < '0' || c > '9') return fallback;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  page.limit = std::clamp<int64_t>(number(req.Query("limit"), 100), 1, 1000);
  page.offset = number(req.Query("offset"), 0);
  return page;
}

HttpResponse ListResponse(Json items, const Page& page) {
  Json body = {{"items", std::move(items)}, {"limit", page.limit}, {"offset", page.offset}};
  if (static_cast<int64_t>(body["items"].size()) == page.limit)
    body["next_offset"] = page.offset + page.limit;
  return HttpResponse::Json(200, DumpJson(body));
}

HttpResponse Ok(const Json& body, int status) { return HttpResponse::Json(status, DumpJson(body)); }

Json AuditTrailJson(AuditStore& store, const std::string& subject) {
  Json out = Json::array();
  auto audit = store.ListAudit({"", subject}, {100, 0});
  if (audit.ok())
    for (const auto& e : *audit)
      out.push_back(
          {{"at", Time(e.at)}, {"actor", e.actor}, {"action", e.action}, {"summary", e.summary}});
  return out;
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace reprise
