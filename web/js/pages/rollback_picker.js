// The "Rollback…" dialog of a succeeded deployment: the component picker.
// It asks for the reason first (the record's comment), then creates a draft
// rollback record (POST /deployments/{id}/rollback-records: every component
// selected) and shows its components per target as a tree (directories
// collapsible) with checkboxes, a filter, counts and select all / none.
// "Create rollback record" stores the selection (PATCH while draft) and opens
// the record page. Selections are by path (the API's components/exclude): a
// path checked or unchecked on one target is so on every target that has it.
import { post, patch, enc } from '../api.js';
import { h, append, clear, errorBox, loading, hashFor, flash } from '../dom.js';
import { go } from '../router.js';
import { typeBadge, typeCounts, plural, stageFacts, mayCreate, recordsByExecution } from './rollback_common.js';

let counter = 0;

// The "Rollback…" button of a deployment (only on a succeeded one, only for a
// user who may create a record) and, on a record's execution, a link to the
// record. `cache` keeps the stage facts between redraws.
export function rollbackControls(box, d, cache) {
  const sig = JSON.stringify([d.id, d.status, d.kind]);
  if (cache.rollbackSig === sig) return;
  cache.rollbackSig = sig;
  clear(box);
  if (d.kind === 'selective-rollback') {
    recordsByExecution([d]).then((m) => {
      const r = m.get(d.id);
      if (!r || cache.rollbackSig !== sig) return;
      box.append(h('span', { id: 'deployment-rollback-record' }, 'Executes ', h('a', { href: hashFor('rollback-records', r.id) }, `rollback record #${r.id}`),
        ` (${r.components_selected} of ${r.components_total} components of deployment #${r.deployment_id} reverted)`));
    });
    return;
  }
  if (d.status !== 'succeeded' || !d.application) return;
  if (!cache.rollbackFacts) cache.rollbackFacts = stageFacts(d.application, d.stage);
  cache.rollbackFacts.then((facts) => {
    if (cache.rollbackSig !== sig || !mayCreate(facts)) return;
    const button = h('button', {
      type: 'button', class: 'secondary', id: `rollback-${d.id}`,
      'aria-label': `Rollback… parts of deployment #${d.id}`, 'aria-haspopup': 'dialog',
    }, 'Rollback…');
    button.addEventListener('click', () => openRollbackPicker({ deployment: d, opener: button }));
    box.append(button);
  });
}

// {name, dirs: Map, files: [component], path}
function buildTree(components) {
  const root = { name: '', path: '', dirs: new Map(), files: [] };
  for (const c of components) {
    const parts = String(c.path).split('/').filter(Boolean);
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      if (!node.dirs.has(parts[i])) {
        node.dirs.set(parts[i], { name: parts[i], path: parts.slice(0, i + 1).join('/'), dirs: new Map(), files: [] });
      }
      node = node.dirs.get(parts[i]);
    }
    node.files.push(c);
  }
  return root;
}

function filesUnder(node) {
  const out = [...node.files];
  for (const d of node.dirs.values()) out.push(...filesUnder(d));
  return out;
}

function byTarget(components) {
  const m = new Map();
  for (const c of components) {
    const t = c.target || '';
    if (!m.has(t)) m.set(t, []);
    m.get(t).push(c);
  }
  return m;
}

// The selection as the API takes it: `exclude` with every unselected path,
// a directory named once when nothing under it is selected.
export function excludeList(components, selected) {
  const out = [];
  const walk = (node) => {
    for (const d of [...node.dirs.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const under = filesUnder(d);
      if (under.every((c) => !selected.get(c.path))) out.push(d.path);
      else walk(d);
    }
    for (const f of node.files) if (!selected.get(f.path)) out.push(f.path);
  };
  const unique = [...new Map(components.map((c) => [c.path, c])).values()];
  walk(buildTree(unique));
  return out;
}

export function openRollbackPicker({ deployment, opener }) {
  const n = ++counter;
  const titleId = `rb-title-${n}`;
  const d = deployment;
  const title = h('h2', { id: titleId }, `Roll back parts of deployment #${d.id}`);
  const intro = h('p', { class: 'muted small' },
    `${d.application} ${d.release} build ${d.build} on ${d.stage}. Choose the files to put back as they were before this deployment; `,
    'the other files stay as the deployment left them.');
  const body = h('div', { class: 'picker-body', 'aria-live': 'polite' });
  const errorArea = h('div', { class: 'dialog-error' });
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const back = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Back');
  const start = h('button', { type: 'button', class: 'primary' }, 'Choose components');
  const next = h('button', { type: 'button', hidden: true }, 'Next');
  const create = h('button', { type: 'button', class: 'primary', hidden: true }, 'Create rollback record');
  const dialog = h('dialog', { class: 'deploy-dialog rollback-dialog', 'aria-labelledby': titleId },
    title, intro, body,
    h('div', { class: 'dialog-foot' }, errorArea, h('div', { class: 'actions' }, cancel, back, start, next, create)));
  const state = { record: null, components: [], selected: new Map(), comment: '' };

  const close = () => dialog.close();
  cancel.addEventListener('click', close);
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (state.record && !state.created) {
      flash(`Draft rollback record #${state.record.id} was kept (Rollback logs); nothing runs until it is submitted, approved and executed.`, 'ok');
    }
    if (opener && opener.isConnected) opener.focus();
  });

  function selectedCount() {
    return state.components.filter((c) => state.selected.get(c.path)).length;
  }

  function showPicker() {
    back.hidden = true;
    create.hidden = true;
    next.hidden = false;
    append(clear(body), [pickerView(state, () => {
      next.disabled = selectedCount() === 0;
    })]);
    next.disabled = selectedCount() === 0;
  }

  function showConfirm() {
    clear(errorArea);
    next.hidden = true;
    back.hidden = false;
    create.hidden = false;
    append(clear(body), confirmView(state, n));
    create.focus();
  }

  // First the reason: it is stored with the record when the draft is created.
  function showStart() {
    const comment = h('textarea', { id: `rb-comment-${n}`, rows: 2 });
    comment.addEventListener('input', () => { state.comment = comment.value; });
    append(clear(body), [
      h('div', { class: 'field' }, h('label', { for: comment.id }, 'Comment (why roll back; kept on the record)'), comment),
      h('p', { class: 'small muted' }, '"Choose components" prepares a draft record listing every file the deployment changed; nothing runs until the record is submitted, approved and executed.'),
    ]);
    comment.focus();
  }

  next.addEventListener('click', showConfirm);
  back.addEventListener('click', showPicker);
  create.addEventListener('click', async () => {
    clear(errorArea);
    create.disabled = true;
    try {
      const rec = state.record;
      const exclude = excludeList(state.components, state.selected);
      if (exclude.length) await patch(`/rollback-records/${enc(rec.id)}`, { exclude });
      state.created = true;
      close();
      flash(`Rollback record #${rec.id} created.`, 'ok');
      go(hashFor('rollback-records', rec.id));
    } catch (e) {
      errorArea.append(errorBox(e));
    } finally {
      create.disabled = false;
    }
  });

  start.addEventListener('click', async () => {
    start.disabled = true;
    const request = state.comment.trim() ? { comment: state.comment.trim() } : {};
    append(clear(body), [loading('Preparing a draft rollback record…')]);
    try {
      const rec = await post(`/deployments/${enc(d.id)}/rollback-records`, request);
      start.hidden = true;
      state.record = rec;
      state.components = rec.components || [];
      for (const c of state.components) state.selected.set(c.path, c.selected !== false);
      title.textContent = `Roll back parts of deployment #${d.id} (draft record #${rec.id})`;
      showPicker();
      const filter = body.querySelector('input[type=search]');
      if (filter) filter.focus();
    } catch (e) {
      append(clear(body), [h('p', null, 'This deployment cannot be rolled back in part:'), errorBox(e)]);
    }
  });

  document.body.append(dialog);
  dialog.showModal();
  showStart();
  return dialog;
}

// "Roll back 4 of 6 components (1 delete, 2 override, 1 restore)", per
// target, and the comment.
function confirmView(state, n) {
  const chosen = state.components.filter((c) => state.selected.get(c.path));
  return [
    h('h3', null, 'Confirm'),
    h('p', { class: 'confirm-line', id: `rb-confirm-${n}` },
      `Roll back ${chosen.length} of ${plural(state.components.length, 'component', 'components')} (${typeCounts(chosen)}).`),
    h('ul', { class: 'small' }, [...byTarget(state.components)].map(([t, list]) => {
      const sel = list.filter((c) => state.selected.get(c.path));
      return h('li', null, h('strong', null, t), `: ${sel.length} of ${list.length}`, sel.length ? ` (${typeCounts(sel)})` : '');
    })),
    state.comment ? h('p', null, 'Comment: ', h('q', null, state.comment)) : null,
    h('p', { class: 'small muted' }, 'The record stays a draft until it is submitted: test the connection, submit it for approval, then execute it.'),
  ];
}

// The tree of checkboxes with filter, counts and select all / none.
function pickerView(state, onChange) {
  const n = ++counter;
  const filter = h('input', { type: 'search', id: `rb-filter-${n}`, placeholder: 'path contains…' });
  const count = h('p', { class: 'picker-count', role: 'status', id: `rb-count-${n}` });
  const trees = h('div', { class: 'picker-trees' });
  const boxes = [];  // {input, comps: [component], dir: bool}

  const visible = (c) => {
    const q = filter.value.trim().toLowerCase();
    return !q || String(c.path).toLowerCase().includes(q);
  };

  function refresh() {
    for (const b of boxes) {
      const on = b.comps.filter((c) => state.selected.get(c.path)).length;
      b.input.checked = on === b.comps.length;
      b.input.indeterminate = on > 0 && on < b.comps.length;
      const shown = b.comps.some(visible);
      b.item.hidden = !shown;
      if (b.details && filter.value.trim() && shown) b.details.open = true;
    }
    const total = state.components.length;
    const sel = state.components.filter((c) => state.selected.get(c.path)).length;
    const shownN = state.components.filter(visible).length;
    count.textContent = `${sel} of ${total} selected` + (shownN < total ? ` · ${shownN} shown` : '');
    onChange();
  }

  function set(comps, on) {
    for (const c of comps) state.selected.set(c.path, on);
    refresh();
  }

  function fileItem(c) {
    const id = `rb-f-${++counter}`;
    const input = h('input', { type: 'checkbox', id, 'aria-label': `${c.path} (${c.type})` });
    input.addEventListener('change', () => set([c], input.checked));
    const name = String(c.path).split('/').pop();
    const item = h('li', { class: 'picker-file', 'data-path': c.path },
      input, h('label', { for: id }, h('code', null, name)), ' ', typeBadge(c.type));
    boxes.push({ input, comps: [c], item });
    return item;
  }

  function dirItem(node) {
    const id = `rb-d-${++counter}`;
    const comps = filesUnder(node);
    const input = h('input', { type: 'checkbox', id, 'aria-label': `directory ${node.path}/` });
    input.addEventListener('change', () => set(comps, input.checked));
    const details = h('details', { open: true },
      h('summary', null, h('code', null, `${node.name}/`), h('span', { class: 'small muted' }, ` ${plural(comps.length, 'component', 'components')}`)),
      listOf(node));
    const item = h('li', { class: 'picker-dir', 'data-path': node.path }, h('div', { class: 'picker-dir-row' }, input, details));
    boxes.push({ input, comps, item, details });
    return item;
  }

  function listOf(node) {
    const dirs = [...node.dirs.values()].sort((a, b) => a.name.localeCompare(b.name));
    const files = [...node.files].sort((a, b) => String(a.path).localeCompare(String(b.path)));
    return h('ul', { class: 'picker-tree' }, dirs.map(dirItem), files.map(fileItem));
  }

  for (const [target, list] of byTarget(state.components)) {
    trees.append(h('section', { class: 'picker-target card', 'data-target': target },
      h('h3', null, target, h('span', { class: 'small muted' }, ` · ${plural(list.length, 'component', 'components')} (${typeCounts(list)})`)),
      listOf(buildTree(list))));
  }
  if (!state.components.length) trees.append(h('p', { class: 'muted' }, 'The deployment changed no file.'));

  filter.addEventListener('input', refresh);
  const shownComps = () => state.components.filter(visible);
  const all = h('button', { type: 'button', class: 'small secondary' }, 'Select all shown');
  const none = h('button', { type: 'button', class: 'small secondary' }, 'Select none shown');
  all.addEventListener('click', () => set(shownComps(), true));
  none.addEventListener('click', () => set(shownComps(), false));
  const legend = h('p', { class: 'small muted picker-legend' },
    typeBadge('delete'), ' added by the deployment, removed · ', typeBadge('override'), ' changed, reset · ',
    typeBadge('restore'), ' deleted, put back');
  const view = h('div', null,
    h('div', { class: 'picker-tools' },
      h('div', { class: 'field inline' }, h('label', { for: filter.id }, 'Filter'), filter), all, none),
    count, legend, trees);
  refresh();
  return view;
}
