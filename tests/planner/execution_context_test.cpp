#include "planner/execution_context.h"

#include <doctest/doctest.h>

#include "tests/planner/fakes.h"

namespace reprise {

TEST_CASE("a context round-trips through JSON, sensitive values included") {
  ExecutionContext c = SampleContext({"web-1", "web-2"});
  c.is_redeploy = true;
  c.is_rollback = true;
  c.plan_name = "deploy-web";
  c.plan_text = "- log: hi\n";
  c.targets[1].variables["Slot"] = {"blue", false};
  c.variables[Scope::kDeployment]["Reason"] = {"hotfix", false};
  c.artifact_manifest_hash["web"] = std::string(64, 'd');
  std::string json = ContextToJson(c);
  auto back = ContextFromJson(json);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(*back == c);
  CHECK(json.find("pa55-w0rd") != std::string::npos);
}

TEST_CASE("the display JSON masks sensitive values") {
  ExecutionContext c = SampleContext();
  std::string display = ContextToDisplayJson(c);
  CHECK(display.find("pa55-w0rd") == std::string::npos);
  CHECK(display.find("******") != std::string::npos);
}

TEST_CASE("bad context JSON is refused with a reason") {
  CHECK(ContextFromJson("[1]").status().message() == "execution context must be a JSON object");
  CHECK(ContextFromJson("{\"variables\": {\"galaxy\": {}}}").status().message() ==
        "unknown variable scope \"galaxy\"");
  CHECK(ContextFromJson("{\"variables\": {\"global\": {\"IsRollback\": {\"value\": \"x\"}}}}")
            .status()
            .message() == "variable $IsRollback in global scope is built in and cannot be set");
  CHECK_FALSE(ContextFromJson("{").ok());
  CHECK_FALSE(ContextFromJson("{\"targets\": [{\"agent\": \"a\"}]}").ok());
}

TEST_CASE("built-ins come from the context; target ones only for a target") {
  ExecutionContext c = SampleContext({"web-1"});
  c.is_rollback = true;
  VariableScopes plan_level = c.ScopesFor(nullptr);
  CHECK(plan_level.Find("ApplicationName")->variable.value == "shop");
  CHECK(plan_level.Find("ReleaseNumber")->variable.value == "1.0.2");
  CHECK(plan_level.Find("BuildNumber")->variable.value == "3");
  CHECK(plan_level.Find("StageName")->variable.value == "Production");
  CHECK(plan_level.Find("EnvironmentName")->variable.value == "Production");
  CHECK(plan_level.Find("DeploymentId")->variable.value == "d-17");
  CHECK(plan_level.Find("ExecutionUser")->variable.value == "alice");
  CHECK(plan_level.Find("IsRedeploy")->variable.value == "false");
  CHECK(plan_level.Find("IsRollback")->variable.value == "true");
  CHECK(plan_level.Find("PreviousBuildNumber")->variable.value == "2");
  CHECK_FALSE(plan_level.Find("TargetName").has_value());
  // Two artifacts: $ArtifactSha256 would be ambiguous.
  CHECK_FALSE(plan_level.Find("ArtifactSha256").has_value());
  c.artifact_sha256.erase("config");
  VariableScopes on_target = c.ScopesFor(&c.targets[0]);
  CHECK(on_target.Find("TargetName")->variable.value == "web-1");
  CHECK(on_target.Find("TargetPath")->variable.value == "/srv/web-1");
  CHECK(on_target.Find("ArtifactSha256")->variable.value == std::string(64, 'a'));
  CHECK(on_target.Find("DatabaseUrl")->scope == Scope::kEnvironment);
}

TEST_CASE("diff lists added, removed and changed variables, masking secrets") {
  ExecutionContext before = SampleContext({"web-1"});
  ExecutionContext after = before;
  after.variables[Scope::kApplication]["Port"] = {"9090", false};
  after.variables[Scope::kEnvironment]["DatabasePassword"] = {"n3w-pa55", true};
  after.variables[Scope::kEnvironment].erase("DatabaseUrl");
  after.variables[Scope::kGlobal]["Region"] = {"eu", false};
  after.targets[0].variables["Slot"] = {"green", false};
  after.artifact_sha256["web"] = std::string(64, 'b');
  ContextDiff diff = Diff(before, after);
  CHECK_FALSE(diff.empty());
  CHECK_FALSE(diff.plan_changed);
  CHECK(diff.artifacts_changed == std::vector<std::string>{"web"});
  std::vector<std::string> lines = diff.Describe();
  CHECK(lines == std::vector<std::string>{
                     "changed application variable Port: 8080 -> 9090",
                     "added target web-1 variable Slot: green",
                     "changed environment variable DatabasePassword: ****** -> ******",
                     "removed environment variable DatabaseUrl: was postgres://db/shop",
                     "added global variable Region: eu",
                     "artifact web differs",
                 });
  for (const auto& line : lines) {
    CHECK(line.find("pa55") == std::string::npos);
  }
  CHECK(Diff(before, before).empty());
}

TEST_CASE("validate refuses duplicate targets and bad names") {
  ExecutionContext c = SampleContext({"a", "a"});
  CHECK(c.Validate().message() == "target a listed twice");
  c = SampleContext({"a"});
  c.targets[0].variables["bad-name"] = {"x", false};
  CHECK(c.Validate().message() == "bad variable name \"bad-name\" in target a");
}

}  // namespace reprise
