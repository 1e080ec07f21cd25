// Scheduling for people: checks of a chosen time before anything is sent
// ("The time is in the past: 14:02 today."), what a deployment request really
// did ("requested; waiting for 1 approval from release-manager"), and the
// confirmation with a reason asked before cancelling a scheduled deployment.
import { h, fmtUtc } from './dom.js';

// The API refuses times further ahead (a wrong year, not a plan).
export const MAX_AHEAD_DAYS = 366;
// As the API: a time this little in the past means "now" (the seconds spent
// filling the form), further back it is refused.
const PAST_TOLERANCE_MS = 60 * 1000;

function pad(n) {
  return String(n).padStart(2, '0');
}

function dayStart(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

// "14:02 today", "09:30 tomorrow", "14:02 on Mon, 23 Nov 2026" (local time).
export function describeTime(d, now = new Date()) {
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}${d.getSeconds() ? ':' + pad(d.getSeconds()) : ''}`;
  const days = Math.round((dayStart(d) - dayStart(now)) / 86400000);
  if (days === 0) return `${hm} today`;
  if (days === 1) return `${hm} tomorrow`;
  if (days === -1) return `${hm} yesterday`;
  return `${hm} on ${d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })}`;
}

// The value of a datetime-local input as {date} or {problem} (a sentence).
export function checkScheduleInput(value, now = new Date()) {
  if (!value) return { problem: 'Choose a date and a time first.' };
  const d = new Date(value);
  if (isNaN(d)) return { problem: `"${value}" is not a complete date and time.` };
  if (d.getTime() < now.getTime() - PAST_TOLERANCE_MS) return { problem: `The time is in the past: ${describeTime(d, now)}.` };
  if (d.getTime() - now.getTime() > MAX_AHEAD_DAYS * 86400000) {
    return { problem: `The time is too far ahead: ${describeTime(d, now)}. A deployment can be scheduled at most ${MAX_AHEAD_DAYS} days ahead.` };
  }
  return { date: d };
}

// What a freshly requested deployment is doing, in one sentence.
export function describeRequested(d) {
  const name = `Deployment #${d.id}`;
  const open = (d.gates || []).filter((g) => !g.holds);
  if (d.status === 'scheduled') {
    const when = d.scheduled_at ? new Date(d.scheduled_at) : null;
    return when ? `${name} scheduled for ${describeTime(when)} (${fmtUtc(d.scheduled_at)}).` : `${name} scheduled.`;
  }
  if (d.status === 'waiting') {
    const reasons = open.map(gateReason).filter(Boolean);
    return reasons.length ? `${name} requested; ${reasons.join('; ')}.` : `${name} requested; checking its gates.`;
  }
  if (d.status === 'queued') return `${name} requested; queued until the stage's targets are free.`;
  if (d.status === 'running') return `${name} started.`;
  return `${name} requested; it is ${d.status}.`;
}

function gateReason(g) {
  const m = /^(\d+) of (\d+) approvals? from (.+)$/.exec(g.detail || '');
  if (g.gate === 'approvals' && m) {
    const missing = Number(m[2]) - Number(m[1]);
    return `waiting for ${missing} approval${missing === 1 ? '' : 's'} from ${m[3]}`;
  }
  if (g.gate === 'window') return `waiting for the deployment window (${String(g.detail || '').replace(/^outside /, '')})`;
  if (g.gate === 'previous-stage') return `waiting: ${g.detail}`;
  return `waiting for the ${g.gate} gate${g.detail ? ` (${g.detail})` : ''}`;
}

// A notice about one deployment, shown on its page while its status is
// still the one the notice describes (so it never outlives what it says).
const notices = new Map();

export function rememberNotice(d) {
  notices.set(String(d.id), { status: d.status, text: describeRequested(d) });
}

export function noticeFor(d) {
  const n = notices.get(String(d.id));
  if (!n) return null;
  if (n.status !== d.status) {
    notices.delete(String(d.id));
    return null;
  }
  return n.text;
}

let dialogCounter = 0;

// Asks for a reason in a modal dialog; resolves to the reason, or null when
// the user keeps the deployment. `what` names it ("deployment #6").
export function confirmWithReason({ title, what, confirmLabel = 'Cancel deployment', keepLabel = 'Keep it' }) {
  return new Promise((resolve) => {
    const id = `reason-${++dialogCounter}`;
    const opener = document.activeElement;
    const reason = h('textarea', { id, rows: 3, required: true, 'aria-describedby': `${id}-err` });
    const err = h('p', { id: `${id}-err`, class: 'error-text', role: 'status' });
    const confirm = h('button', { type: 'submit', class: 'danger' }, confirmLabel);
    const keep = h('button', { type: 'button', class: 'secondary' }, keepLabel);
    const form = h('form', { novalidate: true },
      h('h2', { id: `${id}-title` }, title),
      h('p', null, `Why cancel ${what}? The reason is kept in the audit trail.`),
      h('div', { class: 'field' }, h('label', { for: id }, 'Reason'), reason), err,
      h('div', { class: 'actions' }, keep, confirm));
    const dialog = h('dialog', { class: 'reason-dialog', 'aria-labelledby': `${id}-title` }, form);
    let answer = null;
    keep.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) {
        err.textContent = 'Give a reason first.';
        reason.focus();
        return;
      }
      answer = reason.value.trim();
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}
