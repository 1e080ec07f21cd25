// Loads an application with its releases, builds and deployments and answers
// the questions the pages ask: what succeeded where, what runs where.
import { get, enc, query } from './api.js';
import { FINAL } from './dom.js';

// Statuses of deployments that ended before running a step (unless started).
const NEVER_RAN = new Set(['cancelled', 'expired', 'rejected']);

export async function loadAppModel(appName) {
  const app = await get(`/applications/${enc(appName)}`);
  const releases = (await get(`/applications/${enc(appName)}/releases?limit=1000`)).items;
  const builds = [];
  await Promise.all(releases.map(async (r) => {
    const list = await get(`/applications/${enc(appName)}/releases/${enc(r.number)}/builds?limit=1000`);
    for (const b of list.items) builds.push({ ...b, release: r.number });
  }));
  builds.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.number - a.number));
  let deployments = [];
  let deploymentsError = null;
  try {
    deployments = (await get('/deployments' + query({ application: appName, limit: 1000 }))).items || [];
  } catch (e) {
    deploymentsError = e;
  }
  return new AppModel(app, releases, builds, deployments, deploymentsError);
}

export class AppModel {
  constructor(app, releases, builds, deployments, deploymentsError) {
    this.app = app;
    this.releases = releases;
    this.builds = builds;
    this.deployments = deployments;
    this.deploymentsError = deploymentsError;
    this.pipeline = (app.spec && app.spec.pipeline) || [];
    this.stageState = new Map((app.stages || []).map((s) => [s.stage, s]));
  }

  stageNames() {
    return this.pipeline.map((p) => p.stage);
  }

  stageSpec(stage) {
    return this.pipeline.find((p) => p.stage === stage);
  }

  // Deployments of one build to one stage, newest first.
  history(release, build, stage) {
    return this.deployments.filter((d) => String(d.release) === String(release) &&
      Number(d.build) === Number(build) && (stage === undefined || d.stage === stage));
  }

  succeededOn(release, build, stage) {
    if (this.history(release, build, stage).some((d) => d.status === 'succeeded')) return true;
    // What is deployed where counts too (e.g. deployments older than the list).
    const st = this.stageState.get(stage);
    if (st) {
      if ((st.targets || []).some((t) => t.current && String(t.current.release) === String(release) &&
        Number(t.current.build) === Number(build))) return true;
      if ((st.rollback_candidates || []).some((c) => String(c.release) === String(release) &&
        Number(c.build) === Number(build))) return true;
    }
    return false;
  }

  // What a build's cell on a stage shows: its newest deployment, unless that
  // never ran (cancelled, expired, rejected while scheduled or waiting) and
  // an earlier one did: a cancelled re-deploy does not undo an earlier
  // success. {status, id (null when only the stage state knows), title}.
  outcomeOn(release, build, stage) {
    const hist = this.history(release, build, stage);
    const newest = hist[0];
    const ran = hist.find((d) => !NEVER_RAN.has(d.status) || d.started_at);
    const shown = ran || newest;
    if (!shown) {
      return this.succeededOn(release, build, stage) ? { status: 'succeeded', id: null, title: 'what the targets report' } : null;
    }
    let title = `deployment #${shown.id}`;
    if (newest && newest !== shown) title += `; the newer #${newest.id} is ${newest.status}`;
    return { status: shown.status, id: shown.id, title };
  }

  // The current build of a stage (its first target's), or null.
  currentOf(stage) {
    const st = this.stageState.get(stage);
    if (!st) return null;
    const t = (st.targets || []).find((x) => x.current);
    return t ? t.current : null;
  }

  // Deployments of a stage that have not finished, newest first.
  activeOn(stage) {
    return this.deployments.filter((d) => d.stage === stage && !FINAL.has(d.status));
  }

  // The stage's newest deployment that ran or may still run (a cancelled or
  // expired one that never started is skipped), or null.
  latestThatRanOn(stage) {
    return this.deployments.find((d) => d.stage === stage && (!NEVER_RAN.has(d.status) || d.started_at)) || null;
  }

  latestOn(stage) {
    return this.deployments.find((d) => d.stage === stage) || null;
  }

  // The action a user would take for this build on this stage, or null.
  actionFor(release, build, stage) {
    const names = this.stageNames();
    const i = names.indexOf(stage);
    if (this.succeededOn(release, build, stage)) return 'Re-Deploy';
    if (i === 0) return 'Deploy';
    if (this.succeededOn(release, build, names[i - 1])) return 'Promote';
    return null;
  }
}
