// A build: artifacts (name, size, sha256, files, manifest), its progress
// through the stages with deploy actions, and its deployment history.
import { get, enc, buildPath } from '../api.js';
import { h, clear, whenOf, hashFor, timeEl, statusBadge, kindBadge, table, fmtBytes, dl, flash } from '../dom.js';
import { go } from '../router.js';
import { loadAppModel } from '../model.js';
import { openDeployDialog } from './deploy_dialog.js';
import { variablesTable } from './release.js';
import { rememberNotice } from '../schedule.js';
import { notesSection } from './releases.js';
import { uploadArea } from './upload.js';
import { hasRole } from '../session.js';

export async function renderBuild(main, ctx) {
  const { app, rel, n } = ctx.params;
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: '#/' }, 'Applications'), ' / ', h('a', { href: hashFor('apps', app) }, app), ' / ',
    h('a', { href: hashFor('apps', app, 'releases', rel) }, rel), ' / '),
  h('h1', null, `${app} ${rel} build ${n}`));
  const [build, model] = await Promise.all([get(buildPath(app, rel, n)), loadAppModel(app)]);
  main.append(dl([
    ['Created', [timeEl(build.created_at), build.created_by ? ` by ${build.created_by}` : '']],
  ]), notesSection(build));

  // Progress through the stages.
  const stages = model.stageNames();
  main.append(h('h2', null, 'Stages'));
  main.append(h('ol', { class: 'progress-stages' }, stages.map((s) => {
    const last = model.history(rel, n, s)[0];
    const action = model.actionFor(rel, n, s);
    const cur = model.currentOf(s);
    const isCurrent = cur && String(cur.release) === String(rel) && Number(cur.build) === Number(n);
    return h('li', { class: 'card' },
      h('strong', null, s), ' ',
      last ? h('a', { href: hashFor('deployments', last.id) }, statusBadge(last.status)) :
        model.succeededOn(rel, n, s) ? statusBadge('succeeded') : h('span', { class: 'muted' }, 'not deployed'),
      isCurrent ? h('span', { class: 'badge current-badge' }, 'current') : null, ' ',
      action ? h('button', {
        type: 'button', class: 'small', 'aria-label': `${action} ${rel} build ${n} to ${s}`,
        onclick: () => openDeployDialog({
          model, release: rel, build: n, stage: s,
          onDone: (dep) => { rememberNotice(dep); go(hashFor('deployments', dep.id)); },
        }),
      }, action) : null);
  })));

  const artifactsBox = h('div', { id: 'artifacts' });
  main.append(h('h2', null, 'Artifacts'), artifactsBox);
  drawArtifacts(artifactsBox, build, app, rel, n);
  if (hasRole('deployer')) {
    main.append(build.sealed
      ? h('p', { class: 'muted small' }, `No more artifacts can be added: ${build.sealed_reason}.`)
      : uploadArea({ app, rel, n, onStored: async () => drawArtifacts(artifactsBox, await get(buildPath(app, rel, n)), app, rel, n) }));
  }

  main.append(h('h2', null, 'Variables'), variablesTable(build.variables));

  main.append(h('h2', null, 'Deployment history'));
  const hist = model.history(rel, n);
  if (model.deploymentsError) main.append(h('p', { class: 'warn' }, `Not available: ${model.deploymentsError.message}`));
  else if (!hist.length) main.append(h('p', { class: 'muted' }, 'This build has not been deployed yet.'));
  else main.append(deploymentsTable(hist));
}

function drawArtifacts(box, build, app, rel, n) {
  const arts = build.artifacts || [];
  if (!arts.length) clear(box).append(h('p', { class: 'muted' }, 'No artifacts uploaded.'));
  else clear(box).append(table(['Name', 'Size', 'Files', 'SHA-256', ''], arts.map((a) => h('tr', null,
    h('th', { scope: 'row' }, a.name),
    h('td', null, fmtBytes(a.size)),
    h('td', null, String(a.file_count ?? '—')),
    h('td', null, h('code', { class: 'hash', title: a.sha256 }, a.sha256)),
    h('td', null, h('a', { href: hashFor('apps', app, 'releases', rel, 'builds', n, 'artifacts', a.name) }, 'Manifest'), ' · ',
      h('a', { href: `/api/v1${buildPath(app, rel, n)}/artifacts/${enc(a.name)}`, download: `${a.name}` }, 'Download'))))));
}

export function deploymentsTable(list) {
  return table(['#', 'Build', 'Stage', 'Kind', 'Status', 'By', 'When'], list.map((d) => h('tr', null,
    h('th', { scope: 'row' }, h('a', { href: hashFor('deployments', d.id) }, `#${d.id}`)),
    h('td', null, `${d.application || ''} ${d.release} build ${d.build}`),
    h('td', null, d.stage),
    h('td', null, kindBadge(d.kind)),
    h('td', null, statusBadge(d.status)),
    h('td', null, d.by || d.requested_by || ''),
    h('td', null, d.status === 'scheduled' && whenOf(d) ? ['at ', timeEl(whenOf(d))] : timeEl(d.finished_at || d.started_at || d.created_at)))));
}

export async function renderManifest(main, ctx) {
  const { app, rel, n, name } = ctx.params;
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    h('a', { href: '#/' }, 'Applications'), ' / ', h('a', { href: hashFor('apps', app) }, app), ' / ',
    h('a', { href: hashFor('apps', app, 'releases', rel) }, rel), ' / ',
    h('a', { href: hashFor('apps', app, 'releases', rel, 'builds', n) }, `build ${n}`), ' / '),
  h('h1', null, `Artifact ${name}`));
  const m = await get(`${buildPath(app, rel, n)}/artifacts/${enc(name)}/manifest`);
  const doc = m.manifest || m;
  const entries = Array.isArray(doc) ? doc : doc.entries || doc.items || [];
  main.append(dl([
    ['SHA-256', h('code', { class: 'hash' }, m.sha256 || '—')],
    ['Size', fmtBytes(m.size)],
    ['Files', String(m.file_count ?? doc.file_count ?? '—')],
    doc.total_bytes !== undefined ? ['Unpacked', fmtBytes(doc.total_bytes)] : null,
    doc.manifest_hash ? ['Manifest hash', h('code', { class: 'hash' }, doc.manifest_hash)] : null,
    ['Download', h('a', { href: `/api/v1${buildPath(app, rel, n)}/artifacts/${enc(name)}`, download: name }, name)],
  ]));
  const filter = h('input', { type: 'search', id: 'manifest-filter', placeholder: 'path contains…' });
  const count = h('p', { class: 'muted', role: 'status' });
  const body = h('tbody');
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = entries.filter((e) => !q || String(e.path).toLowerCase().includes(q));
    clear(body).append(...shown.slice(0, 2000).map((e) => h('tr', null,
      h('td', null, h('code', null, e.path)), h('td', null, e.type || ''), h('td', null, e.mode !== undefined ? (typeof e.mode === 'number' ? e.mode.toString(8) : String(e.mode)) : ''),
      h('td', { class: 'num' }, e.type === 'directory' || e.type === 'dir' ? '' : fmtBytes(e.size)),
      h('td', null, e.sha256 ? h('code', { class: 'hash', title: e.sha256 }, e.sha256.slice(0, 16) + '…') : e.link_target || e.target ? `→ ${e.link_target || e.target}` : ''))));
    count.textContent = `${shown.length} of ${entries.length} entries${shown.length > 2000 ? ' (first 2000 shown)' : ''}`;
  };
  filter.addEventListener('input', draw);
  main.append(h('div', { class: 'field inline' }, h('label', { for: 'manifest-filter' }, 'Filter'), filter), count,
    h('div', { class: 'table-wrap' }, h('table', { class: 'compact' },
      h('thead', null, h('tr', null, ['Path', 'Type', 'Mode', 'Size', 'SHA-256 / link'].map((x) => h('th', { scope: 'col' }, x)))), body)));
  draw();
}
