// Audit log (#/audit, admins): every recorded change, newest first, filtered
// by actor, action (a prefix such as "user." or "deployment.approve"),
// subject and a from / to day; 50 a page; the filters are kept in the URL;
// "Export CSV" asks the server for every matching entry.
import { get, query } from '../api.js';
import { h, append, clear, timeEl, errorBox, loading } from '../dom.js';
import { dayBound } from './rollback_logs.js';

const PAGE = 50;
const FILTERS = [['actor', 'Actor'], ['action', 'Action'], ['subject', 'Subject']];

export async function renderAudit(main, ctx) {
  main.append(h('h1', null, 'Audit log'),
    h('p', { class: 'muted' }, 'Every change: who made it, what and when. Action is a prefix: "user." finds every user change.'));
  const q = ctx.query;
  const inputs = Object.fromEntries(FILTERS.map(([k]) => [k, h('input', { id: `au-${k}`, value: q.get(k) || '', autocomplete: 'off' })]));
  inputs.from = h('input', { type: 'date', id: 'au-from', value: q.get('from') || '' });
  inputs.to = h('input', { type: 'date', id: 'au-to', value: q.get('to') || '' });
  const csv = h('a', { id: 'au-csv', download: 'audit-log.csv', class: 'small' }, 'Export CSV');
  const form = h('form', { class: 'filters', 'aria-label': 'Filter the audit log' },
    [...FILTERS, ['from', 'From'], ['to', 'To']].map(([k, label]) => h('div', { class: 'field' }, h('label', { for: `au-${k}` }, label), inputs[k])),
    h('button', { type: 'submit' }, 'Filter'), csv);
  const body = h('div', null, loading());
  const pager = h('div', { class: 'actions-bar pager' });
  main.append(form, body, pager);
  const state = { offset: Number(q.get('offset')) || 0 };

  // What the URL keeps (days as typed) and what the API takes (RFC 3339).
  const typed = () => Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value.trim()]));
  const apiFilters = () => {
    const t = typed();
    return { ...t, from: dayBound(t.from, false), to: dayBound(t.to, true) };
  };

  async function load() {
    const f = apiFilters();
    csv.setAttribute('href', '/api/v1/audit' + query({ ...f, format: 'csv' }));
    const want = '#/audit' + query({ ...typed(), offset: state.offset || '' });
    if (location.hash !== want) history.replaceState(null, '', want);
    let items;
    try {
      items = (await get('/audit' + query({ ...f, limit: PAGE + 1, offset: state.offset }))).items || [];
    } catch (e) {
      clear(body).append(errorBox(e));
      clear(pager);
      return;
    }
    const more = items.length > PAGE;
    items = items.slice(0, PAGE);
    if (!items.length) clear(body).append(h('p', { class: 'muted', role: 'status' }, 'No audit entries match.'));
    else {
      clear(body).append(h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table', class: 'compact' },
        h('caption', { class: 'sr-only' }, 'Audit entries, newest first'),
        h('thead', null, h('tr', null, ['When', 'Actor', 'Action', 'Subject', 'Summary'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, items.map((e) => h('tr', { 'data-audit': e.id },
          h('td', { class: 'nowrap' }, timeEl(e.at)), h('td', null, e.actor), h('td', null, h('code', null, e.action)),
          h('td', null, e.subject), h('td', { class: 'audit-summary' }, e.summary)))))));
    }
    const prev = h('button', { type: 'button', class: 'small secondary', disabled: state.offset === 0 }, 'Previous');
    const next = h('button', { type: 'button', class: 'small secondary', disabled: !more }, 'Next');
    prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
    next.addEventListener('click', () => { state.offset += PAGE; load(); });
    append(clear(pager), state.offset === 0 && !more ? [] :
      [prev, h('span', { class: 'small muted', role: 'status' }, `${state.offset + 1}–${state.offset + items.length}`), next]);
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); state.offset = 0; load(); });
  await load();
}
