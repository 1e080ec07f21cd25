#include "server/engine/connection_check.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "agents/agent/runner.h"
#include "planner/plan.h"
#include "server/engine/agent_port.h"
#include "server/engine/manifest_summary.h"
#include "server/store/store.h"

namespace reprise {
namespace {

constexpr const char* kLocalAgent = "local";

std::string Bytes(uint64_t n) { return std::to_string(n) + " bytes"; }

TargetConnection FromProbe(const TargetProbe& probe, const std::vector<ReleaseSpace>& space) {
  TargetConnection c;
  c.target = probe.link.target;
  c.agent = probe.link.agent;
  c.connected = probe.link.connected;
  c.approved = probe.link.approved;
  c.version = probe.link.version;
  if (!probe.answered) {
    c.kind = TargetConnection::Problem::kAgent;
    c.problem = probe.problem;
    return c;
  }
  c.latency_ms = probe.latency_ms;
  c.writable = probe.report.writable;
  c.free_bytes = probe.report.free_bytes;
  const auto& cached = probe.report.cached_releases;
  for (const auto& s : space)
    if (std::find(cached.begin(), cached.end(), s.release_dir) == cached.end())
      c.needed_bytes += s.bytes;
  if (!c.writable) {
    c.kind = TargetConnection::Problem::kTarget;
    c.problem = "target '" + c.target + "' cannot be written by agent '" + c.agent +
                "': " + probe.report.problem;
  } else if (c.needed_bytes > c.free_bytes) {
    c.kind = TargetConnection::Problem::kTarget;
    c.problem = "target '" + c.target + "' has " + Bytes(c.free_bytes) + " free; the build needs " +
                Bytes(c.needed_bytes);
  }
  return c;
}

void CollectNeeds(const Steps& steps, PlanNeeds* needs) {
  for (const auto& step : steps) {
    if (IsTargetOperation(step)) needs->touches_targets = true;
    std::visit(
        [&](const auto& body) {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<T, DeployArtifactStep>) {
            if (body.artifact.find('$') != std::string::npos)
              needs->all_artifacts = true;
            else
              needs->artifacts.insert(body.artifact);
          } else if constexpr (std::is_same_v<T, IfBlock>) {
            CollectNeeds(body.then_steps, needs);
            CollectNeeds(body.else_steps, needs);
          } else if constexpr (std::is_same_v<T, TryBlock>) {
            CollectNeeds(body.steps, needs);
            CollectNeeds(body.catch_steps, needs);
            CollectNeeds(body.finally_steps, needs);
          } else if constexpr (std::is_same_v<T, RetryBlock> ||
                               std::is_same_v<T, ForEachTargetBlock> ||
                               std::is_same_v<T, OnTargetsBlock>) {
            CollectNeeds(body.steps, needs);
          }
        },
        step.body);
  }
}

}  // namespace

PlanNeeds NeedsOf(std::string_view plan_text) {
  PlanNeeds needs;
  auto plan = ParsePlan(plan_text, "plan");
  if (plan.ok()) CollectNeeds(plan->steps, &needs);
  return needs;
}

bool ConnectionReport::ok() const {
  return std::all_of(targets.begin(), targets.end(), [](const TargetConnection& t) {
    return t.kind == TargetConnection::Problem::kNone;
  });
}

std::string ConnectionReport::Problems(TargetConnection::Problem kind) const {
  std::string out;
  for (const auto& t : targets)
    if (t.kind == kind) out += (out.empty() ? "" : "; ") + t.problem;
  return out;
}

std::string AgentProblem(const std::string& agent, const std::string& target, bool connected) {
  if (agent == kLocalAgent) return "the local agent of target '" + target + "' is not enabled";
  return "agent '" + agent + "' of target '" + target + "' is not " +
         (connected ? "approved" : "connected");
}

Result<std::vector<ReleaseSpace>> SpaceForBuild(Store& store, const std::string& app,
                                                const std::string& release, int64_t build,
                                                const PlanNeeds* only) {
  REPRISE_ASSIGN_OR_RETURN(auto artifacts, store.ListArtifacts(app, release, build));
  std::vector<ReleaseSpace> out;
  DeployLabel label;  // as the hub labels the deployment's releases
  label.release = release;
  label.build = std::to_string(build);
  for (const auto& a : artifacts)
    if (only == nullptr || only->all_artifacts || only->artifacts.count(a.name))
      out.push_back({ReleaseDirName(label, a.name, a.sha256),
                     ManifestSummaryOf(a.sha256, a.manifest_json).total_bytes});
  return out;
}

Result<ConnectionReport> TestConnection(AgentPort& agents, const std::vector<std::string>& targets,
                                        const std::vector<ReleaseSpace>& space) {
  ConnectionReport report;
  for (const auto& t : targets) {
    REPRISE_ASSIGN_OR_RETURN(TargetProbe probe, agents.Probe(t));
    report.targets.push_back(FromProbe(probe, space));
  }
  return report;
}

StartCheck CheckBeforeStart(AgentPort& agents, Store& store, const DeploymentRecord& d,
                            const std::vector<std::string>& targets, const PlanNeeds& needs) {
  StartCheck out;
  if (!needs.touches_targets) return out;  // no step runs on an agent
  auto space = SpaceForBuild(store, d.application, d.release, d.build, &needs);
  if (!space.ok()) {
    out.verdict = StartCheck::Verdict::kFail;
    out.text = "cannot read the build's artifacts: " + space.status().message();
    return out;
  }
  auto report = TestConnection(agents, targets, *space);
  if (!report.ok()) {
    out.verdict = StartCheck::Verdict::kFail;
    out.text = "cannot check the targets: " + report.status().message();
    return out;
  }
  for (const auto& t : report->targets) {
    if (t.kind != TargetConnection::Problem::kNone) {
      out.lines.emplace_back(t.target, t.problem);
    } else {
      out.lines.emplace_back(t.target, "agent '" + t.agent + "' connected (" +
                                           std::to_string(t.latency_ms) + " ms), " +
                                           Bytes(t.free_bytes) + " free, " + Bytes(t.needed_bytes) +
                                           " needed");
    }
  }
  // A target that cannot take the build fails it now; an agent that is away
  // may come back.
  if (std::string why = report->Problems(TargetConnection::Problem::kTarget); !why.empty()) {
    out.verdict = StartCheck::Verdict::kFail;
    out.text = why;
  } else if (std::string away = report->Problems(TargetConnection::Problem::kAgent);
             !away.empty()) {
    out.verdict = StartCheck::Verdict::kWait;
    out.text = away;
  }
  return out;
}

GateState AgentsGate(AgentPort& agents, const std::vector<std::string>& targets) {
  GateState gate{"agents", true, ""};
  for (const auto& t : targets) {
    auto link = agents.TargetAgent(t);
    std::string problem;
    if (!link.ok()) {
      problem = "target '" + t + "': " + link.status().message();
    } else if (!link->connected || !link->approved) {
      problem = AgentProblem(link->agent, t, link->connected);
    }
    if (problem.empty()) continue;
    gate.holds = false;
    gate.detail += (gate.detail.empty() ? "" : "; ") + problem;
  }
  if (gate.holds)
    gate.detail = targets.size() == 1
                      ? "the target's agent is connected"
                      : "all " + std::to_string(targets.size()) + " targets' agents are connected";
  return gate;
}

}  // namespace reprise
