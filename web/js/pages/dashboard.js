// Applications dashboard: every application with its stages and what runs there.
import { get, enc } from '../api.js';
import { h, hashFor, relTimeEl, statusBadge, loading, errorBox, clear } from '../dom.js';

export async function renderDashboard(main) {
  main.append(h('h1', null, 'Applications'));
  const body = h('div', { class: 'apps' }, loading());
  main.append(body);
  const list = await get('/applications?limit=1000');
  clear(body);
  if (!list.items.length) {
    body.append(h('p', { class: 'muted' }, 'No applications yet. Create one with PUT /api/v1/applications/{app}.'));
    return;
  }
  for (const item of list.items) {
    const card = h('section', { class: 'card app-card', 'aria-labelledby': `app-${item.name}` },
      h('h2', { id: `app-${item.name}` }, h('a', { href: hashFor('apps', item.name) }, item.name)),
      item.spec && item.spec.description ? h('p', { class: 'muted' }, item.spec.description) : null);
    body.append(card);
    // The list may not carry what is deployed where; the application does.
    get(`/applications/${enc(item.name)}`).then((app) => {
      card.append(stagesSummary(app));
    }).catch((e) => card.append(errorBox(e)));
  }
}

function stagesSummary(app) {
  const pipeline = (app.spec && app.spec.pipeline) || [];
  const byStage = new Map((app.stages || []).map((s) => [s.stage, s]));
  return h('ol', { class: 'stage-strip', 'aria-label': `Pipeline of ${app.name}` }, pipeline.map((p) => {
    const st = byStage.get(p.stage);
    const currents = st ? (st.targets || []).map((t) => t.current).filter(Boolean) : [];
    const c = currents[0];
    return h('li', null,
      h('span', { class: 'stage-name' }, p.stage),
      c ? h('span', { class: 'stage-build' }, h('a', { href: hashFor('apps', app.name, 'releases', c.release, 'builds', c.build) }, `${c.release} build ${c.build}`), ' · ', relTimeEl(c.at))
        : h('span', { class: 'muted' }, 'nothing deployed'),
      st && st.hold ? h('span', { class: 'badge hold', title: st.hold.reason || 'automatic promotion is held' }, 'hold') : null,
      p.protected ? statusBadge('protected') : null);
  }));
}
