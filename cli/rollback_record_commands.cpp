// The rollback-record commands (docs/cli.md): create, show, select,
// test-connection, submit, approve, reject, execute, validate, validation, list.
#include "cli/command.h"

namespace reprise::cli {
namespace {

std::string RecordPath(const std::string& rid, const std::string& what = "") {
  return "/api/v1/rollback-records/" + PathSegment(rid) + (what.empty() ? "" : "/" + what);
}

Json Selection(const ParsedArgs& args) {
  Json body = Json::object();
  auto components = args.Values("component");
  auto exclude = args.Values("exclude");
  if (!components.empty()) body["components"] = components;
  if (!exclude.empty()) body["exclude"] = exclude;
  return body;
}

void PrintRecord(std::ostream& out, const Json& r) {
  out << "rollback record " << Int(r, "id") << " (" << Str(r, "status") << "): deployment "
      << Int(r, "deployment_id") << ", " << Str(r, "application") << " " << Str(r, "release")
      << " build " << Int(r, "build") << " on " << Str(r, "stage") << "\n";
  out << "  " << Int(r, "components_selected") << " of " << Int(r, "components_total")
      << " components selected; created by " << Str(r, "created_by");
  if (!Str(r, "submitted_by").empty()) out << ", submitted by " << Str(r, "submitted_by");
  if (!Str(r, "executed_by").empty()) out << ", executed by " << Str(r, "executed_by");
  if (!Str(r, "validated_by").empty()) out << ", validated by " << Str(r, "validated_by");
  out << "\n";
  if (r.contains("approval_rule")) out << "  approval: " << Str(r, "approval_rule") << "\n";
  std::vector<std::vector<std::string>> rows = {{"TARGET", "TYPE", "SELECTED", "PATH"}};
  for (const auto& c : r.value("components", Json::array()))
    rows.push_back({Str(c, "target"), Str(c, "type"), c.value("selected", false) ? "yes" : "no",
                    Str(c, "path")});
  if (rows.size() > 1) PrintTable(out, rows, "  ");
  const Json& connection = r.value("connection", Json());
  if (connection.is_object())
    for (const auto& t : connection.value("targets", Json::array()))
      if (!t.value("ok", false)) {
        out << "  ! " << Str(t, "target") << ": " << Str(t, "problem") << "\n";
        for (const auto& d : t.value("drifted", Json::array()))
          out << "      " << Str(d, "path") << ": " << Str(d, "problem") << "\n";
      }
  for (const auto& w : r.value("warnings", Json::array()))
    out << "  warning: " << (w.is_string() ? w.get<std::string>() : w.dump()) << "\n";
  if (!Str(r, "log").empty()) out << "  log: " << Str(r, "log") << "\n";
  if (!Str(r, "error").empty()) out << "  error: " << Str(r, "error") << "\n";
}

Outcome Show(Ctx& c, const Result<Json>& r) {
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    PrintRecord(c.out, *r);
  return Outcome::Ok();
}

Json CommentBody(const ParsedArgs& args) {
  Json body = Json::object();
  if (auto comment = args.Value("comment")) body["comment"] = *comment;
  return body;
}

Outcome Create(Ctx& c) {
  Json body = Selection(c.args);
  if (auto comment = c.args.Value("comment")) body["comment"] = *comment;
  return Show(c,
              Call(c.client, "POST",
                   "/api/v1/deployments/" + PathSegment(c.args.positional[2]) + "/rollback-records",
                   &body));
}

Outcome ShowRecord(Ctx& c) {
  return Show(c, Call(c.client, "GET", RecordPath(c.args.positional[2])));
}

Outcome Select(Ctx& c) {
  Json body = Selection(c.args);
  if (!body.contains("components")) body["components"] = Json::array();
  if (!body.contains("exclude")) body["exclude"] = Json::array();
  return Show(c, Call(c.client, "PATCH", RecordPath(c.args.positional[2]), &body));
}

std::function<Outcome(Ctx&)> Action(const char* verb) {
  return [verb](Ctx& c) {
    Json body = CommentBody(c.args);
    if (auto at = c.args.Value("at")) body["at"] = *at;
    if (c.args.Has("acknowledge-irreversible")) body["acknowledge_irreversible"] = true;
    return Show(c, Call(c.client, "POST", RecordPath(c.args.positional[2], verb), &body));
  };
}

// validate RID: validates, then prints the validation file's text form.
// Exit 0 validated, 1 validation failed.
Outcome Validate(Ctx& c) {
  const std::string& rid = c.args.positional[2];
  Json body = Json::object();
  auto r = Call(c.client, "POST", RecordPath(rid, "validate"), &body);
  if (!r.ok()) return Outcome::Error(r.status());
  const bool ok = Str(*r, "status") == "validated";
  if (c.json) {
    auto file = Call(c.client, "GET", RecordPath(rid, "validation"));
    if (!file.ok()) return Outcome::Error(file.status());
    c.out << Pretty(*file) << "\n";
  } else {
    auto text = c.client.Get(RecordPath(rid, "validation") + "?format=text");
    if (!text.ok()) return Outcome::Error(text.status());
    if (text->status / 100 != 2) return Outcome::Error(ApiError(*text));
    c.out << text->body;
  }
  return ok ? Outcome::Ok() : Outcome::Exit(kExitError);
}

// validation RID: the validation file of a validated record, without validating again.
Outcome Validation(Ctx& c) {
  const std::string& rid = c.args.positional[2];
  if (c.json) {
    auto file = Call(c.client, "GET", RecordPath(rid, "validation"));
    if (!file.ok()) return Outcome::Error(file.status());
    c.out << Pretty(*file) << "\n";
    return Outcome::Ok();
  }
  auto text = c.client.Get(RecordPath(rid, "validation") + "?format=text");
  if (!text.ok()) return Outcome::Error(text.status());
  if (text->status / 100 != 2) return Outcome::Error(ApiError(*text));
  c.out << text->body;
  return Outcome::Ok();
}

Outcome List(Ctx& c) {
  QueryString query;
  query.Add("application", c.args.Value("app"));
  for (const char* key : {"stage", "status", "from", "to", "limit"})
    query.Add(key, c.args.Value(key));
  if (c.args.Has("csv")) {
    query.Add("format", std::optional<std::string>("csv"));
    auto r = c.client.Get("/api/v1/rollback-records" + query.str());
    if (!r.ok()) return Outcome::Error(r.status());
    if (r->status / 100 != 2) return Outcome::Error(ApiError(*r));
    c.out << r->body;
    return Outcome::Ok();
  }
  auto r = Call(c.client, "GET", "/api/v1/rollback-records" + query.str());
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty((*r)["items"]) << "\n";
    return Outcome::Ok();
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "STATUS", "APPLICATION", "STAGE", "BUILD",
                                                 "DEPLOYMENT", "SELECTED", "CREATED BY",
                                                 "EXECUTED BY", "VALIDATED BY"}};
  for (const auto& x : r->value("items", Json::array()))
    rows.push_back(
        {std::to_string(Int(x, "id")), Str(x, "status"), Str(x, "application"), Str(x, "stage"),
         Str(x, "release") + " build " + std::to_string(Int(x, "build")),
         std::to_string(Int(x, "deployment_id")),
         std::to_string(Int(x, "components_selected")) + "/" +
             std::to_string(Int(x, "components_total")),
         Str(x, "created_by", "-"), Str(x, "executed_by", "-"), Str(x, "validated_by", "-")});
  if (rows.size() == 1) {
    c.out << "no rollback records\n";
    return Outcome::Ok();
  }
  PrintTable(c.out, rows);
  return Outcome::Ok();
}

}  // namespace

CommandGroup RollbackRecordCommands() {
  static constexpr const char* kHelp =
      R"(  rollback-record create DEPLOYMENT [--component P]... [--exclude P]... [--comment C]
                                            roll back chosen files of a succeeded deployment
  rollback-record show|test-connection|submit|approve|reject|validate ID [--comment C]
  rollback-record select ID [--component P]... [--exclude P]...   change a draft's selection
  rollback-record execute ID [--at T] [--acknowledge-irreversible]
                                            run an approved record now or at T
  rollback-record list [--app A] [--stage S] [--status S] [--from T] [--to T] [--csv]
  rollback-record validation ID             the validation file of a validated record
)";
  const std::string rr = "rollback-record";
  const OptionSpec comment = ValueOption("comment");
  return {
      kHelp,
      {
          {{rr, "create"},
           1,
           {RepeatedOption("component"), RepeatedOption("exclude"), comment},
           Create,
           "reprise rollback-record create DEPLOYMENT [--component PATH]... [--exclude PATH]... "
           "[--comment C]"},
          {{rr, "show"}, 1, {}, ShowRecord, "reprise rollback-record show ID"},
          {{rr, "select"},
           1,
           {RepeatedOption("component"), RepeatedOption("exclude")},
           Select,
           "reprise rollback-record select ID [--component PATH]... [--exclude PATH]..."},
          {{rr, "test-connection"},
           1,
           {},
           Action("test-connection"),
           "reprise rollback-record test-connection ID"},
          {{rr, "submit"},
           1,
           {comment},
           Action("submit"),
           "reprise rollback-record submit ID [--comment C]"},
          {{rr, "approve"},
           1,
           {comment},
           Action("approve"),
           "reprise rollback-record approve ID [--comment C]"},
          {{rr, "reject"},
           1,
           {comment},
           Action("reject"),
           "reprise rollback-record reject ID [--comment C]"},
          {{rr, "execute"},
           1,
           {ValueOption("at"), Flag("acknowledge-irreversible")},
           Action("execute"),
           "reprise rollback-record execute ID [--at T] [--acknowledge-irreversible]"},
          {{rr, "validate"}, 1, {}, Validate, "reprise rollback-record validate ID"},
          {{rr, "validation"}, 1, {}, Validation, "reprise rollback-record validation ID"},
          {{rr, "list"},
           0,
           {ValueOption("app"), ValueOption("stage"), ValueOption("status"), ValueOption("from"),
            ValueOption("to"), ValueOption("limit"), Flag("csv")},
           List,
           "reprise rollback-record list [--app A] [--stage S] [--status S] [--from T] [--to T] "
           "[--csv]"},
      }};
}

}  // namespace reprise::cli
