// Deployments: the history with filters kept in the URL (each compared
// without regard to case by the server), a duration column and CSV export;
// one target's history; and the scheduled ones with move and cancel.
import { get, post, patch, enc, query } from '../api.js';
import { BUSY_MS, IDLE_MS, IN_PROGRESS, repeat } from '../poll.js';
import { h, append, clear, fmtUtc, fmtDuration, whenOf, hashFor, timeEl, relTime, statusBadge, kindBadge, errorBox, loading, table, dl } from '../dom.js';
import { go } from '../router.js';
import { hasRole } from '../session.js';
import { toLocalInput, utcHint, zoneName } from './deploy_dialog.js';
import { checkScheduleInput, describeTime, confirmWithReason } from '../schedule.js';

const STATUSES = ['', 'scheduled', 'waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'expired'];
const PAGE = 100;
// [query key, label, input type]
const FILTERS = [
  ['application', 'Application', 'text'], ['stage', 'Stage', 'text'], ['target', 'Target', 'text'],
  ['status', 'Status', 'select'], ['user', 'User', 'text'], ['release', 'Release', 'text'],
  ['build', 'Build', 'number'], ['from', 'From (day)', 'date'], ['to', 'To (day)', 'date'],
];

// The API's query for the page's filters: days become RFC 3339 instants in
// the browser's zone ("to" includes its whole day).
function apiQuery(values) {
  const q = { ...values };
  const day = (text, plus) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || '');
    return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plus).toISOString() : undefined;
  };
  q.from = day(values.from, 0);
  q.to = day(values.to, 1);
  return q;
}

export function deploymentRows(items) {
  return items.map((d) => h('tr', null,
    h('th', { scope: 'row' }, h('a', { href: hashFor('deployments', d.id) }, `#${d.id}`)),
    h('td', null, d.application ? h('a', { href: hashFor('apps', d.application) }, d.application) : ''),
    h('td', null, d.application ? h('a', { href: hashFor('apps', d.application, 'releases', d.release, 'builds', d.build) }, `${d.release} build ${d.build}`) : `${d.release} build ${d.build}`),
    h('td', null, d.stage),
    h('td', null, (d.target_names || []).map((t, i) => [i ? ', ' : '', h('a', { href: hashFor('deployments', 'target', t) }, t)])),
    h('td', null, kindBadge(d.kind)),
    h('td', null, statusBadge(d.status)),
    h('td', null, d.by || d.requested_by || ''),
    h('td', null, d.status === 'scheduled' && whenOf(d) ? ['at ', timeEl(whenOf(d))] : timeEl(d.created_at)),
    h('td', { class: 'num' }, d.duration_ms !== undefined ? fmtDuration(d.duration_ms) : d.started_at && !d.finished_at ? 'running' : '—')));
}

const HEADERS = ['#', 'Application', 'Build', 'Stage', 'Targets', 'Kind', 'Status', 'By', 'Requested', 'Duration'];

export async function renderDeployments(main, ctx) {
  main.append(h('h1', null, 'Deployments'));
  return history(main, ctx, {});
}

// One target: where it is, and every deployment that included it.
export async function renderTargetHistory(main, ctx) {
  const name = ctx.params.target;
  main.append(h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/deployments' }, 'Deployments'), ' / '),
    h('h1', null, `Target ${name}`));
  const t = await get(`/targets/${enc(name)}`);
  main.append(dl([['Environment', t.environment], ['Agent', t.agent], ['Path', h('code', null, t.path)]]),
    h('h2', null, 'Deployments on this target'));
  return history(main, ctx, { target: name });
}

async function history(main, ctx, fixed) {
  const values = {};
  for (const [key] of FILTERS) values[key] = fixed[key] ?? (ctx.query.get(key) || '');
  const offset = Math.max(0, Number(ctx.query.get('offset')) || 0);
  const inputs = {};
  const fields = FILTERS.filter(([key]) => fixed[key] === undefined).map(([key, label, type]) => {
    const id = `f-${key}`;
    inputs[key] = type === 'select'
      ? h('select', { id }, STATUSES.map((s) => h('option', { value: s, selected: s === values.status.toLowerCase() }, s || 'any')))
      : h('input', { id, type, value: values[key], min: type === 'number' ? '1' : null, autocomplete: 'off' });
    return h('div', { class: 'field' }, h('label', { for: id }, label), inputs[key]);
  });
  const here = fixed.target ? hashFor('deployments', 'target', fixed.target) : '#/deployments';
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter deployments' }, fields,
    h('button', { type: 'submit' }, 'Filter'), h('a', { href: here, class: 'small' }, 'Clear'));
  const q = apiQuery(values);
  const csv = h('a', { href: '/api/v1/deployments' + query({ ...q, format: 'csv', limit: 1000 }), download: 'deployments.csv', class: 'button secondary small', id: 'deployments-csv' }, 'Export CSV');
  const count = h('p', { class: 'muted small', role: 'status', id: 'deployments-count' });
  const body = h('div', null, loading());
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  main.append(form, h('div', { class: 'list-head' }, count, csv), body, pager);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = {};
    for (const [key, input] of Object.entries(inputs)) next[key] = input.value.trim();
    go(here + query(next));
  });
  const pageLink = (label, to) => h('a', { href: here + query({ ...values, ...Object.fromEntries(Object.keys(fixed).map((k) => [k, ''])), offset: to || '' }) }, label);
  let drawn = '';
  let busy = false;  // a deployment listed is queued or running
  const load = async () => {
    try {
      const r = await get('/deployments' + query({ ...q, limit: PAGE, offset }));
      busy = r.items.some((d) => IN_PROGRESS.has(d.status));
      const sig = JSON.stringify(r.items);
      if (sig === drawn) return;  // unchanged: keep the focus where it is
      drawn = sig;
      count.textContent = r.items.length ? `Deployments ${offset + 1}–${offset + r.items.length}, newest first` : '';
      clear(body).append(r.items.length ? table(HEADERS, deploymentRows(r.items), { class: 'deployments' }) : h('p', { class: 'muted' }, 'No deployments match.'));
      append(clear(pager), [offset > 0 ? pageLink('Previous', Math.max(0, offset - PAGE)) : null,
        r.items.length === PAGE ? pageLink('Next', offset + PAGE) : null]);
    } catch (e) {
      clear(body).append(errorBox(e));
    }
  };
  await load();
  const poll = repeat(load, () => (busy ? BUSY_MS : IDLE_MS));
  return poll.stop;
}

export async function renderScheduled(main) {
  main.append(h('h1', null, 'Scheduled deployments'),
    h('p', { class: 'muted' }, `Times are shown in your time zone (${zoneName()}) with UTC beside them.`));
  const status = h('p', { id: 'scheduled-status', role: 'status', tabindex: '-1', class: 'status-msg' });
  const body = h('div', null, loading());
  main.append(status, body);
  let signature = '';
  let firstDue = Infinity;  // when the first one listed runs (ms)
  // Redraws when the list changed, except under a time the user is still
  // typing; after a Move or Cancel (`force`) always, with focus on the message.
  const load = async (force = false) => {
    let r;
    try {
      r = await get('/deployments' + query({ status: 'scheduled', limit: 1000 }));
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    const items = [...r.items].sort((a, b) => String(whenOf(a)).localeCompare(String(whenOf(b))));
    firstDue = items.length && whenOf(items[0]) ? Date.parse(whenOf(items[0])) : Infinity;
    const sig = JSON.stringify(items.map((d) => [d.id, whenOf(d)]));
    if (!force && sig === signature) return;
    const editing = [...body.querySelectorAll('input')].some((i) => i.value !== i.dataset.original);
    if (!force && editing) return;
    signature = sig;
    if (!items.length) clear(body).append(h('p', { class: 'muted' }, 'Nothing is scheduled.'));
    else clear(body).append(table(['#', 'Deployment', 'When', 'Requested by', 'Actions'], items.map((d) => row(d, done))));
  };
  // The list is redrawn first, so the message is announced with it.
  const done = async (message) => {
    await load(true);
    status.textContent = message;
    status.focus({ preventScroll: true });
  };
  await load(true);
  // Often from a minute before the first one runs, to show it leave the list.
  const poll = repeat(() => load(false), () => (firstDue - Date.now() < 60000 ? BUSY_MS : IDLE_MS));
  return poll.stop;
}

function row(d, done) {
  const inputId = `move-${d.id}`;
  const original = whenOf(d) ? toLocalInput(new Date(whenOf(d))) : '';
  const input = h('input', { type: 'datetime-local', step: '1', id: inputId, value: original, 'aria-describedby': `${inputId}-problem` });
  input.dataset.original = original;
  const out = h('output', { for: inputId, class: 'utc small' });
  const problem = h('p', { id: `${inputId}-problem`, class: 'error-text small', role: 'status' });
  utcHint(input, out);
  const canEdit = hasRole('deployer');
  const busy = (buttons, on) => buttons.forEach((b) => { b.disabled = on; });
  const move = h('button', { type: 'button', class: 'small' }, 'Move');
  const cancel = h('button', { type: 'button', class: 'small danger' }, 'Cancel…');
  move.addEventListener('click', async () => {
    const checked = checkScheduleInput(input.value);
    problem.textContent = checked.problem || '';
    if (checked.problem) { input.focus(); return; }
    busy([move, cancel], true);
    try {
      await patch(`/deployments/${enc(d.id)}`, { at: checked.date.toISOString() });
      await done(`Deployment #${d.id} moved to ${describeTime(checked.date)} (${fmtUtc(checked.date.toISOString())}).`);
    } catch (e) {
      problem.textContent = e.message;
      busy([move, cancel], false);
    }
  });
  cancel.addEventListener('click', async () => {
    const reason = await confirmWithReason({ title: `Cancel deployment #${d.id}?`, what: `deployment #${d.id} (${d.application} ${d.release} build ${d.build} → ${d.stage})` });
    if (reason === null) return;
    busy([move, cancel], true);
    try {
      await post(`/deployments/${enc(d.id)}/cancel`, { comment: reason });
      await done(`Deployment #${d.id} cancelled: ${reason}`);
    } catch (e) {
      problem.textContent = e.message;
      busy([move, cancel], false);
    }
  });
  return h('tr', { 'data-id': d.id },
    h('th', { scope: 'row' }, h('a', { href: hashFor('deployments', d.id) }, `#${d.id}`)),
    h('td', null, `${d.application} ${d.release} build ${d.build} → ${d.stage} `, kindBadge(d.kind)),
    h('td', null, timeEl(whenOf(d)), h('div', { class: 'small muted' }, whenOf(d) ? `${fmtUtc(whenOf(d))} · ${relTime(whenOf(d))}` : '')),
    h('td', null, d.by || d.requested_by || ''),
    h('td', null, canEdit ? [h('div', { class: 'row-actions' },
      h('label', { for: inputId, class: 'sr-only' }, `New time for #${d.id}`), input, out, move, cancel), problem]
      : statusBadge(d.status)));
}
