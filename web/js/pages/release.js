// A release: its variables, snapshot and builds with their progress through the stages.
import { get, enc } from '../api.js';
import { h, hashFor, timeEl, statusBadge, table, dl } from '../dom.js';
import { loadAppModel } from '../model.js';
import { hasRole } from '../session.js';
import { notesSection } from './releases.js';

export async function renderRelease(main, ctx) {
  const { app, rel } = ctx.params;
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: '#/' }, 'Applications'), ' / ', h('a', { href: hashFor('apps', app) }, app), ' / '),
  h('h1', null, `${app} ${rel}`));
  const [release, model] = await Promise.all([
    get(`/applications/${enc(app)}/releases/${enc(rel)}`),
    loadAppModel(app),
  ]);
  main.append(dl([
    ['Created', [timeEl(release.created_at), release.created_by ? ` by ${release.created_by}` : '']],
    ['Spec version', String(release.spec_version ?? '—')],
  ]), notesSection(release));
  main.append(h('h2', null, 'Variables'), variablesTable(release.variables));
  const stages = model.stageNames();
  const builds = model.builds.filter((b) => String(b.release) === String(rel));
  main.append(h('h2', null, 'Builds'));
  if (hasRole('deployer')) main.append(h('p', null, h('a', { href: hashFor('apps', app, 'releases', rel, 'new-build'), class: 'button' }, 'New build')));
  if (!builds.length) main.append(h('p', { class: 'muted' }, 'No builds yet.'));
  else main.append(table(['Build', 'Created', ...stages], builds.map((b) => h('tr', null,
    h('th', { scope: 'row' }, h('a', { href: hashFor('apps', app, 'releases', rel, 'builds', b.number) }, `build ${b.number}`)),
    h('td', null, timeEl(b.created_at)),
    stages.map((s) => {
      const outcome = model.outcomeOn(rel, b.number, s);
      if (!outcome) return h('td', null, h('span', { class: 'muted' }, '—'));
      return h('td', null, outcome.id !== null
        ? h('a', { href: hashFor('deployments', outcome.id), title: outcome.title }, statusBadge(outcome.status))
        : statusBadge(outcome.status));
    })))));
  if (release.snapshot) {
    main.append(h('details', null, h('summary', null, 'Pipeline and plans snapshot'),
      h('pre', { class: 'code' }, JSON.stringify(release.snapshot, null, 2))));
  }
}

export function variablesTable(vars) {
  const entries = Object.entries(vars || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'None.');
  return table(['Name', 'Value'], entries.map(([k, v]) => {
    const value = v && typeof v === 'object' ? (v.sensitive ? '******' : v.value) : v;
    return h('tr', null, h('th', { scope: 'row' }, k), h('td', null, h('code', null, String(value ?? ''))));
  }), { class: 'compact' });
}
