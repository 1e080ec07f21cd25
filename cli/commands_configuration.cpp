// The configuration commands: environments, targets and global variables
// (list, show, set), application specs (show, set from a file), releases
// and builds (list, show, seal) and an artifact's manifest.
#include <fstream>
#include <sstream>

#include "cli/command.h"

namespace reprise::cli {

namespace {

// --var K=V and --sensitive-var K=V as the API's variables object.
Result<Json> Variables(const Ctx& c) {
  auto vars = VariablesFrom(c.args);
  if (!vars.ok()) return vars.status();
  for (const auto& kv : c.args.Values("sensitive-var")) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return InvalidArgument("--sensitive-var needs NAME=VALUE, got '" + kv + "'");
    (*vars)[kv.substr(0, eq)] = {{"value", kv.substr(eq + 1)}, {"sensitive", true}};
  }
  return Json{{"variables", *vars}};
}

Result<Json> TargetBody(const Ctx& c) {
  auto body = Variables(c);
  if (!body.ok()) return body.status();
  for (const char* field : {"environment", "agent", "path"}) {
    auto v = c.args.Value(field);
    if (!v) return InvalidArgument(std::string("target set needs --") + field);
    (*body)[field] = *v;
  }
  return body;
}

// app set APP FILE: the spec (YAML or JSON) as the body, as written.
Outcome SetApplication(Ctx& c) {
  std::ifstream in(c.Arg(1), std::ios::binary);
  if (!in) return Outcome::Error("cannot open " + c.Arg(1));
  std::ostringstream text;
  text << in.rdbuf();
  auto r = c.client.Send("PUT", "/api/v1/applications/" + PathSegment(c.Arg(0)), text.str(),
                         "application/yaml");
  if (!r.ok()) return Outcome::Error(r.status());
  if (r->status / 100 != 2) return Outcome::Error(ApiError(*r));
  Json j = Json::parse(r->body, nullptr, false);
  if (c.json) {
    c.out << Pretty(j) << "\n";
  } else {
    c.out << "application " << Str(j, "name") << ": spec version " << Int(j, "spec_version")
          << "\n";
  }
  return Outcome::Ok();
}

// app show APP: the spec as stored (sensitive values masked).
Outcome ShowApplication(Ctx& c) {
  auto r = Call(c.client, "GET", "/api/v1/applications/" + PathSegment(c.Arg(0)));
  if (!r.ok()) return Outcome::Error(r.status());
  if (c.json)
    c.out << Pretty(*r) << "\n";
  else
    c.out << Str(*r, "spec_text", Pretty(r->value("spec", Json::object()))) << "\n";
  return Outcome::Ok();
}

const std::vector<OptionSpec> kVariableOptions = {RepeatedOption("var"),
                                                  RepeatedOption("sensitive-var")};
constexpr const char* kVariableUsage = "[--var K=V]... [--sensitive-var K=V]...";

}  // namespace

CommandGroup ConfigurationCommands() {
  std::vector<Command> commands = {
      ApiCommand(
          {.words = {"environment", "list"},
           .call = {"GET", "/api/v1/environments?limit=1000"},
           .view = {.columns = {"name", {"UPDATED", "updated_at"}}, .empty = "no environments"}}),
      ApiCommand({.words = {"environment", "show"}, .call = {"GET", "/api/v1/environments/{ENV}"}}),
      ApiCommand({.words = {"environment", "set"},
                  .call = {"PUT", "/api/v1/environments/{ENV}", Variables},
                  .options = kVariableOptions,
                  .options_usage = kVariableUsage,
                  .summary = "create it, or replace its variables"}),
      ApiCommand(
          {.words = {"target", "list"},
           .call = {"GET", "/api/v1/targets?limit=1000"},
           .view = {.columns = {"name", "environment", "agent", "path"}, .empty = "no targets"}}),
      ApiCommand({.words = {"target", "show"}, .call = {"GET", "/api/v1/targets/{TARGET}"}}),
      ApiCommand({.words = {"target", "set"},
                  .call = {"PUT", "/api/v1/targets/{TARGET}", TargetBody},
                  .options = {ValueOption("environment"), ValueOption("agent"), ValueOption("path"),
                              RepeatedOption("var"), RepeatedOption("sensitive-var")},
                  .options_usage = "--environment E --agent A --path P [--var K=V]...",
                  .summary = "create or replace a target"}),
      ApiCommand({.words = {"variables", "show"},
                  .call = {"GET", "/api/v1/variables"},
                  .summary = "the global variables"}),
      ApiCommand({.words = {"variables", "set"},
                  .call = {"PUT", "/api/v1/variables", Variables},
                  .options = kVariableOptions,
                  .options_usage = kVariableUsage,
                  .summary = "replace the global variables"}),
      {{"app", "show"},
       1,
       {},
       ShowApplication,
       "reprise app show APP",
       "the application's spec (YAML, secrets masked)"},
      {{"app", "set"},
       2,
       {},
       SetApplication,
       "reprise app set APP FILE",
       "create or update it from a spec file"},
      ApiCommand(
          {.words = {"release", "list"},
           .call = {"GET", "/api/v1/applications/{APP}/releases?limit=1000"},
           .view = {.columns = {"number", {"CREATED", "created_at"}, {"BY", "created_by"}, "notes"},
                    .empty = "no releases"}}),
      ApiCommand({.words = {"release", "show"},
                  .call = {"GET", "/api/v1/applications/{APP}/releases/{RELEASE}"}}),
      ApiCommand(
          {.words = {"build", "list"},
           .call = {"GET", "/api/v1/applications/{APP}/releases/{RELEASE}/builds?limit=1000"},
           .view = {.columns = {{"BUILD", "number"},
                                {"CREATED", "created_at"},
                                {"BY", "created_by"},
                                "sealed"},
                    .empty = "no builds"}}),
      ApiCommand({.words = {"build", "show"},
                  .call = {"GET", "/api/v1/applications/{APP}/releases/{RELEASE}/builds/{BUILD}"}}),
      ApiCommand(
          {.words = {"build", "seal"},
           .call = {"POST", "/api/v1/applications/{APP}/releases/{RELEASE}/builds/{BUILD}/seal"},
           .summary = "no artifact can be added after"}),
      ApiCommand(
          {.words = {"artifact", "show"},
           .args = {"APP", "RELEASE", "BUILD", "NAME"},
           .call = {"GET",
                    "/api/v1/applications/{0}/releases/{1}/builds/{2}/artifacts/{3}/manifest"},
           .summary = "an artifact's record and manifest"}),
  };
  static const std::string help = GroupHelp(commands);
  return {help.c_str(), commands};
}

}  // namespace reprise::cli
