// GET /metrics end to end: a real server, a deployment through the API, a
// scheduled one fired on the fake clock; the scrape is read as Prometheus
// would read it and the counters must have moved.
#include <doctest/doctest.h>

#include <sstream>

#include "tests/server/engine/engine_test_support.h"

namespace reprise::testing {
namespace {

// The value of the sample `series` (name with its labels, as exposed), or -1.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

PipelineOptions QuickPipeline(Clock* clock = nullptr) {
  PipelineOptions o;
  o.integration_plan = "quick";
  o.testing_plan = "quick";
  o.start_agent = false;  // the plans need no agent
  if (clock) o.server.clock = clock;
  return o;
}

}  // namespace

TEST_CASE("GET /metrics needs a viewer's token unless the server makes it public") {
  PipelineFixture f(QuickPipeline());
  auto anonymous = f.server().Anonymous().Get("/metrics");
  CHECK(anonymous.status == 401);
  auto viewer = f.Viewer().Get("/metrics");
  REQUIRE(viewer.status == 200);
  CHECK(viewer.headers["content-type"].find("text/plain; version=0.0.4") == 0);
  CHECK(viewer.body.find("# TYPE reprise_http_requests_total counter") != std::string::npos);

  ServerOptions open;
  open.metrics_public = true;
  open.server_id = "web1-metrics";
  TestServer server(open);
  auto scraped = server.Anonymous().Get("/metrics");
  CHECK(scraped.status == 200);
  CHECK(scraped.body.find("reprise_agents{status=\"online\"} 0") != std::string::npos);
  // Which of several servers answered: its id.
  CHECK(Sample(scraped.body, "reprise_server_info{server_id=\"web1-metrics\"}") == 1);
}

TEST_CASE("a scrape after a deployment shows it counted, timed and its requests") {
  FakeClock clock(*ParseRfc3339("2026-06-01T10:00:00Z"));
  PipelineFixture f(QuickPipeline(&clock));
  auto admin = f.Admin();
  const std::string before = f.Viewer().Get("/metrics").body;
  const std::string ok_series =
      "reprise_deployments_total{application=\"shop\",kind=\"promote\",stage=\"Integration\","
      "status=\"succeeded\"}";
  CHECK(Sample(before, ok_series) == -1);

  auto d = f.Deploy(admin, 1, {{"stage", "Integration"}});
  CHECK(f.WaitFinal(d["id"])["status"] == "succeeded");
  // One more, scheduled an hour ahead and fired by moving the clock there.
  auto due = clock.Now() + std::chrono::hours(1);
  auto scheduled = f.Deploy(admin, 2, {{"stage", "Integration"}, {"at", FormatRfc3339Utc(due)}});
  const std::string pending = f.Viewer().Get("/metrics").body;
  CHECK(Sample(pending, "reprise_deployments{status=\"scheduled\"}") == 1);
  clock.Set(due + std::chrono::seconds(3));
  CHECK(f.WaitFinal(scheduled["id"])["status"] == "succeeded");

  const std::string after = f.Viewer().Get("/metrics").body;
  CHECK_MESSAGE(Sample(after, ok_series) == 2, after);
  CHECK(Sample(after, "reprise_deployments{status=\"scheduled\"}") == 0);
  CHECK(Sample(after,
               "reprise_deployment_duration_seconds_count{application=\"shop\",stage="
               "\"Integration\"}") == 2);
  CHECK(Sample(after, "reprise_scheduler_lateness_seconds_count") == 1);
  CHECK(Sample(after, "reprise_scheduler_lateness_seconds_sum") >= 3);
  CHECK(Sample(after,
               "reprise_http_requests_total{code=\"202\",method=\"POST\",route=\"/api/v1/"
               "applications/{app}/releases/{rel}/builds/{n}/deploy\"}") == 2);
  CHECK(Sample(after, "reprise_artifact_uploaded_bytes_total") > 0);
  CHECK(Sample(after, "reprise_artifact_stored_bytes") > 0);
  // The raw path never becomes a label: one series per route pattern.
  CHECK(after.find("route=\"/api/v1/deployments/1\"") == std::string::npos);
}

}  // namespace reprise::testing
