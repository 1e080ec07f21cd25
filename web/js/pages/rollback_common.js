// What the rollback-record pages share: who may create or execute a record
// (role, protected stage, the environment's `redeploy` grant), the badges for
// component types, and the summary "5 of 7 components selected".
import { get, enc, query } from '../api.js';
import { h } from '../dom.js';
import { session, hasRole } from '../session.js';

export const COMPONENT_TYPES = ['delete', 'override', 'restore'];

const TYPE_TITLES = {
  delete: 'added by the deployment: the rollback removes it',
  override: 'changed by the deployment: reset to the earlier version',
  restore: 'deleted by the deployment: the earlier version is put back',
};

export function typeBadge(type) {
  const t = String(type || '').replace(/[^a-z-]/g, '');
  return h('span', { class: `badge ct-${t}`, title: TYPE_TITLES[t] || null, 'data-type': t }, t || '?');
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// "2 delete, 1 override" for a list of components.
export function typeCounts(components) {
  const n = {};
  for (const c of components) n[c.type] = (n[c.type] || 0) + 1;
  return COMPONENT_TYPES.filter((t) => n[t]).map((t) => `${n[t]} ${t}`).join(', ');
}

// The pipeline entry of a stage and whether the user holds the environment's
// `redeploy` grant. Errors (e.g. an application removed since) give nulls.
export async function stageFacts(application, stage) {
  let spec = null;
  try {
    const app = await get(`/applications/${enc(application)}`);
    spec = ((app.spec && app.spec.pipeline) || []).find((p) => p.stage === stage) || null;
  } catch {
    return { spec: null, grant: false };
  }
  let grant = false;
  const s = session();
  if (spec && spec.environment && s) {
    try {
      const g = await get(`/environments/${enc(spec.environment)}/grants`);
      grant = (g.items || []).some((x) => x.user === s.user && x.permission === 'redeploy');
    } catch {
      grant = false;
    }
  }
  return { spec, grant };
}

// Whether the user holds the `redeploy` grant of each environment; `cache`
// (environment -> bool) keeps the answers between calls.
export async function redeployGrants(environments, cache) {
  const s = session();
  await Promise.all([...new Set(environments.filter(Boolean))].filter((e) => !cache.has(e)).map(async (env) => {
    try {
      const g = await get(`/environments/${enc(env)}/grants`);
      cache.set(env, !!s && (g.items || []).some((x) => x.user === s.user && x.permission === 'redeploy'));
    } catch {
      cache.set(env, false);
    }
  }));
  return cache;
}

// Creating a record needs what re-deploying on the stage needs: deployer, and
// on a protected stage release-manager or the environment's `redeploy` grant.
export function mayCreate(facts) {
  if (!hasRole('deployer')) return false;
  if (facts.spec && facts.spec.protected) return hasRole('release-manager') || facts.grant;
  return true;
}

// Executing needs release-manager or the `redeploy` grant.
export function mayExecute(facts) {
  return hasRole('release-manager') || (hasRole('deployer') && facts.grant);
}

// Who approves: the stage's approval role when it has an approval gate,
// else a release manager. Never the submitter.
export function mayDecide(facts, record) {
  const s = session();
  if (!s || s.user === record.submitted_by) return false;
  const gate = facts.spec && facts.spec.gates && facts.spec.gates.approvals;
  if (gate && gate.count > 0) return !gate.role || hasRole(gate.role) || s.role === gate.role;
  return hasRole('release-manager');
}

// The rollback records executed by these deployments (kind
// selective-rollback), by execution deployment id. One list request per
// application and stage; failures give an empty map.
export async function recordsByExecution(deployments) {
  const out = new Map();
  const mine = deployments.filter((d) => d && d.kind === 'selective-rollback');
  const keys = new Map(mine.map((d) => [`${d.application}\u0000${d.stage}`, d]));
  await Promise.all([...keys.values()].map(async (d) => {
    try {
      const r = await get('/rollback-records' + query({ application: d.application, stage: d.stage, limit: 1000 }));
      for (const x of r.items || []) if (x.execution_deployment_id) out.set(x.execution_deployment_id, x);
    } catch { /* the note is left out */ }
  }));
  return out;
}
