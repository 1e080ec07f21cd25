// DeploymentEngine::PreviewDeployment: what a deploy would change, before
// anything runs — files per target, variables, gates, the operations.
#include <algorithm>
#include <map>
#include <variant>

#include "agents/deployer/archive.h"
#include "planner/executor.h"
#include "planner/plan.h"
#include "server/catalog/catalog.h"
#include "server/engine/engine.h"
#include "server/engine/engine_internal.h"
#include "server/engine/irreversible.h"

namespace reprise {

using namespace engine_internal;

namespace {

// Where a plan puts one artifact on a target.
struct Placement {
  std::string artifact;
  std::string to;       // "" : the target path itself
  bool deletes = true;  // overlay mode never deletes
};

// The artifacts the plan deploys on `target` (its deploy-artifact steps).
std::vector<Placement> PlacementsOn(const DryRunReport& dry, const std::string& target) {
  std::vector<Placement> out;
  for (const auto& t : dry.targets) {
    if (t.target != target) continue;
    for (const auto& step : t.steps) {
      if (!step.operation) continue;
      const auto* deploy = std::get_if<DeployArtifactOp>(&*step.operation);
      if (deploy == nullptr) continue;
      out.push_back({deploy->artifact, deploy->to, deploy->mode != DeployMode::kOverlay});
    }
  }
  return out;
}

// path on the target -> (content identity) of what `placements` put there
// from a build's artifacts (an artifact the build lacks adds nothing).
Result<std::map<std::string, std::string>> BuildFiles(Store& store, const std::string& app,
                                                      const std::string& release, int64_t build,
                                                      const std::vector<Placement>& placements) {
  std::map<std::string, std::string> files;
  auto artifacts = store.ListArtifacts(app, release, build);
  if (!artifacts.ok()) return artifacts.status();
  for (const auto& place : placements) {
    for (const auto& a : *artifacts) {
      if (a.name != place.artifact) continue;
      auto manifest = ManifestFromJson(a.manifest_json);
      if (!manifest.ok()) return manifest.status();
      std::string prefix = place.to.empty() ? "" : place.to + "/";
      while (prefix.rfind("./", 0) == 0) prefix.erase(0, 2);
      for (const auto& e : manifest->entries) {
        if (e.type == EntryType::kDirectory) continue;
        files[prefix + e.path] = std::string(EntryTypeName(e.type)) + " " + std::to_string(e.mode) +
                                 " " + e.sha256 + " " + e.link_target;
      }
    }
  }
  return files;
}

// Files a deployment of the next build changes on one target: both builds
// are compared through the same placements (what the plan deploys there).
Result<FileChanges> CompareOn(Store& store, const std::string& app, const std::string& release,
                              int64_t build, const KindInfo& kind, const std::string& target,
                              const std::vector<Placement>& placements) {
  FileChanges fc;
  fc.target = target;
  auto next = BuildFiles(store, app, release, build, placements);
  if (!next.ok()) return next.status();
  std::map<std::string, std::string> now;
  for (const auto& c : kind.current)
    if (c.target == target) {
      fc.current = BuildLabel(c.release, c.build);
      auto files = BuildFiles(store, app, c.release, c.build, placements);
      if (files.ok()) now = *files;
    }
  for (const auto& [path, id] : *next) {
    auto it = now.find(path);
    if (it == now.end())
      fc.added.push_back(path);
    else if (it->second != id)
      fc.overwritten.push_back(path);
    else
      ++fc.unchanged;
  }
  bool deletes = std::any_of(placements.begin(), placements.end(),
                             [](const Placement& p) { return p.deletes; });
  for (const auto& [path, id] : now)
    if (deletes && !next->count(path)) fc.deleted.push_back(path);
  return fc;
}

}  // namespace

Result<Preview> DeploymentEngine::PreviewDeployment(const std::string& app,
                                                    const std::string& release, int64_t build,
                                                    const std::string& stage_name,
                                                    const std::string& context_choice) {
  Store& store = *engine_store();
  auto b = store.GetBuild(app, release, build);
  if (!b.ok()) return b.status();
  REPRISE_RETURN_IF_ERROR(CheckBuildDeployable(store, app, release, build));
  auto spec = ReleaseSpec(store, app, release);
  if (!spec.ok()) return spec.status();
  const StageSpec* stage = spec->FindStage(stage_name);
  if (stage == nullptr)
    return InvalidArgument("stage '" + stage_name + "' is not in the pipeline of release " +
                           release);
  auto kind = ComputeKind(store, app, release, build, stage_name);
  if (!kind.ok()) return kind.status();
  Preview p;
  p.kind = kind->kind;
  std::string choice = context_choice.empty() ? (kind->succeeded_before ? "as-deployed" : "current")
                                              : context_choice;
  if (choice != "as-deployed" && choice != "current")
    return InvalidArgument("'context' must be \"as-deployed\" or \"current\"");
  if (choice == "as-deployed" && !kind->succeeded_before)
    return InvalidArgument(BuildLabel(release, build) + " has never succeeded on " + stage_name +
                           ", so there is no 'as-deployed' context: use \"current\"");
  p.context_choice = choice;
  std::string label = BuildLabel(release, build);
  if (p.kind == "rollback") {
    p.summary = "Rollback: " + stage_name + " currently runs " + kind->current_label +
                "; this puts " + label + " back";
  } else if (p.kind == "redeploy") {
    p.summary =
        "Re-deploy: " + label + " again to " + stage_name +
        (kind->current_label.empty() ? "" : " (it currently runs " + kind->current_label + ")");
  } else {
    p.summary = "Promote: " + label + " to " + stage_name +
                (kind->current_label.empty() ? " (nothing deployed there yet)"
                                             : ", replacing " + kind->current_label);
  }

  std::vector<std::string> targets = stage->targets;
  std::sort(targets.begin(), targets.end());
  DeploymentRecord d;
  d.application = app;
  d.release = release;
  d.build = build;
  d.stage = stage_name;
  d.kind = p.kind;
  d.context_choice = choice;
  d.targets_csv = JoinCsv(targets);
  d.requested_by = "preview";
  auto ctx = ResolveContext(store, d, *spec, *stage, *kind, choice);
  if (!ctx.ok()) return ctx.status();
  if (kind->succeeded_before) {
    auto deployed = ResolveContext(store, d, *spec, *stage, *kind, "as-deployed");
    auto current = ResolveContext(store, d, *spec, *stage, *kind, "current");
    if (deployed.ok() && current.ok()) {
      for (const auto& change : Diff(*deployed, *current).variables)
        p.variables.push_back({change.name, std::string(ScopeName(change.scope)), change.target,
                               std::string(ChangeKindName(change.kind)), change.old_value,
                               change.new_value});
    }
  }
  p.gates = EvaluateGates(store, engine_clock(), d, *spec, *stage, nullptr);

  auto plan = ParsePlan(ctx->plan_text, "plan " + ctx->plan_name);
  if (!plan.ok()) return plan.status();
  auto dry = DryRun(*plan, *ctx);
  if (!dry.ok()) return dry.status();
  // Per target, only what the plan deploys there is compared.
  for (const auto& target : targets) {
    auto changes = CompareOn(store, app, release, build, *kind, target, PlacementsOn(*dry, target));
    if (!changes.ok()) return changes.status();
    p.targets.push_back(std::move(changes).value());
  }
  for (const auto& t : dry->targets) {
    std::vector<std::string> lines;
    for (const auto& step : t.steps)
      lines.push_back(std::string(static_cast<size_t>(step.depth) * 2, ' ') + step.description +
                      (step.condition.empty() ? "" : "  [" + step.condition + "]"));
    p.operations.emplace_back(t.target, std::move(lines));
  }
  p.problems = dry->problems;
  auto crossed = IrreversibleStepsSince(store, app, release, build, stage_name);
  if (!crossed.ok()) return crossed.status();
  p.irreversible = std::move(crossed).value();
  return p;
}

}  // namespace reprise
