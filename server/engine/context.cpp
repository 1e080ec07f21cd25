// Kind, execution context and gates of a deployment.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "server/catalog/catalog.h"
#include "server/engine/engine_internal.h"
#include "server/engine/manifest_summary.h"

namespace reprise {

int CompareVersions(const std::string& release_a, int64_t build_a, const std::string& release_b,
                    int64_t build_b) {
  auto parts = [](const std::string& s) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, '.')) {
      int64_t v = 0;
      for (char c : part) v = c >= '0' && c <= '9' ? v * 10 + (c - '0') : v;
      out.push_back(v);
    }
    return out;
  };
  auto a = parts(release_a), b = parts(release_b);
  size_t n = std::max(a.size(), b.size());
  a.resize(n, 0);
  b.resize(n, 0);
  if (a != b) return a < b ? -1 : 1;
  if (build_a != build_b) return build_a < build_b ? -1 : 1;
  return 0;
}

namespace engine_internal {

std::vector<std::string> SplitCsv(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string JoinCsv(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::string BuildLabel(const std::string& release, int64_t build) {
  return release + " build " + std::to_string(build);
}

Result<AppSpec> ReleaseSpec(Store& store, const std::string& app, const std::string& release) {
  auto rel = store.GetRelease(app, release);
  if (!rel.ok()) return rel.status();
  auto spec = ParseAppSpec(rel->snapshot_json, "release " + release + " snapshot");
  if (!spec.ok())
    return Internal("the snapshot of release " + release +
                    " is unreadable: " + spec.status().message());
  return spec;
}

int StageIndex(const AppSpec& spec, const std::string& stage) {
  for (size_t i = 0; i < spec.pipeline.size(); ++i)
    if (spec.pipeline[i].stage == stage) return static_cast<int>(i);
  return -1;
}

Result<KindInfo> ComputeKind(Store& store, const std::string& app, const std::string& release,
                             int64_t build, const std::string& stage) {
  KindInfo info;
  auto before = store.LastSuccess(app, release, build, stage);
  if (!before.ok() && before.status().code() != Code::kNotFound) return before.status();
  info.succeeded_before = before.ok();
  auto current = store.CurrentBuilds(app, stage);
  if (!current.ok()) return current.status();
  info.current = *current;
  const TargetCurrent* newest = nullptr;
  for (const auto& c : info.current)
    if (newest == nullptr ||
        CompareVersions(c.release, c.build, newest->release, newest->build) > 0)
      newest = &c;
  if (newest != nullptr) {
    info.current_label = BuildLabel(newest->release, newest->build);
    info.previous_build = std::to_string(newest->build);
  }
  if (!info.succeeded_before) {
    info.kind = "promote";
  } else if (newest != nullptr &&
             CompareVersions(newest->release, newest->build, release, build) > 0) {
    info.kind = "rollback";
  } else {
    info.kind = "redeploy";
  }
  return info;
}

namespace {

Result<VariableMap> Vars(const std::string& json) { return VariablesFromJson(json); }

}  // namespace

Result<ExecutionContext> ResolveContext(Store& store, const DeploymentRecord& d,
                                        const AppSpec& spec, const StageSpec& stage,
                                        const KindInfo& kind, const std::string& choice) {
  ExecutionContext ctx;
  ctx.deployment_id = std::to_string(d.id);
  ctx.application = d.application;
  ctx.release = d.release;
  ctx.build = std::to_string(d.build);
  ctx.stage = d.stage;
  ctx.environment = stage.environment;
  ctx.execution_user = d.requested_by;
  ctx.is_redeploy = kind.kind != "promote";
  ctx.is_rollback = kind.kind == "rollback";
  ctx.previous_build = kind.previous_build;
  ctx.plan_name = stage.plan;
  auto plan = spec.plans.find(stage.plan);
  if (plan == spec.plans.end())
    return Internal("plan '" + stage.plan + "' is missing from the release snapshot");
  ctx.plan_text = plan->second;

  auto artifacts = store.ListArtifacts(d.application, d.release, d.build);
  if (!artifacts.ok()) return artifacts.status();
  for (const auto& a : *artifacts) {
    ctx.artifact_sha256[a.name] = a.sha256;
    std::string manifest_hash = ManifestSummaryOf(a.sha256, a.manifest_json).manifest_hash;
    if (!manifest_hash.empty()) ctx.artifact_manifest_hash[a.name] = manifest_hash;
  }

  auto deployment_vars = Vars(d.variables_json);
  if (!deployment_vars.ok()) return deployment_vars.status();

  if (choice == "as-deployed") {
    auto last = store.LastSuccess(d.application, d.release, d.build, d.stage);
    if (!last.ok()) return last.status();
    auto before = ContextFromJson(last->context_json);
    if (!before.ok())
      return Internal("the context of deployment " + std::to_string(last->id) +
                      " is unreadable: " + before.status().message());
    ctx.variables = before->variables;
    ctx.targets = before->targets;
    // Targets added to the stage since then get their current settings.
    for (const auto& name : SplitCsv(d.targets_csv)) {
      if (ctx.FindTarget(name) != nullptr) continue;
      auto t = store.GetTarget(name);
      if (!t.ok()) return t.status();
      auto tv = Vars(t->variables_json);
      if (!tv.ok()) return tv.status();
      ctx.targets.push_back({t->name, t->agent, t->path, *tv});
    }
    // ...and targets no longer in the stage are not deployed to.
    std::vector<TargetInfo> kept;
    for (const auto& t : ctx.targets) {
      auto names = SplitCsv(d.targets_csv);
      if (std::find(names.begin(), names.end(), t.name) != names.end()) kept.push_back(t);
    }
    ctx.targets = kept;
  } else {
    auto build = store.GetBuild(d.application, d.release, d.build);
    if (!build.ok()) return build.status();
    auto release = store.GetRelease(d.application, d.release);
    if (!release.ok()) return release.status();
    auto env = store.GetEnvironment(stage.environment);
    if (!env.ok()) return env.status();
    auto globals = store.GetGlobalVariables();
    if (!globals.ok()) return globals.status();
    auto gv = Vars(globals->variables_json);
    if (!gv.ok()) return gv.status();
    auto bv = Vars(build->variables_json);
    auto rv = Vars(release->variables_json);
    auto ev = Vars(env->variables_json);
    if (!bv.ok()) return bv.status();
    if (!rv.ok()) return rv.status();
    if (!ev.ok()) return ev.status();
    // "Current settings": the application's variables as its spec says now.
    VariableMap app_vars = spec.variables;
    auto app = store.GetApplication(d.application);
    if (app.ok()) {
      auto now_spec = ParseAppSpec(app->spec_json, "application spec");
      if (now_spec.ok()) app_vars = now_spec->variables;
    }
    ctx.variables[Scope::kBuild] = *bv;
    ctx.variables[Scope::kRelease] = *rv;
    ctx.variables[Scope::kApplication] = app_vars;
    ctx.variables[Scope::kEnvironment] = *ev;
    ctx.variables[Scope::kGlobal] = *gv;
    for (const auto& name : SplitCsv(d.targets_csv)) {
      auto t = store.GetTarget(name);
      if (!t.ok()) return t.status();
      auto tv = Vars(t->variables_json);
      if (!tv.ok()) return tv.status();
      ctx.targets.push_back({t->name, t->agent, t->path, *tv});
    }
  }
  ctx.variables[Scope::kDeployment] = *deployment_vars;
  REPRISE_RETURN_IF_ERROR(ctx.Validate());
  return ctx;
}

std::vector<GateState> EvaluateGates(Store& store, const Clock& clock, const DeploymentRecord& d,
                                     const AppSpec& spec, const StageSpec& stage,
                                     std::string* rejected) {
  std::vector<GateState> gates;
  if (d.forced) {
    gates.push_back({"force", true, "forced by " + d.requested_by + ": " + d.comment});
    return gates;
  }
  if (d.kind == kSelectiveRollbackKind) {  // the record's approval replaces the gates
    gates.push_back({"rollback-record", true, "approved as a rollback record"});
    return gates;
  }
  int index = StageIndex(spec, d.stage);
  if (index > 0) {
    const std::string& previous = spec.pipeline[static_cast<size_t>(index - 1)].stage;
    auto here = store.LastSuccess(d.application, d.release, d.build, d.stage);
    if (here.ok()) {
      gates.push_back({"previous-stage", true,
                       "already succeeded on " + d.stage + "; earlier stages are not re-checked"});
    } else {
      auto before = store.LastSuccess(d.application, d.release, d.build, previous);
      gates.push_back({"previous-stage", before.ok(),
                       before.ok() ? "succeeded on " + previous
                                   : BuildLabel(d.release, d.build) + " has not succeeded on " +
                                         previous + " yet"});
    }
  }
  const auto& approvals = stage.gates.approvals;
  auto list = store.ListApprovals(d.id);
  if (list.ok()) {
    for (const auto& a : *list)
      if (!a.revoked && a.decision == "rejected" && rejected != nullptr)
        *rejected = a.user + (a.comment.empty() ? "" : ": " + a.comment);
  }
  if (approvals.count > 0) {
    Role needed = ParseRole(approvals.role).value_or(Role::kReleaseManager);
    // Distinct users: one person approving twice is still one approval.
    std::set<std::string> approvers;
    if (list.ok()) {
      for (const auto& a : *list) {
        if (a.revoked || a.decision != "approved") continue;
        if (a.user == d.requested_by && !stage.gates.allow_self_approval) continue;
        if (approvers.count(a.user)) continue;
        auto user = store.GetUser(a.user);
        if (user.ok() && user->role >= needed) approvers.insert(a.user);
      }
    }
    int count = static_cast<int>(approvers.size());
    gates.push_back({"approvals", count >= approvals.count,
                     std::to_string(count) + " of " + std::to_string(approvals.count) +
                         " approvals from " + RoleName(needed)});
  }
  if (!stage.gates.windows.empty()) {
    TimePoint now = clock.Now();
    bool open = false;
    std::string texts;
    for (const auto& w : stage.gates.windows) {
      open = open || w.Contains(now);
      texts += (texts.empty() ? "" : ", ") + w.text;
    }
    gates.push_back({"window", open, (open ? "inside " : "outside ") + texts});
  }
  return gates;
}

}  // namespace engine_internal
}  // namespace reprise
