// Deployments: a filterable list, and the scheduled ones with move and cancel.
import { get, post, patch, enc, query } from '../api.js';
import { h, clear, fmtUtc, whenOf, hashFor, timeEl, relTime, statusBadge, kindBadge, errorBox, loading, flash, table } from '../dom.js';
import { hasRole } from '../session.js';
import { deploymentsTable } from './build.js';
import { toLocalInput, utcHint, zoneName } from './deploy_dialog.js';

const STATUSES = ['', 'scheduled', 'waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'expired'];

export async function renderDeployments(main, ctx) {
  main.append(h('h1', null, 'Deployments'));
  const app = h('input', { id: 'f-app', value: ctx.query.get('application') || '' });
  const stage = h('input', { id: 'f-stage', value: ctx.query.get('stage') || '' });
  const status = h('select', { id: 'f-status' }, STATUSES.map((s) => h('option', { value: s, selected: s === (ctx.query.get('status') || '') }, s || 'any')));
  const form = h('form', { class: 'filters' },
    h('div', { class: 'field' }, h('label', { for: 'f-app' }, 'Application'), app),
    h('div', { class: 'field' }, h('label', { for: 'f-stage' }, 'Stage'), stage),
    h('div', { class: 'field' }, h('label', { for: 'f-status' }, 'Status'), status),
    h('button', { type: 'submit' }, 'Filter'));
  const body = h('div', null, loading());
  main.append(form, body);
  const load = async () => {
    try {
      const r = await get('/deployments' + query({ application: app.value.trim(), stage: stage.value.trim(), status: status.value, limit: 200 }));
      clear(body).append(r.items.length ? deploymentsTable(r.items) : h('p', { class: 'muted' }, 'No deployments match.'));
    } catch (e) {
      clear(body).append(errorBox(e));
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}

export async function renderScheduled(main) {
  main.append(h('h1', null, 'Scheduled deployments'),
    h('p', { class: 'muted' }, `Times are shown in your time zone (${zoneName()}) with UTC beside them.`));
  const body = h('div', null, loading());
  main.append(body);
  const load = async () => {
    let r;
    try {
      r = await get('/deployments' + query({ status: 'scheduled', limit: 1000 }));
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    if (document.activeElement && body.contains(document.activeElement)) return;  // the user is editing
    const items = [...r.items].sort((a, b) => String(whenOf(a)).localeCompare(String(whenOf(b))));
    if (!items.length) { clear(body).append(h('p', { class: 'muted' }, 'Nothing is scheduled.')); return; }
    clear(body).append(table(['#', 'Deployment', 'When', 'Requested by', 'Actions'], items.map((d) => row(d, load))));
  };
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}

function row(d, reload) {
  const inputId = `move-${d.id}`;
  const input = h('input', { type: 'datetime-local', step: '1', id: inputId, value: whenOf(d) ? toLocalInput(new Date(whenOf(d))) : '' });
  const out = h('output', { for: inputId, class: 'utc small' });
  utcHint(input, out);
  const canEdit = hasRole('deployer');
  return h('tr', null,
    h('th', { scope: 'row' }, h('a', { href: hashFor('deployments', d.id) }, `#${d.id}`)),
    h('td', null, `${d.application} ${d.release} build ${d.build} → ${d.stage} `, kindBadge(d.kind)),
    h('td', null, timeEl(whenOf(d)), h('div', { class: 'small muted' }, whenOf(d) ? `${fmtUtc(whenOf(d))} · ${relTime(whenOf(d))}` : '')),
    h('td', null, d.requested_by || d.created_by || ''),
    h('td', null, h('div', { class: 'row-actions' }, canEdit ? [
      h('label', { for: inputId, class: 'sr-only' }, `New time for #${d.id}`), input, out,
      h('button', { type: 'button', class: 'small', onclick: async () => {
        try {
          await patch(`/deployments/${enc(d.id)}`, { at: new Date(input.value).toISOString() });
          flash(`Deployment #${d.id} moved.`, 'ok');
          input.blur();
          reload();
        } catch (e) { flash(e.message); }
      } }, 'Move'),
      h('button', { type: 'button', class: 'small danger', onclick: async () => {
        try {
          await post(`/deployments/${enc(d.id)}/cancel`, {});
          flash(`Deployment #${d.id} cancelled.`, 'ok');
          reload();
        } catch (e) { flash(e.message); }
      } }, 'Cancel'),
    ] : statusBadge(d.status))));
}
