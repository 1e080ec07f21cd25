// "Rollback logs" (#/rollback-records): every rollback record with filters
// (application, stage, status, from / to), the columns the user chooses
// (remembered in localStorage), a CSV export of the same filters and paging.
import { get, query } from '../api.js';
import { h, append, clear, hashFor, timeEl, statusBadge, errorBox, loading } from '../dom.js';

const STATUSES = ['', 'draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'executing', 'executed', 'failed',
  'validated', 'validation-failed'];
const PAGE = 50;
const STORAGE_KEY = 'reprise.rollbackLogs.columns';

const approvers = (r) => (r.approved_by || (r.approvals || []).filter((a) => a.decision === 'approved').map((a) => a.user)).join(', ');

// [key, header, cell(record), shown by default]
const COLUMNS = [
  ['status', 'Status', (r) => statusBadge(r.status), true],
  ['application', 'Application', (r) => r.application, true],
  ['stage', 'Stage', (r) => r.stage, true],
  ['build', 'Build', (r) => `${r.release} build ${r.build}`, true],
  ['deployment', 'Deployment', (r) => h('a', { href: hashFor('deployments', r.deployment_id) }, `#${r.deployment_id}`), false],
  ['components', 'Components', (r) => `${r.components_selected ?? '?'} of ${r.components_total ?? '?'}`, true],
  ['created', 'Created', (r) => [r.created_by || '', ' ', timeEl(r.created_at)], true],
  ['submitted', 'Submitted', (r) => (r.submitted_at ? [r.submitted_by || '', ' ', timeEl(r.submitted_at)] : '—'), false],
  ['approved', 'Approved by', (r) => approvers(r) || '—', true],
  ['executed', 'Executed', (r) => (r.executed_at ? [r.executed_by || '', ' ', timeEl(r.executed_at)] : '—'), true],
  ['validated', 'Validated', (r) => (r.validated_at ? [r.validated_by || '', ' ', timeEl(r.validated_at)] : '—'), false],
  ['log', 'Log', (r) => (r.execution_deployment_id ? h('a', { href: hashFor('deployments', r.execution_deployment_id) }, `#${r.execution_deployment_id}`) : '—'), true],
  ['comment', 'Comment', (r) => r.comment || '', false],
];

function loadColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
    if (Array.isArray(saved)) return new Set(saved.filter((k) => COLUMNS.some((c) => c[0] === k)));
  } catch { /* unreadable: use the defaults */ }
  return new Set(COLUMNS.filter((c) => c[3]).map((c) => c[0]));
}

function saveColumns(cols) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify([...cols]));
  } catch { /* storage refused: the choice lasts for this page only */ }
}

// A date input's day as RFC 3339 in the browser's zone: the day's start, or
// (for "to") the next day's start, so the whole day is included.
export function dayBound(value, end) {
  if (!value) return '';
  const [y, m, d] = value.split('-').map(Number);
  const t = new Date(y, m - 1, d + (end ? 1 : 0));
  return isNaN(t) ? '' : t.toISOString();
}

export async function renderRollbackLogs(main, ctx) {
  main.append(h('h1', null, 'Rollback logs'),
    h('p', { class: 'muted' }, 'Rollback records of succeeded deployments: who created, approved, executed and validated each, and when.'));
  const q = ctx.query;
  const app = h('input', { id: 'rl-app', value: q.get('application') || '' });
  const stage = h('input', { id: 'rl-stage', value: q.get('stage') || '' });
  const status = h('select', { id: 'rl-status' }, STATUSES.map((s) => h('option', { value: s, selected: s === (q.get('status') || '') }, s || 'any')));
  const from = h('input', { type: 'date', id: 'rl-from' });
  const to = h('input', { type: 'date', id: 'rl-to' });
  const csv = h('a', { id: 'rl-csv', download: 'rollback-records.csv' }, 'Export CSV');
  const form = h('form', { class: 'filters' },
    h('div', { class: 'field' }, h('label', { for: 'rl-app' }, 'Application'), app),
    h('div', { class: 'field' }, h('label', { for: 'rl-stage' }, 'Stage'), stage),
    h('div', { class: 'field' }, h('label', { for: 'rl-status' }, 'Status'), status),
    h('div', { class: 'field' }, h('label', { for: 'rl-from' }, 'From'), from),
    h('div', { class: 'field' }, h('label', { for: 'rl-to' }, 'To'), to),
    h('button', { type: 'submit' }, 'Filter'), csv);
  const columns = loadColumns();
  const chooser = h('details', { class: 'columns-chooser' }, h('summary', null, 'Columns'),
    h('fieldset', null, h('legend', null, 'Show these columns'), COLUMNS.map(([key, label]) => {
      const id = `rl-col-${key}`;
      const box = h('input', { type: 'checkbox', id, checked: columns.has(key) });
      box.addEventListener('change', () => {
        if (box.checked) columns.add(key); else columns.delete(key);
        saveColumns(columns);
        draw();
      });
      return h('span', { class: 'checkbox' }, box, h('label', { for: id }, label));
    })));
  const body = h('div', null, loading());
  const pager = h('div', { class: 'actions-bar pager' });
  main.append(form, chooser, body, pager);
  const state = { offset: 0, items: [], next: null };

  const filters = () => ({
    application: app.value.trim(), stage: stage.value.trim(), status: status.value,
    from: dayBound(from.value, false), to: dayBound(to.value, true),
  });

  function draw() {
    const cols = COLUMNS.filter((c) => columns.has(c[0]));
    if (!state.items.length) { clear(body).append(h('p', { class: 'muted' }, 'No rollback records match.')); return; }
    clear(body).append(h('div', { class: 'table-wrap' }, h('table', { id: 'rollback-logs' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, '#'), cols.map((c) => h('th', { scope: 'col', 'data-col': c[0] }, c[1])))),
      h('tbody', null, state.items.map((r) => h('tr', { 'data-record': r.id },
        h('th', { scope: 'row' }, h('a', { href: hashFor('rollback-records', r.id) }, `#${r.id}`)),
        cols.map((c) => h('td', { 'data-col': c[0] }, c[2](r)))))))));
  }

  async function load() {
    const f = filters();
    csv.setAttribute('href', '/api/v1/rollback-records' + query({ ...f, format: 'csv' }));
    try {
      const r = await get('/rollback-records' + query({ ...f, limit: PAGE, offset: state.offset }));
      state.items = r.items || [];
      state.next = r.next_offset ?? null;
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    draw();
    const prev = h('button', { type: 'button', class: 'small secondary', disabled: state.offset === 0 }, 'Previous');
    const next = h('button', { type: 'button', class: 'small secondary', disabled: state.next === null }, 'Next');
    prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
    next.addEventListener('click', () => { state.offset = state.next; load(); });
    append(clear(pager), state.offset === 0 && state.next === null ? [] :
      [prev, h('span', { class: 'small muted' }, `${state.offset + 1}–${state.offset + state.items.length}`), next]);
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); state.offset = 0; load(); });
  await load();
}
