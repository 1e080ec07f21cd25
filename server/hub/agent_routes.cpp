// The HTTP routes of the agent hub: the agents list, approval, and
// enrollment tokens. Errors map to HTTP statuses through HttpStatusFor, the
// one mapping every route uses.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "server/http/list_params.h"
#include "server/hub/agent_hub.h"
#include "server/hub/agent_hub_internal.h"

namespace reprise {
namespace {

using json = nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  return HttpResponse::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

// GET /agents and GET /agents/enrollment-info.
void AgentHub::AddAgentListRoutes(std::vector<Route>& r) {
  AgentHub* hub = this;
  r.push_back(
      {"GET",
       "/api/v1/agents",
       Role::kViewer,
       false,
       [hub](HttpRequest& req) {
         auto page = ListParams(req);
         if (!page.ok()) return HttpResponse::Error(page.status());
         json items = json::array();
         const auto agents = hub->Agents();
         const size_t first = std::min<size_t>(page->offset, agents.size());
         const size_t last = std::min<size_t>(first + page->limit, agents.size());
         for (size_t i = first; i < last; ++i) {
           const auto& a = agents[i];
           items.push_back(
               {{"name", a.name},
                {"status", a.status},
                {"approved", a.approved},
                {"online", a.online},
                {"version", a.version},
                {"last_seen", a.last_seen ? FormatRfc3339Utc(FromUnixMillis(a.last_seen)) : ""},
                {"key_fingerprint", a.key_fingerprint},
                {"address", a.address},
                {"targets", a.targets}});
         }
         return JsonResponse(200,
                             {{"items", items}, {"limit", page->limit}, {"offset", page->offset}});
       },
       nullptr,
       {.summary = "List agents",
        .tag = "Agents",
        .query = PageQuery(),
        .success = "{items, limit, offset}: name, status, approved, online, version, last_seen, "
                   "targets"}});
  // What an admin needs to enroll an agent: where it connects and the
  // certificate fingerprint it pins. `address` is empty when the hub listens
  // on every interface (the page then uses the host it was loaded from).
  r.push_back({"GET",
               "/api/v1/agents/enrollment-info",
               Role::kAdmin,
               false,
               [hub](HttpRequest&) {
                 const auto& o = hub->impl_->o;
                 const int port = hub->port();
                 const bool listening = o.port >= 0 && port > 0;
                 const bool wildcard = o.host.empty() || o.host == "0.0.0.0" || o.host == "::";
                 std::string address;
                 if (listening && !wildcard)
                   address = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                             ":" + std::to_string(port);
                 return JsonResponse(200, {{"listening", listening},
                                           {"host", o.host},
                                           {"port", listening ? port : 0},
                                           {"address", address},
                                           {"tls", o.tls},
                                           {"fingerprint", hub->cert_fingerprint()}});
               },
               nullptr,
               {.summary = "Where agents connect and the certificate they pin",
                .tag = "Agents",
                .success = "{listening, host, port, address, tls, fingerprint}"}});
}

// POST /agents/{name}/approve and POST /agents/enrollment-tokens.
void AgentHub::AddEnrollmentRoutes(std::vector<Route>& r) {
  AgentHub* hub = this;
  r.push_back({"POST",
               "/api/v1/agents/{name}/approve",
               Role::kAdmin,
               false,
               [hub](HttpRequest& req) {
                 auto it = req.path_params.find("name");
                 std::string name = it == req.path_params.end() ? "" : it->second;
                 Status st = hub->Approve(name, req.principal.user);
                 if (!st.ok()) return HttpResponse::Error(st);
                 return JsonResponse(200, {{"name", name}, {"status", "approved"}});
               },
               nullptr,
               {.summary = "Approve an agent that asked to enroll",
                .tag = "Agents",
                .success = "{name, status: approved}"}});
  const RequestBody enroll_body{
      "enrollment token",
      {{"pre_approved", "boolean", false, "agents enrolling with it need no approval"},
       {"expires_in_seconds", "integer", false, "lifetime (default 24 hours)"}},
      false};
  r.push_back(
      {"POST",
       "/api/v1/agents/enrollment-tokens",
       Role::kAdmin,
       false,
       [hub, enroll_body](HttpRequest& req) {
         json body = json::object();
         if (!req.body.empty()) {
           try {
             body = json::parse(req.body);
           } catch (const std::exception&) {
             return HttpResponse::Error(InvalidArgument("the body is not valid JSON"));
           }
         }
         if (!body.is_object())
           return HttpResponse::Error(InvalidArgument("the body must be a JSON object"));
         for (auto it = body.begin(); it != body.end(); ++it) {
           if (std::none_of(enroll_body.fields.begin(), enroll_body.fields.end(),
                            [&it](const BodyField& f) { return f.name == it.key(); }))
             return HttpResponse::Error(
                 InvalidArgument("unknown field '" + it.key() + "' in enrollment token"));
         }
         bool pre = false;
         int64_t ttl = 24 * 3600;
         if (body.contains("pre_approved")) {
           if (!body["pre_approved"].is_boolean())
             return HttpResponse::Error(InvalidArgument("pre_approved must be a boolean"));
           pre = body["pre_approved"].get<bool>();
         }
         if (body.contains("expires_in_seconds")) {
           if (!body["expires_in_seconds"].is_number_integer())
             return HttpResponse::Error(InvalidArgument("expires_in_seconds must be an integer"));
           ttl = body["expires_in_seconds"].get<int64_t>();
         }
         auto token = hub->CreateEnrollToken(pre, std::chrono::seconds(ttl), req.principal.user);
         if (!token.ok()) return HttpResponse::Error(token.status());
         return JsonResponse(
             201, {{"token", *token}, {"pre_approved", pre}, {"expires_in_seconds", ttl}});
       },
       nullptr,
       {.summary = "Create an enrollment token for a new agent",
        .tag = "Agents",
        .body = enroll_body,
        .success_status = 201,
        .success = "{token, pre_approved, expires_in_seconds}"}});
}

std::vector<Route> AgentHub::Routes() {
  std::vector<Route> r;
  AddAgentListRoutes(r);
  AddEnrollmentRoutes(r);
  return r;
}

}  // namespace reprise
