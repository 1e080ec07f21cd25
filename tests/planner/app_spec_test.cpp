#include "planner/app_spec.h"

#include <doctest/doctest.h>

#include <string>

#include "common/clock.h"
#include "tests/planner/parse_errors.h"

namespace reprise {
namespace {

constexpr const char* kSpec = R"(variables:
  Port: "8080"
  ApiKey: { value: k-123, sensitive: true }
pipeline:
  - stage: Integration
    environment: Integration
    targets: [int-web]
    plan: deploy-web
    auto_promote: true
  - stage: Production
    environment: Production
    targets: [prod-web-1, prod-web-2]
    plan: deploy-web
    protected: true
    gates:
      approvals: { count: 2, role: release-manager }
      window: ["Mon-Fri 22:00-06:00"]
      allow_self_approval: false
plans:
  deploy-web: |
    - log: "Deploying $ApplicationName"
    - deploy-artifact: { artifact: web }
)";

}  // namespace

TEST_CASE("a spec parses with stages, gates, plans and variables") {
  auto spec = ParseAppSpec(kSpec, "shop.yaml");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(spec->variables.at("Port") == Variable{"8080", false});
  CHECK(spec->variables.at("ApiKey") == Variable{"k-123", true});
  REQUIRE(spec->pipeline.size() == 2);
  const StageSpec& integration = spec->pipeline[0];
  CHECK(integration.auto_promote);
  CHECK_FALSE(integration.is_protected);
  CHECK(integration.gates.approvals.count == 0);
  const StageSpec* production = spec->FindStage("Production");
  REQUIRE(production != nullptr);
  CHECK(production->is_protected);
  CHECK(production->targets == std::vector<std::string>{"prod-web-1", "prod-web-2"});
  CHECK(production->gates.approvals.count == 2);
  CHECK(production->gates.approvals.role == "release-manager");
  REQUIRE(production->gates.windows.size() == 1);
  CHECK(production->position == SourcePosition{10, 5});
  CHECK(spec->plans.at("deploy-web").find("deploy-artifact") != std::string::npos);
}

TEST_CASE("canonical JSON parses back to the same spec; masking is optional") {
  auto spec = ParseAppSpec(kSpec, "shop.yaml");
  REQUIRE(spec.ok());
  std::string json = AppSpecToJson(*spec);
  auto again = ParseAppSpec(json, "stored.json");
  REQUIRE_MESSAGE(again.ok(), again.status().message());
  CHECK(AppSpecToJson(*again) == json);
  CHECK(again->variables.at("ApiKey").sensitive);
  std::string masked = AppSpecToJson(*spec, SensitiveValues::kMask);
  CHECK(masked.find("k-123") == std::string::npos);
  CHECK(masked.find("******") != std::string::npos);
  CHECK(json.find("k-123") != std::string::npos);
}

TEST_CASE("spec errors carry position and name the key") {
  CheckSpecEdits(
      kSpec, "shop.yaml",
      {
          {"auto_promote: true", "auto_promot: true",
           "shop.yaml:9:5: unknown key 'auto_promot' in a pipeline stage (allowed: stage, "
           "environment, targets, plan, auto_promote, protected, gates)"},
          {"stage: Production", "stage: Integration",
           "shop.yaml:10:5: duplicate stage 'Integration'"},
          {"plan: deploy-web\n    auto", "plan: deploy-api\n    auto",
           "shop.yaml:5:5: stage 'Integration' uses plan 'deploy-api', which is not in 'plans'"},
          {"{ artifact: web }", "{ artifact: web, mdoe: x }",
           "shop.yaml:20:15: plan 'deploy-web' line 2 column 37: unknown key 'mdoe' in "
           "deploy-artifact (allowed: artifact, to, mode, keep)"},
          {"count: 2", "count: two",
           "shop.yaml:16:27: 'count' in approvals must be an integer, not \"two\""},
          {"role: release-manager }", "role: release-manger }",
           "shop.yaml:16:36: unknown role 'release-manger' in approvals (expected: viewer, "
           "deployer, release-manager, admin)"},
          {"Mon-Fri 22:00-06:00", "weekdays",
           "shop.yaml:17:16: 'window' in gates: bad deployment window \"weekdays\": missing time "
           "range (expected e.g. \"Mon-Fri 22:00-06:00\" or \"daily 01:00-05:00 Europe/Berlin\"; "
           "UTC unless a time zone is named)"},
          {"sensitive: true", "secret: true",
           "shop.yaml:3:27: unknown key 'secret' in variable 'ApiKey' (allowed: value, sensitive)"},
          {"variables:", "variable:",
           "shop.yaml:1:1: unknown key 'variable' in the application spec (allowed: description, "
           "variables, pipeline, plans)"},
          {"  Port: \"8080\"", "  IsRollback: \"x\"",
           "shop.yaml:2:3: variable 'IsRollback' is built in and cannot be set"},
          {"    environment: Integration\n", "",
           "shop.yaml:5:5: missing key 'environment' in a pipeline stage"},
          {"[int-web]", "[]", "shop.yaml:7:14: 'targets' in stage 'Integration' is empty"},
      });
  CHECK(SpecErrorOf("pipeline: [\n", "shop.yaml").rfind("shop.yaml:", 0) == 0);
  CHECK(SpecErrorOf("", "shop.yaml") == "shop.yaml:0:0: the application spec is empty");
}

TEST_CASE("a spec in JSON is accepted, plans as text") {
  auto spec = ParseAppSpec(R"({
  "variables": {"Port": "9090"},
  "pipeline": [{"stage": "Dev", "environment": "Dev", "targets": ["t1"], "plan": "p"}],
  "plans": {"p": "- log: hello\n"}
})",
                           "shop.json");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(spec->pipeline[0].stage == "Dev");
  auto bad = ParseAppSpec(R"({"pipeline": [], "plans": {"p": "- lgo: hello\n"}})", "s.json");
  REQUIRE_FALSE(bad.ok());
  INFO(bad.status().message());
  CHECK(bad.status().message().rfind("s.json:1:33: plan 'p' line 1 column 3: unknown operation "
                                     "'lgo'",
                                     0) == 0);
}

TEST_CASE("a plan may be written inline as YAML steps") {
  auto spec = ParseAppSpec(R"(pipeline: []
plans:
  p:
    - log: hi
    - deploy-artifact: web
)",
                           "s.yaml");
  REQUIRE_MESSAGE(spec.ok(), spec.status().message());
  CHECK(ParsePlan(spec->plans.at("p"), "p").ok());
}

TEST_CASE("deployment windows") {
  auto at = [](const char* rfc3339) { return *ParseRfc3339(rfc3339); };
  auto w = ParseDeploymentWindow("Mon-Fri 22:00-06:00");
  REQUIRE(w.ok());
  // 2026-11-23 is a Monday.
  CHECK(w->Contains(at("2026-11-23T22:30:00Z")));
  CHECK(w->Contains(at("2026-11-24T05:59:00Z")));  // Monday's window, after midnight
  CHECK_FALSE(w->Contains(at("2026-11-23T21:59:00Z")));
  CHECK_FALSE(w->Contains(at("2026-11-23T03:00:00Z")));  // belongs to Sunday: closed
  CHECK(w->Contains(at("2026-11-28T03:00:00Z")));        // Saturday early: Friday's window
  CHECK_FALSE(w->Contains(at("2026-11-28T22:30:00Z")));
  auto daily = ParseDeploymentWindow("daily 01:00-05:00");
  REQUIRE(daily.ok());
  CHECK(daily->Contains(at("2026-11-29T01:00:00Z")));
  CHECK_FALSE(daily->Contains(at("2026-11-29T05:00:00Z")));
  auto weekend = ParseDeploymentWindow("Sat,Sun 08:00-12:00");
  REQUIRE(weekend.ok());
  CHECK(weekend->weekdays == 0b1000001);
  for (const char* bad : {"Mon-Fri", "Mon-Fri 9:00-17:00", "Xyz 09:00-10:00", "Mon 10:00-10:00",
                          "Mon 25:00-26:00", "Mon 09:00"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseDeploymentWindow(bad).ok());
  }
}

}  // namespace reprise
