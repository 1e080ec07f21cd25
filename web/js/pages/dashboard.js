// Dashboard across applications (the first page after login): one row per
// application, one column per environment; each cell the build running there,
// the stage's last deployment (status and age), and a hold or drift marker.
// One request: GET /api/v1/dashboard. Redrawn every 10 s while shown.
import { get } from '../api.js';
import { h, hashFor, relTimeEl, statusBadge, loading, errorBox, clear } from '../dom.js';

const REFRESH_MS = 10000;

export async function renderDashboard(main) {
  main.append(h('h1', null, 'Applications'));
  const body = h('div', { class: 'dashboard' }, loading());
  main.append(body);
  let timer = null;
  let stopped = false;
  const draw = async () => {
    try {
      const data = await get('/dashboard');
      if (stopped) return;
      clear(body).append(dashboardTable(data));
    } catch (e) {
      if (!stopped) clear(body).append(errorBox(e));
    }
    if (!stopped) timer = setTimeout(draw, REFRESH_MS);
  };
  await draw();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function dashboardTable(data) {
  if (!data.applications.length) {
    return h('p', { class: 'muted' }, 'No applications yet. Create one with PUT /api/v1/applications/{app}.');
  }
  const envs = data.environments;
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'dash-matrix' },
      h('caption', { class: 'sr-only' }, 'What runs where: applications by environment'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, 'Application'),
        envs.map((e) => h('th', { scope: 'col' }, e)))),
      h('tbody', null, data.applications.map((app) => h('tr', { 'data-app': app.name },
        h('th', { scope: 'row' },
          h('a', { href: hashFor('apps', app.name) }, app.name),
          ' ',
          h('a', { class: 'small insights-link', href: `#/insights?application=${encodeURIComponent(app.name)}` }, 'insights')),
        envs.map((env) => {
          const stages = app.stages.filter((s) => s.environment === env);
          return h('td', { 'data-env': env }, stages.length ? stages.map((s) => stageCell(app.name, s, stages.length > 1))
            : h('span', { class: 'muted', 'aria-label': 'no stage' }, '·'));
        }))))));
}

// The cell of one stage: the build its targets run, the last deployment when
// it is another (e.g. a failed or waiting one), and the markers.
function stageCell(app, s, named) {
  const c = s.current;
  const last = s.last_deployment;
  const lastIsCurrent = last && c && last.id === c.deployment_id;
  return h('div', { class: 'dash-cell', 'data-stage': s.stage },
    named ? h('div', { class: 'small muted' }, s.stage) : null,
    c ? h('div', null,
      h('a', { class: 'build-link', href: hashFor('apps', app, 'releases', c.release, 'builds', c.build) }, `${c.release} build ${c.build}`),
      ' ', lastIsCurrent ? statusBadge(last.status) : null,
      h('div', { class: 'small muted' }, relTimeEl(c.at), c.by ? ` · ${c.by}` : ''))
      : h('div', { class: 'muted' }, 'nothing deployed'),
    last && !lastIsCurrent ? h('div', { class: 'small' },
      h('a', { href: hashFor('deployments', last.id) }, `#${last.id}`), ' ',
      `${last.release} build ${last.build} `, statusBadge(last.status), ' ',
      relTimeEl(last.finished_at || last.created_at)) : null,
    h('div', { class: 'badges' },
      s.protected ? h('span', { class: 'badge protected' }, 'protected') : null,
      s.hold ? h('span', { class: 'badge hold-mark', title: holdTitle(s.hold) }, 'hold') : null,
      s.drift ? h('span', { class: 'badge drift', title: s.drift }, 'drift') : null));
}

function holdTitle(hold) {
  const parts = ['automatic promotion is held after a rollback'];
  if (hold.by) parts.push(`by ${hold.by}`);
  if (hold.deployment_id) parts.push(`(deployment #${hold.deployment_id})`);
  return parts.join(' ');
}
