// The deployment commands: deploy, preview, deployments, deployment show,
// log, approve, reject, revoke, cancel, continue, move, clear-hold, approvals.
#include <algorithm>
#include <chrono>
#include <optional>

#include "cli/command.h"
#include "common/clock.h"

namespace reprise::cli {

namespace {

Result<std::string> ContextOption(const ParsedArgs& args) {
  auto ctx = args.Value("context");
  if (!ctx) return std::string();
  if (*ctx != "as-deployed" && *ctx != "current")
    return InvalidArgument("--context must be as-deployed or current, got '" + *ctx + "'");
  return *ctx;
}

Outcome Deploy(Ctx& c) {
  const auto& p = c.args.positional;  // deploy APP RELEASE BUILD STAGE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  Json body = {{"stage", p[4]}};
  if (auto at = c.args.Value("at")) {
    if (!ParseRfc3339(*at))
      return Outcome::Usage(
          "--at needs an RFC 3339 time with an offset, e.g. "
          "2026-11-23T22:00:00+01:00; got '" +
          *at + "'");
    body["at"] = *at;
  }
  if (c.args.Has("force")) {
    if (!c.args.Value("comment") || c.args.Value("comment")->empty())
      return Outcome::Usage("--force needs --comment saying why");
    body["force"] = true;
  }
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  if (c.args.Has("acknowledge-irreversible")) body["acknowledge_irreversible"] = true;
  auto ctx = ContextOption(c.args);
  if (!ctx.ok()) return Outcome::Usage(ctx.status().message());
  if (!ctx->empty()) body["context"] = *ctx;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  if (!vars->empty()) body["variables"] = *vars;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (auto t = c.args.Value("timeout")) {
    if (!c.args.Has("wait")) return Outcome::Usage("--timeout is only for --wait");
    if (!IsDigits(*t) || std::stoll(*t) == 0)
      return Outcome::Usage("--timeout needs a whole number of seconds, got '" + *t + "'");
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::stoll(*t));
  }

  auto d = Call(c.client, "POST", BuildPath(p[1], p[2], p[3]) + "/deploy", &body);
  if (!d.ok()) return Outcome::Error(d.status());
  const int64_t id = Int(*d, "id");
  if (!c.args.Has("wait")) {
    if (c.json) {
      c.out << Pretty(*d) << "\n";
    } else {
      c.out << DeploymentLine(*d) << "\n";
      PrintUnmetGates(c.out, *d);
    }
    return Outcome::Ok();
  }
  if (!c.json) {
    c.out << DeploymentLine(*d) << "\n";
    PrintUnmetGates(c.out, *d);
    c.out.flush();
  }
  auto status = FollowDeployment(c, id, 0, c.json, deadline);
  auto final = Call(c.client, "GET", "/api/v1/deployments/" + std::to_string(id));
  if (!status.ok()) {
    if (status.status().code() == Code::kTimeout)
      return Outcome::Error("timed out after " + *c.args.Value("timeout") + " s; deployment " +
                            std::to_string(id) + " is " +
                            (final.ok() ? Str(*final, "status") : std::string("unknown")) +
                            " (it was not cancelled)");
    return Outcome::Error(status.status());
  }
  if (!final.ok()) return Outcome::Error(final.status());
  if (c.json)
    c.out << Pretty(*final) << "\n";
  else
    PrintFinal(c.out, *final);
  return Str(*final, "status") == "succeeded" ? Outcome::Ok() : Outcome::Exit(kExitError);
}

void PrintFiles(std::ostream& out, const char* what, char mark, const Json& files, bool all) {
  if (!files.is_array() || files.empty()) return;
  out << "    " << what << " (" << files.size() << "):\n";
  constexpr size_t kShown = 20;
  size_t shown = 0;
  for (const auto& f : files) {
    if (!all && shown == kShown) {
      out << "      ... and " << (files.size() - kShown) << " more (--all lists every file)\n";
      break;
    }
    out << "      " << mark << " " << (f.is_string() ? f.get<std::string>() : f.dump()) << "\n";
    ++shown;
  }
}

Outcome PreviewCmd(Ctx& c) {
  const auto& p = c.args.positional;  // preview APP RELEASE BUILD STAGE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  Json body = {{"stage", p[4]}};
  auto ctx = ContextOption(c.args);
  if (!ctx.ok()) return Outcome::Usage(ctx.status().message());
  if (!ctx->empty()) body["context"] = *ctx;
  auto r = Call(c.client, "POST", BuildPath(p[1], p[2], p[3]) + "/preview", &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return Outcome::Ok();
  }
  const Json& v = *r;
  const bool all = c.args.Has("all");
  c.out << Str(v, "summary") << "\n";
  c.out << "kind: " << Str(v, "kind") << ", context: " << Str(v, "context", "-") << "\n";
  c.out << "\nfiles:\n";
  for (const auto& t : v.value("targets", Json::array())) {
    std::string current = Str(t, "current");
    c.out << "  target " << Str(t, "target") << " (now: " << (current.empty() ? "nothing" : current)
          << ")\n";
    size_t changes = t.value("added", Json::array()).size() +
                     t.value("overwritten", Json::array()).size() +
                     t.value("deleted", Json::array()).size();
    PrintFiles(c.out, "added", '+', t.value("added", Json::array()), all);
    PrintFiles(c.out, "overwritten", '~', t.value("overwritten", Json::array()), all);
    PrintFiles(c.out, "deleted", '-', t.value("deleted", Json::array()), all);
    c.out << "    " << (changes == 0 ? "no file changes; " : "") << Int(t, "unchanged")
          << " unchanged\n";
  }
  c.out << "\nvariables:\n";
  const Json vars = v.value("variables", Json::array());
  if (vars.empty()) {
    c.out << "  no differences\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "SCOPE", "CHANGE", "AS DEPLOYED", "CURRENT"}};
    for (const auto& x : vars) {
      std::string scope = Str(x, "scope");
      if (!Str(x, "target").empty()) scope += " " + Str(x, "target");
      rows.push_back({Str(x, "name"), scope, Str(x, "change"), Str(x, "as_deployed", "-"),
                      Str(x, "current", "-")});
    }
    PrintTable(c.out, rows, "  ");
  }
  c.out << "\ngates:\n";
  const Json gates = v.value("gates", Json::array());
  if (gates.empty()) c.out << "  none\n";
  for (const auto& g : gates)
    c.out << "  " << (g.value("holds", false) ? "[ok]      " : "[waiting] ") << Str(g, "gate")
          << ": " << Str(g, "detail") << "\n";
  const Json ops = v.value("operations", Json::object());
  if (ops.is_object() && !ops.empty()) {
    c.out << "\nplan:\n";
    for (const auto& [target, lines] : ops.items()) {
      c.out << "  " << target << ":\n";
      for (const auto& l : lines)
        c.out << "    " << (l.is_string() ? l.get<std::string>() : l.dump()) << "\n";
    }
  }
  const Json problems = v.value("problems", Json::array());
  if (!problems.empty()) {
    c.out << "\nproblems:\n";
    for (const auto& pr : problems)
      c.out << "  ! " << (pr.is_string() ? pr.get<std::string>() : pr.dump()) << "\n";
  }
  return Outcome::Ok();
}

Outcome Deployments(Ctx& c) {
  auto limit = c.args.Value("limit");
  if (limit && (!IsDigits(*limit) || std::stoll(*limit) < 1 || std::stoll(*limit) > 1000))
    return Outcome::Usage("--limit must be from 1 to 1000, got '" + *limit + "'");
  QueryString query;
  query.Add("application", c.args.Value("app"))
      .Add("stage", c.args.Value("stage"))
      .Add("status", c.args.Value("status"))
      .Add("limit", limit ? limit : std::optional<std::string>("50"));
  auto r = Call(c.client, "GET", "/api/v1/deployments" + query.str());
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty((*r)["items"]) << "\n";
    return Outcome::Ok();
  }
  const Json items = r->value("items", Json::array());
  if (items.empty()) {
    c.out << "no deployments\n";
    return Outcome::Ok();
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "APPLICATION", "RELEASE", "BUILD", "STAGE", "KIND", "STATUS", "WHEN", "BY"}};
  for (const auto& d : items) {
    std::string when = Str(d, "finished_at");
    if (when.empty()) when = Str(d, "started_at");
    if (when.empty() && Str(d, "status") == "scheduled") when = Str(d, "scheduled_at");
    if (when.empty()) when = Str(d, "created_at");
    rows.push_back({std::to_string(Int(d, "id")), Str(d, "application"), Str(d, "release"),
                    std::to_string(Int(d, "build")), Str(d, "stage"), Str(d, "kind"),
                    Str(d, "status") + (d.value("forced", false) ? " (forced)" : ""), when,
                    Str(d, "requested_by")});
  }
  PrintTable(c.out, rows);
  return Outcome::Ok();
}

Outcome Log(Ctx& c) {
  const std::string& id = c.args.positional[1];
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  if (c.args.Has("follow")) {
    auto status = FollowDeployment(c, std::stoll(id), 0, false, std::nullopt);
    if (!status.ok()) return Outcome::Error(status.status());
    if (!c.json) c.out << "deployment " << id << " " << *status << "\n";
    return *status == "succeeded" ? Outcome::Ok() : Outcome::Exit(kExitError);
  }
  int64_t after = 0;
  Json all = Json::array();
  while (true) {
    auto r =
        Call(c.client, "GET", "/api/v1/deployments/" + id + "/log?after=" + std::to_string(after));
    if (!r.ok()) return Outcome::Error(r.status());
    const Json lines = r->value("lines", Json::array());
    for (const auto& l : lines) {
      after = std::max(after, Int(l, "seq"));
      if (c.json)
        all.push_back(l);
      else
        PrintLogLine(c.out, l);
    }
    if (lines.size() < 10000) break;  // the server's page size
  }
  if (c.json) c.out << Pretty(all) << "\n";
  return Outcome::Ok();
}

Outcome Action(Ctx& c, const std::string& action, const char* done) {
  const std::string& id = c.args.positional[1];
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  Json body = Json::object();
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  auto r = Call(c.client, "POST", "/api/v1/deployments/" + id + "/" + action, &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
  } else {
    c.out << "deployment " << id << " " << done << "; status now " << Str(*r, "status") << "\n";
    PrintUnmetGates(c.out, *r);
  }
  return Outcome::Ok();
}

// `reprise VERB ID [--comment C]`: POST /api/v1/deployments/ID/ACTION, then
// "deployment ID DONE; status now ...".
Command ActionCommand(const std::string& verb, std::string action, const char* done,
                      bool takes_comment = true) {
  std::vector<OptionSpec> options;
  if (takes_comment) options.push_back(ValueOption("comment"));
  return {{verb},
          1,
          std::move(options),
          [action = std::move(action), done](Ctx& c) { return Action(c, action, done); },
          "reprise " + verb + " ID" + (takes_comment ? " [--comment C]" : "")};
}

// deployment show ID: the line, the gates still open, and the result once final.
Outcome ShowDeployment(Ctx& c) {
  const std::string& id = c.Arg(0);
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  auto d = Call(c.client, "GET", "/api/v1/deployments/" + id);
  if (!d.ok()) return Outcome::Error(d.status());
  if (c.json) {
    c.out << Pretty(*d) << "\n";
    return Outcome::Ok();
  }
  c.out << DeploymentLine(*d) << "\n";
  PrintUnmetGates(c.out, *d);
  if (!Str(*d, "finished_at").empty()) PrintFinal(c.out, *d);
  return Outcome::Ok();
}

// move ID --at T: reschedules a scheduled deployment.
Outcome Move(Ctx& c) {
  const std::string& id = c.Arg(0);
  if (!IsDigits(id)) return Outcome::Usage("ID must be a deployment id, got '" + id + "'");
  auto at = c.args.Value("at");
  if (!at) return Outcome::Usage("move needs --at RFC3339");
  if (!ParseRfc3339(*at))
    return Outcome::Usage(
        "--at needs an RFC 3339 time with an offset, e.g. "
        "2026-11-23T22:00:00+01:00; got '" +
        *at + "'");
  Json body = {{"at", *at}};
  auto r = Call(c.client, "PATCH", "/api/v1/deployments/" + id, &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << DeploymentLine(*r) << "\n";
  return Outcome::Ok();
}

Result<Json> CommentBody(const Ctx& c) {
  Json body = Json::object();
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  return body;
}

}  // namespace

CommandGroup DeploymentCommands() {
  static constexpr const char* kHelp =
      R"(  deploy APP RELEASE BUILD STAGE            deploy, promote, re-deploy or roll back
         [--at RFC3339] [--force --comment C] [--context as-deployed|current]
         [--var K=V]... [--wait [--timeout SECONDS]] [--acknowledge-irreversible]
  preview APP RELEASE BUILD STAGE           what a deployment would change
         [--context as-deployed|current] [--all]
  deployments [--app A] [--stage S] [--status S[,S...]] [--limit N]
  log ID [--follow]                         a deployment's log (--follow: live)
  approve ID [--comment C]                  approve a deployment waiting for approval
  reject ID [--comment C]                   reject it
  cancel ID [--comment C]                   cancel a deployment that has not finished
  revoke ID                                 take back your approval of a waiting deployment
  continue ID [--comment C]                 continue a deployment paused at a manual step
  move ID --at RFC3339                      reschedule a scheduled deployment
  deployment show ID                        a deployment's status, open gates and result
  clear-hold APP STAGE [--comment C]        resume automatic promotion after a rollback
  approvals                                 the deployments waiting for you
)";
  return {
      kHelp,
      {
          {{"deploy"},
           4,
           {ValueOption("at"), Flag("force"), ValueOption("comment"), ValueOption("context"),
            RepeatedOption("var"), Flag("wait"), ValueOption("timeout"),
            Flag("acknowledge-irreversible")},
           Deploy,
           "reprise deploy APP RELEASE BUILD STAGE [--at RFC3339] [--force --comment C] "
           "[--context as-deployed|current] [--var K=V]... [--wait [--timeout SECONDS]] "
           "[--acknowledge-irreversible]"},
          {{"preview"},
           4,
           {ValueOption("context"), Flag("all")},
           PreviewCmd,
           "reprise preview APP RELEASE BUILD STAGE [--context as-deployed|current] [--all]"},
          {{"deployments"},
           0,
           {ValueOption("app"), ValueOption("stage"), ValueOption("status"), ValueOption("limit")},
           Deployments,
           "reprise deployments [--app A] [--stage S] [--status S[,S...]] [--limit N]"},
          {{"log"}, 1, {Flag("follow")}, Log, "reprise log ID [--follow]"},
          ActionCommand("approve", "approve", "approved"),
          ActionCommand("reject", "reject", "rejected"),
          ActionCommand("cancel", "cancel", "cancelled"),
          ActionCommand("revoke", "revoke-approval", "approval revoked", /*takes_comment=*/false),
          ActionCommand("continue", "continue", "continued"),
          {{"move"}, 1, {ValueOption("at")}, Move, "reprise move ID --at RFC3339"},
          {{"deployment", "show"}, 1, {}, ShowDeployment, "reprise deployment show ID"},
          ApiCommand({.words = {"clear-hold"},
                      .call = {"POST", "/api/v1/applications/{APP}/stages/{STAGE}/clear-hold",
                               CommentBody},
                      .options = {ValueOption("comment")},
                      .options_usage = "[--comment C]"}),
          ApiCommand({.words = {"approvals"}, .call = {"GET", "/api/v1/me/approvals"}}),
      }};
}

}  // namespace reprise::cli
