// The administration commands: retention (preview and run), verify (the
// artifact store against its records) and the audit log.
#include "cli/command.h"

namespace reprise::cli {

namespace {

Result<Json> RetentionBody(const Ctx& c, bool run) {
  Json body = {{"dry_run", !run}};
  const std::pair<const char*, const char*> kFields[] = {
      {"keep-builds", "keep_builds"},
      {"keep-days", "keep_days"},
      {"keep-rollback-candidates", "keep_rollback_candidates"}};
  for (const auto& [option, field] : kFields)
    if (auto v = c.args.Value(option)) {
      auto n = ParseInteger(*v, std::string("--") + option, 0, 1000000);
      if (!n.ok()) return n.status();
      body[field] = *n;
    }
  return body;
}

// retention preview|run: what is (or would be) deleted, and why.
Outcome Retention(Ctx& c, bool run) {
  auto body = RetentionBody(c, run);
  if (!body.ok()) return Outcome::Usage(body.status().message());
  auto r = Call(c.client, "POST", "/api/v1/admin/retention", &*body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return Outcome::Ok();
  }
  const Json deleted = r->value("deleted", Json::array());
  c.out << (run ? "deleted " : "would delete ") << deleted.size() << " build"
        << (deleted.size() == 1 ? "" : "s") << ", "
        << FormatBytes(static_cast<double>(Int(*r, "bytes_freed"))) << " freed"
        << (run ? "" : " (a preview: 'reprise retention run' deletes)") << "\n";
  std::vector<std::vector<std::string>> rows = {
      {"APPLICATION", "RELEASE", "BUILD", "AGE (DAYS)", "DECISION", "REASONS"}};
  const Json kept = r->value("kept", Json::array());
  for (const Json* list : {&deleted, &kept})
    for (const auto& d : *list) {
      std::string reasons;
      for (const auto& x : d.value("reasons", Json::array()))
        reasons += std::string(reasons.empty() ? "" : "; ") +
                   (x.is_string() ? x.get<std::string>() : x.dump());
      rows.push_back({Str(d, "application"), Str(d, "release"), std::to_string(Int(d, "build")),
                      std::to_string(Int(d, "age_days")), Str(d, "decision"), reasons});
    }
  if (rows.size() > 1) PrintTable(c.out, rows);
  for (const auto& w : r->value("warnings", Json::array()))
    c.out << "warning: " << (w.is_string() ? w.get<std::string>() : w.dump()) << "\n";
  return Outcome::Ok();
}

std::string AuditQuery(const Ctx& c) {
  QueryString q;
  for (const char* key : {"action", "subject", "actor", "from", "to", "limit"})
    q.Add(key, c.args.Value(key));
  return q.str();
}

Outcome Audit(Ctx& c) {
  if (auto limit = c.args.Value("limit"); limit && !ParseInteger(*limit, "--limit", 1, 1000).ok())
    return Outcome::Usage("--limit must be from 1 to 1000, got '" + *limit + "'");
  std::string query = AuditQuery(c);
  if (c.args.Has("csv")) {
    auto r = c.client.Get("/api/v1/audit" + query + (query.empty() ? "?" : "&") + "format=csv");
    if (!r.ok()) return Outcome::Error(r.status());
    if (r->status / 100 != 2) return Outcome::Error(ApiError(*r));
    c.out << r->body;
    return Outcome::Ok();
  }
  auto r = Call(c.client, "GET", "/api/v1/audit" + query);
  if (!r.ok()) return Outcome::Error(r.status());
  return PrintAnswer(c, *r,
                     {.columns = {"id", "at", "actor", "action", "subject", "summary"},
                      .empty = "no audit entries"});
}

const std::vector<OptionSpec> kRetentionOptions = {
    ValueOption("keep-builds"), ValueOption("keep-days"), ValueOption("keep-rollback-candidates")};
constexpr const char* kRetentionUsage =
    "[--keep-builds N] [--keep-days N] [--keep-rollback-candidates N]";

}  // namespace

CommandGroup AdminCommands() {
  std::vector<Command> commands = {
      {{"retention", "preview"},
       0,
       kRetentionOptions,
       [](Ctx& c) { return Retention(c, false); },
       std::string("reprise retention preview ") + kRetentionUsage,
       "which builds retention would delete, and why"},
      {{"retention", "run"},
       0,
       kRetentionOptions,
       [](Ctx& c) { return Retention(c, true); },
       std::string("reprise retention run ") + kRetentionUsage,
       "delete them (admin)"},
      ApiCommand(
          {.words = {"verify"},
           .call = {"POST", "/api/v1/admin/verify"},
           .view = {.exit =
                        [](const Json& j) { return j.value("ok", false) ? kExitOk : kExitError; }},
           .summary = "re-hash the artifact store; exit 1 on a problem"}),
      {{"audit"},
       0,
       {ValueOption("action"), ValueOption("subject"), ValueOption("actor"), ValueOption("from"),
        ValueOption("to"), ValueOption("limit"), Flag("csv")},
       Audit,
       "reprise audit [--action A] [--subject S] [--actor U] [--from T] [--to T] [--limit N] "
       "[--csv]",
       "the audit log, newest first"},
  };
  static const std::string help = GroupHelp(commands);
  return {help.c_str(), commands};
}

}  // namespace reprise::cli
