// The execution context of a deployment, for people: what was deployed where
// and by whom, the variables by scope (most specific first, as they resolve),
// the targets, the plan as it ran and the artifacts by hash. Sensitive values
// arrive masked from the server and are shown as such.
import { h, dl, table } from '../dom.js';

// Scopes in resolution order (target scopes come per target after "application").
const SCOPES = [
  ['deployment', 'Deployment'], ['build', 'Build'], ['release', 'Release'], ['application', 'Application'],
  ['target', 'Target'], ['environment', 'Environment'], ['global', 'Global'],
];
const KNOWN = new Set(['deployment_id', 'application', 'release', 'build', 'stage', 'environment', 'execution_user',
  'is_redeploy', 'is_rollback', 'previous_build', 'targets', 'plan_name', 'plan_text', 'artifacts',
  'artifact_manifests', 'variables']);

function valueCell(x) {
  const sensitive = x && typeof x === 'object' && x.sensitive;
  const value = x && typeof x === 'object' ? x.value : x;
  return h('td', null, h('code', null, sensitive ? '******' : String(value ?? '')),
    sensitive ? h('span', { class: 'badge', title: 'sensitive: never shown' }, 'sensitive') : null);
}

function kindText(c) {
  if (c.is_rollback) return `rollback: replaced ${c.previous_build || 'a newer build'} with this earlier build`;
  if (c.is_redeploy) return 're-deploy of a build that succeeded on the stage before';
  return c.previous_build ? `new build (replaced ${c.previous_build})` : 'first deployment to the stage';
}

function variablesTable(c) {
  const rows = [];
  const vars = c.variables || {};
  for (const [scope, label] of SCOPES) {
    if (scope === 'target') {
      for (const t of c.targets || []) {
        for (const [name, x] of Object.entries(t.variables || {})) {
          rows.push(h('tr', null, h('td', null, `Target ${t.name}`), h('th', { scope: 'row' }, name), valueCell(x)));
        }
      }
      continue;
    }
    for (const [name, x] of Object.entries(vars[scope] || {})) {
      rows.push(h('tr', null, h('td', null, label), h('th', { scope: 'row' }, name), valueCell(x)));
    }
  }
  for (const [scope, map] of Object.entries(vars)) {  // scopes this page does not know yet
    if (SCOPES.some(([s]) => s === scope)) continue;
    for (const [name, x] of Object.entries(map || {})) rows.push(h('tr', null, h('td', null, scope), h('th', { scope: 'row' }, name), valueCell(x)));
  }
  if (!rows.length) return h('p', { class: 'muted' }, 'No variables besides the built-ins.');
  return table(['Scope', 'Name', 'Value'], rows, { class: 'compact context-variables' });
}

export function renderExecutionContext(c) {
  const targets = c.targets || [];
  const artifacts = Object.entries(c.artifacts || {});
  const manifests = c.artifact_manifests || {};
  const other = Object.entries(c).filter(([k]) => !KNOWN.has(k));
  return [
    h('h2', null, 'Execution context'),
    h('p', { class: 'small muted' }, 'Everything resolved before the deployment ran; a re-deploy "as deployed" uses it again. Sensitive values are masked.'),
    dl([
      ['What', `${c.application} ${c.release} build ${c.build} → ${c.stage} (environment ${c.environment})`],
      ['Kind', kindText(c)],
      ['Run by', c.execution_user || '—'],
    ]),
    h('h3', null, 'Variables by scope'),
    h('p', { class: 'small muted' }, 'Most specific first: a name set in an earlier row wins over the same name further down.'),
    variablesTable(c),
    h('h3', null, 'Targets'),
    targets.length ? table(['Target', 'Agent', 'Path'], targets.map((t) => h('tr', null,
      h('th', { scope: 'row' }, t.name), h('td', null, t.agent || '—'), h('td', null, h('code', null, t.path || '')))), { class: 'compact' })
      : h('p', { class: 'muted' }, 'None.'),
    h('h3', null, 'Artifacts'),
    artifacts.length ? table(['Artifact', 'SHA-256', 'Manifest hash'], artifacts.map(([name, sha]) => h('tr', null,
      h('th', { scope: 'row' }, name), h('td', { class: 'hash' }, h('code', null, sha)),
      h('td', { class: 'hash' }, manifests[name] ? h('code', null, manifests[name]) : '—'))), { class: 'compact' })
      : h('p', { class: 'muted' }, 'None.'),
    h('details', { class: 'context-plan' }, h('summary', null, `Plan ${c.plan_name || ''} as it ran`),
      h('pre', { class: 'code' }, c.plan_text || '')),
    other.length ? h('details', null, h('summary', null, 'Other fields'),
      dl(other.map(([k, v]) => [k, typeof v === 'object' ? h('pre', { class: 'code' }, JSON.stringify(v, null, 2)) : String(v)]))) : null,
  ];
}
