// Approvals inbox: deployments waiting at their gates (approve or reject with
// a comment) and paused plans waiting for a manual step (continue).
import { get, post, enc, query } from '../api.js';
import { h, clear, hashFor, timeEl, statusBadge, kindBadge, errorBox, loading, flash } from '../dom.js';
import { approvalRefusal } from './approval_rules.js';

export async function renderApprovals(main) {
  main.append(h('h1', null, 'Approvals'));
  const body = h('div', null, loading());
  main.append(body);
  const load = async () => {
    if (document.activeElement && body.contains(document.activeElement) && document.activeElement.tagName === 'TEXTAREA') return;
    let waiting;
    let running = [];
    try {
      waiting = (await get('/deployments' + query({ status: 'waiting', limit: 1000 }))).items;
      // The detail carries the gates and the approvals so far.
      waiting = await Promise.all(waiting.map((d) => get(`/deployments/${enc(d.id)}`).catch(() => d)));
      const live = (await get('/deployments' + query({ status: 'running', limit: 1000 }))).items;
      // Only the detail says whether a plan waits at a manual step.
      running = (await Promise.all(live.map((d) => get(`/deployments/${enc(d.id)}`).catch(() => d)))).filter((d) => d.manual);
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    clear(body);
    if (!waiting.length && !running.length) { body.append(h('p', { class: 'muted' }, 'Nothing is waiting for you.')); return; }
    const refusals = await Promise.all(waiting.map((d) => approvalRefusal(d)));
    waiting.forEach((d, i) => { d.refusal = refusals[i]; });
    for (const d of [...waiting, ...running]) body.append(card(d, load));
  };
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}

function card(d, reload) {
  const cid = `c-${d.id}`;
  const comment = h('textarea', { id: cid, rows: 2 });
  const errors = h('div');
  const DONE = { approve: 'approval recorded', reject: 'rejection recorded', continue: 'continued' };
  const act = (label, path, cls) => h('button', { type: 'button', class: cls, 'aria-label': `${label} deployment #${d.id}`, onclick: async (ev) => {
    ev.target.disabled = true;
    clear(errors);
    try {
      await post(`/deployments/${enc(d.id)}/${path}`, comment.value.trim() ? { comment: comment.value.trim() } : {});
      flash(`Deployment #${d.id}: ${DONE[path]}.`, 'ok');
      window.dispatchEvent(new Event('reprise:approvals-changed'));
      reload();
    } catch (e) {
      errors.append(errorBox(e));
      ev.target.disabled = false;
    }
  } }, label);
  const gates = d.gates || [];
  const manual = !!d.manual;
  return h('section', { class: 'card approval', 'aria-labelledby': `${cid}-h` },
    h('h2', { id: `${cid}-h` }, h('a', { href: hashFor('deployments', d.id) }, `#${d.id} ${d.application} ${d.release} build ${d.build} → ${d.stage}`), ' ',
      statusBadge(d.status), ' ', kindBadge(d.kind)),
    h('p', { class: 'small muted' }, 'Requested by ', d.by || d.requested_by || '—', ' · ', timeEl(d.created_at), d.comment ? ` · “${d.comment}”` : ''),
    manual ? h('p', { class: 'warn' }, `Manual step: ${d.manual.message || d.manual.step || ''}`, d.manual.role ? ` (needs ${d.manual.role})` : '') : null,
    gates.length ? h('ul', { class: 'gates' }, gates.map((g) => h('li', { class: g.holds ? 'ok' : 'no' },
      h('span', { class: 'gate-mark', 'aria-hidden': 'true' }, g.holds ? '✓' : '✗'), ' ', h('strong', null, g.gate), g.detail ? `: ${g.detail}` : ''))) : null,
    (d.approvals || []).length ? h('p', { class: 'small' }, 'So far: ', d.approvals.filter((a) => !a.revoked).map((a) => `${a.user} ${a.decision}${a.comment ? ` (“${a.comment}”)` : ''}`).join('; ')) : null,
    h('label', { for: cid }, 'Comment'), comment, errors,
    !manual && d.refusal ? h('p', { class: 'muted small refusal' }, d.refusal) : null,
    h('div', { class: 'actions' }, manual ? act('Continue', 'continue', 'primary')
      : d.refusal ? null : [act('Approve', 'approve', 'primary'), act('Reject', 'reject', 'danger')]));
}
