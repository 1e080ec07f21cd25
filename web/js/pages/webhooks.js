// Webhooks (#/webhooks, admins): the list and a form for a new one; one
// webhook (#/webhooks/{name}): its settings (the secret stays masked: "******"
// keeps it), a test delivery, deleting it, and its deliveries, newest first,
// each redeliverable.
import { get, put, post, del, enc } from '../api.js';
import { h, clear, hashFor, timeEl, errorBox, loading, table, statusBadge, act, field } from '../dom.js';
import { openDetail } from './detail.js';

const EVENTS = [
  'deployment.requested', 'deployment.waiting', 'deployment.started', 'deployment.succeeded',
  'deployment.failed', 'deployment.cancelled', 'deployment.expired', 'deployment.rolled-back',
  'approval.needed', 'hold.placed',
  'rollback-record.created', 'rollback-record.submitted', 'rollback-record.approved',
  'rollback-record.rejected', 'rollback-record.scheduled', 'rollback-record.executing',
  'rollback-record.executed', 'rollback-record.failed', 'rollback-record.validated',
  'rollback-record.validation-failed', 'agent.offline',
];
const MASKED = '******';

// The settings form; `hook` is the stored webhook (null for a new one).
// Returns { form, read() } where read() gives the PUT body.
function settingsForm(hook, submitText) {
  const name = hook ? null : h('input', { id: 'wh-name', autocomplete: 'off', required: true });
  const url = h('input', { id: 'wh-url', type: 'url', value: hook ? hook.url : '', required: true, autocomplete: 'off' });
  const secret = h('input', {
    id: 'wh-secret', type: 'password', autocomplete: 'new-password', value: hook ? MASKED : '',
    'aria-describedby': 'wh-secret-hint',
  });
  const format = h('select', { id: 'wh-format' }, ['json', 'slack'].map((f) =>
    h('option', { value: f, selected: hook ? hook.format === f : f === 'json' }, f)));
  const enabled = h('input', { id: 'wh-enabled', type: 'checkbox', checked: hook ? hook.enabled : true });
  const chosen = new Set(hook ? hook.events : ['deployment.succeeded', 'deployment.failed']);
  const boxes = EVENTS.map((e) => h('input', { type: 'checkbox', value: e, checked: chosen.has(e), id: `wh-ev-${e}` }));
  const events = h('fieldset', { class: 'webhook-events' }, h('legend', null, 'Events'),
    boxes.map((b) => h('label', { for: b.id, class: 'webhook-event' }, b, ' ', b.value)));
  const submit = h('button', { type: 'submit' }, submitText);
  const form = h('form', { class: 'card webhook-form', 'aria-label': hook ? 'Webhook settings' : 'Create a webhook' },
    name ? field('wh-name', 'Name', name) : null,
    field('wh-url', 'URL', url, 'http or https; private and loopback addresses are refused unless the server allows them'),
    field('wh-secret', 'Secret', secret, hook ? 'shown masked; leave ****** to keep it' : '16 to 256 characters; receivers verify X-Reprise-Signature with it'),
    field('wh-format', 'Format', format),
    h('div', { class: 'field' }, h('label', { for: 'wh-enabled' }, enabled, ' Enabled')),
    events, submit);
  const read = () => ({
    name: name ? name.value.trim() : hook.name,
    body: {
      url: url.value.trim(), secret: secret.value, format: format.value, enabled: enabled.checked,
      events: boxes.filter((b) => b.checked).map((b) => b.value),
    },
  });
  return { form, submit, read };
}

export async function renderWebhooks(main) {
  main.append(h('h1', null, 'Webhooks'),
    h('p', { class: 'muted' }, 'Where Reprise POSTs its events (signed with each webhook\'s secret, retried for 24 hours).'));
  const body = h('div', null, loading());
  const out = h('div', { role: 'status' });
  const { form, submit, read } = settingsForm(null, 'Create webhook');
  main.append(h('h2', null, 'All webhooks'), body, h('h2', null, 'New webhook'), form, out);
  const load = async () => {
    let hooks;
    try {
      hooks = (await get('/webhooks?limit=1000')).items || [];
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    clear(body).append(hooks.length === 0 ? h('p', { class: 'muted' }, 'No webhooks yet.')
      : table(['Name', 'URL', 'Events', 'Format', 'State', 'Updated'], hooks.map((w) => h('tr', { 'data-webhook': w.name },
        h('th', { scope: 'row' }, h('a', { href: hashFor('webhooks', w.name) }, w.name)),
        h('td', { class: 'webhook-url' }, w.url), h('td', null, w.events.join(', ')), h('td', null, w.format),
        h('td', null, statusBadge(w.enabled ? 'enabled' : 'disabled')), h('td', null, timeEl(w.updated_at)))),
      { id: 'webhooks-table' }));
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const { name, body: hook } = read();
    const created = await act(submit, out, () => put(`/webhooks/${enc(name)}`, hook), (r) => `Webhook ${r.name} saved.`);
    if (created) {
      form.reset();
      await load();
    }
  });
  await load();
}

export async function renderWebhook(main, ctx) {
  const name = ctx.params.name;
  let hook = await openDetail(main, { href: '#/webhooks', title: 'Webhooks' }, name, `/webhooks/${enc(name)}`);
  if (!hook) return;
  const out = h('div', { role: 'status' });
  const { form, submit, read } = settingsForm(hook, 'Save');
  const test = h('button', { type: 'button', class: 'secondary', id: 'wh-test' }, 'Send test');
  const remove = h('button', { type: 'button', class: 'danger', id: 'wh-delete' }, 'Delete webhook');
  const refresh = h('button', { type: 'button', class: 'secondary small', id: 'wh-refresh' }, 'Refresh');
  const deliveries = h('div', null, loading());
  main.append(form, h('p', { class: 'webhook-actions' }, test, ' ', remove), out,
    h('h2', null, 'Deliveries'), h('p', { class: 'webhook-refresh' }, refresh), deliveries);

  const load = async () => {
    let list;
    try {
      list = (await get(`/webhooks/${enc(name)}/deliveries?limit=100`)).items || [];
    } catch (e) {
      clear(deliveries).append(errorBox(e));
      return;
    }
    clear(deliveries).append(list.length === 0 ? h('p', { class: 'muted' }, 'No deliveries yet.')
      : table(['#', 'Event', 'Status', 'Attempts', 'Response', 'Queued', 'Last attempt', 'Error', ''], list.map((d) => {
        const again = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Redeliver ${d.id}` }, 'Redeliver');
        again.addEventListener('click', async () => {
          const r = await act(again, out, () => post(`/webhooks/${enc(name)}/deliveries/${d.id}/redeliver`), (x) => `Queued again as delivery ${x.id}.`);
          if (r) await load();
        });
        return h('tr', { 'data-delivery': String(d.id) },
          h('td', null, String(d.id)), h('td', null, d.event), h('td', null, statusBadge(d.status)),
          h('td', null, String(d.attempts)), h('td', null, d.response_code ? String(d.response_code) : '—'),
          h('td', null, timeEl(d.created_at)), h('td', null, d.last_attempt_at ? timeEl(d.last_attempt_at) : '—'),
          h('td', { class: 'small' }, d.error || ''), h('td', null, again));
      }), { id: 'deliveries-table' }));
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const saved = await act(submit, out, () => put(`/webhooks/${enc(name)}`, read().body), 'Saved.');
    if (saved) hook = saved;
  });
  test.addEventListener('click', async () => {
    const r = await act(test, out, () => post(`/webhooks/${enc(name)}/test`), (x) => `Test delivery ${x.id} queued.`);
    if (r) await load();
  });
  remove.addEventListener('click', async () => {
    if (!window.confirm(`Delete webhook ${name} and its deliveries?`)) return;
    const r = await act(remove, out, () => del(`/webhooks/${enc(name)}`));
    if (r) location.hash = '#/webhooks';
  });
  refresh.addEventListener('click', load);
  await load();
}
