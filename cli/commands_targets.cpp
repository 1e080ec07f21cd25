// The target commands: validate, test-connection.
#include "cli/command.h"

namespace reprise::cli {

namespace {

// Exit status of `validate`, like diff(1): 0 the files match, 1 they differ,
// 2 they could not be checked.
constexpr int kValidateDiffers = 1;
constexpr int kValidateTrouble = 2;

std::string Count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

Outcome Validate(Ctx& c) {
  const std::string& target = c.args.positional[1];
  Json body = Json::object();
  auto r = Call(c.client, "POST", "/api/v1/targets/" + PathSegment(target) + "/validate", &body);
  if (!r.ok()) {
    c.err << "error: " << r.status().message() << "\n";
    return Outcome::Exit(kValidateTrouble);
  }
  const Json& v = *r;
  const bool ok = v.value("ok", false);
  if (c.json) {
    c.out << Pretty(v) << "\n";
    return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
  }
  const Json missing = v.value("missing", Json::array());
  const Json changed = v.value("changed", Json::array());
  const Json extra = v.value("extra", Json::array());
  const size_t checked = static_cast<size_t>(Int(v, "files_checked"));
  c.out << Str(v, "target", target) << ": " << Str(v, "release") << " build " << Str(v, "build")
        << " (artifact " << Str(v, "artifact") << ", sha256 " << Str(v, "sha256") << ") on agent "
        << Str(v, "agent") << "\n";
  if (ok) {
    c.out << "ok: " << Count(checked, "file matches", "files match") << "\n";
    return Outcome::Ok();
  }
  c.out << "differs: " << missing.size() << " missing, " << changed.size() << " changed, "
        << extra.size() << " extra (" << Count(checked, "file", "files") << " re-hashed)\n";
  auto text = [](const Json& p) { return p.is_string() ? p.get<std::string>() : p.dump(); };
  for (const auto& p : missing) c.out << "  missing  " << text(p) << "\n";
  for (const auto& p : changed)
    c.out << "  changed  " << Str(p, "path") << ": " << Str(p, "problem") << "\n";
  for (const auto& p : extra) c.out << "  extra    " << text(p) << "\n";
  return Outcome::Exit(kValidateDiffers);
}

// test-connection APP STAGE: every target's agent connected and approved,
// its root writable, its free space.
Outcome TestConnection(Ctx& c) {
  const auto& p = c.args.positional;
  Json body = Json::object();
  auto r = Call(c.client, "POST",
                "/api/v1/applications/" + PathSegment(p[1]) + "/stages/" + PathSegment(p[2]) +
                    "/test-connection",
                &body);
  if (!r.ok()) {
    c.err << "error: " << r.status().message() << "\n";
    return Outcome::Exit(kValidateTrouble);
  }
  const bool ok = r->value("ok", false);
  if (c.json) {
    c.out << Pretty(*r) << "\n";
    return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
  }
  std::vector<std::vector<std::string>> rows = {
      {"TARGET", "AGENT", "CONNECTED", "VERSION", "LATENCY", "WRITABLE", "FREE"}};
  std::vector<std::string> problems;
  for (const auto& t : r->value("targets", Json::array())) {
    const bool connected = t.value("connected", false) && t.value("approved", false);
    const bool answered = connected;  // else nothing was probed
    rows.push_back({Str(t, "target"), Str(t, "agent"),
                    connected ? "yes" : (t.value("connected", false) ? "not approved" : "no"),
                    Str(t, "version", "-"),
                    answered ? std::to_string(Int(t, "latency_ms")) + " ms" : "-",
                    answered ? (t.value("writable", false) ? "yes" : "no") : "-",
                    answered ? FormatBytes(static_cast<double>(Int(t, "free_bytes"))) : "-"});
    if (!Str(t, "problem").empty()) problems.push_back(Str(t, "problem"));
  }
  PrintTable(c.out, rows);
  c.out << (ok ? "ok: every target of " : "problem: not every target of ") << p[1] << " " << p[2]
        << " can be deployed to\n";
  for (const auto& problem : problems) c.out << "  " << problem << "\n";
  return ok ? Outcome::Ok() : Outcome::Exit(kValidateDiffers);
}

}  // namespace

std::vector<Command> TargetCommands() {
  return {
      {{"validate"}, 1, {}, Validate, "reprise validate TARGET"},
      {{"test-connection"}, 2, {}, TestConnection, "reprise test-connection APP STAGE"},
  };
}

}  // namespace reprise::cli
