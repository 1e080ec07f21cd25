// The catalog commands: health, apps, release create, build create, upload.
#include <cstdio>

#include "cli/command.h"
#include "common/crypto.h"

namespace reprise::cli {

namespace {

Outcome Health(Ctx& c) {
  auto r = c.client.Get("/api/v1/health");
  if (!r.ok()) return Outcome::Error(r.status());
  Json j = Json::parse(r->body, nullptr, false);
  if (!j.is_object() || (r->status != 200 && r->status != 503)) return Outcome::Error(ApiError(*r));
  if (c.json) {
    c.out << Pretty(j) << "\n";
  } else {
    const Json& store = j.contains("store") ? j["store"] : Json::object();
    c.out << Str(j, "status") << ": reprise " << Str(j, "version") << " at " << c.client.origin()
          << ", store " << Str(store, "status") << " (schema " << Int(store, "schema_version")
          << ")\n";
  }
  return Str(j, "status") == "ok" ? Outcome::Ok() : Outcome::Exit(kExitError);
}

// Every item of a paged list.
Result<Json> ListAll(ApiClient& client, const std::string& path) {
  Json items = Json::array();
  int64_t offset = 0;
  const char* sep = path.find('?') == std::string::npos ? "?" : "&";
  while (true) {
    auto page = Call(client, "GET", path + sep + "limit=1000&offset=" + std::to_string(offset));
    if (!page.ok()) return page.status();
    for (auto& item : (*page)["items"]) items.push_back(std::move(item));
    if (!page->contains("next_offset") || !(*page)["next_offset"].is_number_integer()) break;
    offset = (*page)["next_offset"].get<int64_t>();
  }
  return items;
}

Outcome Apps(Ctx& c) {
  auto list = ListAll(c.client, "/api/v1/applications");
  if (!list.ok()) return Outcome::Error(list.status());
  Json details = Json::array();
  for (const auto& a : *list) {
    auto d = Call(c.client, "GET", "/api/v1/applications/" + PathSegment(Str(a, "name")));
    if (!d.ok()) return Outcome::Error(d.status());
    details.push_back(std::move(*d));
  }
  if (c.json) {
    c.out << Pretty(details) << "\n";
    return Outcome::Ok();
  }
  if (details.empty()) c.out << "no applications\n";
  bool first = true;
  for (const auto& app : details) {
    if (!first) c.out << "\n";
    first = false;
    std::string description = Str(app.value("spec", Json::object()), "description");
    c.out << Str(app, "name") << (description.empty() ? "" : " - " + description) << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"STAGE", "TARGET", "CURRENT", "DEPLOYED", "BY", "DEPLOYMENT"}};
    std::vector<std::string> notes;
    for (const auto& s : app.value("stages", Json::array())) {
      std::string stage = Str(s, "stage");
      std::string flags;
      if (s.value("protected", false)) flags += " protected";
      if (s.value("auto_promote", false)) flags += " auto-promote";
      if (!flags.empty()) stage += " (" + flags.substr(1) + ")";
      const Json targets = s.value("targets", Json::array());
      if (targets.empty()) rows.push_back({stage, "-", "-", "", "", ""});
      for (const auto& t : targets) {
        const Json& cur = t.contains("current") ? t["current"] : Json();
        if (cur.is_object())
          rows.push_back({stage, Str(t, "target"),
                          Str(cur, "release") + " build " + std::to_string(Int(cur, "build")),
                          Str(cur, "at"), Str(cur, "by"),
                          "#" + std::to_string(Int(cur, "deployment_id"))});
        else
          rows.push_back({stage, Str(t, "target"), "nothing deployed", "", "", ""});
        stage = "";
      }
      if (s.contains("hold") && s["hold"].is_object()) {
        const Json& h = s["hold"];
        notes.push_back(Str(s, "stage") + ": automatic promotion on hold since " + Str(h, "since") +
                        " by " + Str(h, "by") + " (rollback #" +
                        std::to_string(Int(h, "deployment_id")) + ")");
      }
      std::string candidates;
      for (const auto& b : s.value("rollback_candidates", Json::array()))
        candidates += (candidates.empty() ? "" : ", ") + Str(b, "release") + " build " +
                      std::to_string(Int(b, "build"));
      if (!candidates.empty())
        notes.push_back(Str(s, "stage") + ": rollback candidates " + candidates);
    }
    PrintTable(c.out, rows, "  ");
    for (const auto& n : notes) c.out << "  " << n << "\n";
  }
  return Outcome::Ok();
}

Outcome ReleaseCreate(Ctx& c) {
  const auto& p = c.args.positional;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  Json body = {{"number", p[3]}};
  if (!vars->empty()) body["variables"] = *vars;
  auto r = Call(c.client, "POST", "/api/v1/applications/" + PathSegment(p[2]) + "/releases", &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << "created release " << Str(*r, "application") << " " << Str(*r, "number") << "\n";
  return Outcome::Ok();
}

Outcome BuildCreate(Ctx& c) {
  const auto& p = c.args.positional;
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return Outcome::Usage(vars.status().message());
  Json body = Json::object();
  if (!vars->empty()) body["variables"] = *vars;
  auto r = Call(
      c.client, "POST",
      "/api/v1/applications/" + PathSegment(p[2]) + "/releases/" + PathSegment(p[3]) + "/builds",
      &body);
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << Int(*r, "number") << "\n";
  return Outcome::Ok();
}

Outcome Upload(Ctx& c) {
  const auto& p = c.args.positional;  // upload APP RELEASE BUILD NAME FILE
  if (!IsDigits(p[3])) return Outcome::Usage("BUILD must be a build number, got '" + p[3] + "'");
  const std::string build_path = BuildPath(p[1], p[2], p[3]);
  // A cheap check first: a wrong name or token is reported before any bytes move.
  auto build = Call(c.client, "GET", build_path);
  if (!build.ok()) return Outcome::Error(build.status());
  Sha256 hasher;
  uint64_t sent = 0;
  auto r = c.client.PutFile(build_path + "/artifacts/" + PathSegment(p[4]), p[5],
                            [&](const char* data, size_t n) {
                              hasher.Update(data, n);
                              sent += n;
                            });
  if (!r.ok()) return Outcome::Error(r.status());
  if (r->status != 200 && r->status != 201) return Outcome::Error(ApiError(*r));
  Json j = Json::parse(r->body, nullptr, false);
  std::string local = hasher.FinishHex();
  if (Str(j, "sha256") != local)
    return Outcome::Error("the server stored sha256 " + Str(j, "sha256") +
                          " but the file sent has sha256 " + local);
  if (c.json) {
    c.out << Pretty(j) << "\n";
  } else {
    c.out << local << "\n";
    c.err << "artifact " << p[4] << " of " << p[1] << " " << p[2] << " build " << p[3] << ": "
          << FormatBytes(static_cast<double>(sent)) << ", " << Int(j, "file_count") << " files, "
          << (r->status == 201 ? "stored" : "already stored (identical bytes)") << "\n";
  }
  return Outcome::Ok();
}

}  // namespace

std::vector<Command> CatalogCommands() {
  return {
      {{"health"}, 0, {}, Health, "reprise health"},
      {{"apps"}, 0, {}, Apps, "reprise apps"},
      {{"release", "create"},
       2,
       {"var"},
       ReleaseCreate,
       "reprise release create APP NUMBER [--var K=V]..."},
      {{"build", "create"},
       2,
       {"var"},
       BuildCreate,
       "reprise build create APP RELEASE [--var K=V]..."},
      {{"upload"}, 5, {}, Upload, "reprise upload APP RELEASE BUILD NAME FILE"},
  };
}

}  // namespace reprise::cli
