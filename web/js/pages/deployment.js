// One deployment: status, per-target progress, gates, approvals, the live
// log (server-sent events, auto-scroll, reconnects; falls back to polling),
// the execution context (sensitive values masked by the server) and its audit trail.
import { get, post, patch, enc, query } from '../api.js';
import { h, append, clear, fmtUtc, whenOf, hashFor, timeEl, statusBadge, kindBadge, fmtBytes, fmtDuration, dl, errorBox, flash, FINAL, table } from '../dom.js';
import { hasRole } from '../session.js';
import { toLocalInput, utcHint } from './deploy_dialog.js';
import { rollbackControls } from './rollback_picker.js';
import { approvalRefusal } from './approval_rules.js';
import { renderExecutionContext } from './exec_context.js';
import { checkScheduleInput, confirmWithReason, noticeFor } from '../schedule.js';
import { IN_PROGRESS, repeat } from '../poll.js';

export async function renderDeployment(main, ctx) {
  const id = ctx.params.id;
  const state = { dep: null, lastSeq: 0, es: null, poll: null, logPoll: null, closed: false, follow: true };
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/deployments' }, 'Deployments'), ' / ');
  const title = h('h1', null, `Deployment #${id}`);
  const statusLine = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite', id: 'deployment-status' });
  const notice = h('p', { class: 'notice', id: 'deployment-notice', role: 'status', hidden: true });
  const actions = h('div', { class: 'actions-bar' });
  const rollbackBar = h('div', { class: 'actions-bar' });
  const summary = h('div');
  const targetsBox = h('section', { 'aria-labelledby': 'dep-targets-h' });
  const gatesBox = h('section');
  const logState = h('span', { class: 'small muted', id: 'log-state' }, 'connecting…');
  const followBox = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const logEl = h('div', { class: 'log', id: 'deployment-log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Deployment log', tabindex: '0' });
  const contextBox = h('section');
  const auditBox = h('section');
  main.append(crumbs, title, notice, statusLine, actions, rollbackBar, summary, targetsBox, gatesBox,
    h('section', { 'aria-labelledby': 'dep-log-h' },
      h('div', { class: 'log-head' }, h('h2', { id: 'dep-log-h' }, 'Log'), logState,
        h('span', { class: 'checkbox' }, followBox, h('label', { for: 'log-follow' }, 'Follow'))),
      logEl),
    contextBox, auditBox);

  followBox.addEventListener('change', () => {
    state.follow = followBox.checked;
    if (state.follow) logEl.scrollTop = logEl.scrollHeight;
  });
  logEl.addEventListener('scroll', () => {
    const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 8;
    if (!atBottom && state.follow && !state.autoScrolling) { state.follow = false; followBox.checked = false; }
    if (atBottom && !state.follow) { state.follow = true; followBox.checked = true; }
    state.autoScrolling = false;
  });

  function addLines(lines) {
    let added = false;
    for (const l of lines) {
      if (!l || typeof l !== 'object') continue;
      const seq = Number(l.seq);
      if (!isNaN(seq) && seq <= state.lastSeq) continue;
      if (!isNaN(seq)) state.lastSeq = seq;
      const t = l.at ? new Date(l.at) : null;
      logEl.append(h('div', { class: `line lvl-${String(l.level || 'info').replace(/[^a-z]/g, '')}` },
        h('span', { class: 'ts', title: l.at || '' }, t && !isNaN(t) ? t.toLocaleTimeString() : ''),
        l.target ? h('span', { class: 'tg' }, l.target) : null,
        l.level && l.level !== 'info' ? h('span', { class: 'lv' }, l.level) : null,
        h('span', { class: 'tx' }, l.text ?? l.message ?? '')));
      added = true;
    }
    if (added && state.follow) {
      state.autoScrolling = true;
      logEl.scrollTop = logEl.scrollHeight;
    }
  }

  async function fetchLog() {
    const r = await get(`/deployments/${enc(id)}/log${query({ after: state.lastSeq })}`);
    addLines((r && (r.lines || r.items)) || []);
  }

  function onEvent(ev) {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (ev.lastEventId && Number(ev.lastEventId) > 0 && data && data.seq === undefined) data.seq = Number(ev.lastEventId);
    if (Array.isArray(data)) addLines(data);
    else if (data && Array.isArray(data.lines)) addLines(data.lines);
    else if (data && (data.text !== undefined || data.message !== undefined)) addLines([data]);
    if (data && data.status) refreshDeployment();
  }

  function startStream() {
    if (state.closed || typeof EventSource === 'undefined') { startLogPolling(); return; }
    const es = new EventSource(`/api/v1/deployments/${enc(id)}/log${query({ after: state.lastSeq })}`);
    state.es = es;
    let opened = false;
    es.onopen = () => { opened = true; logState.textContent = 'live'; };
    es.onmessage = onEvent;
    for (const name of ['line', 'log']) es.addEventListener(name, onEvent);
    for (const name of ['status', 'progress']) es.addEventListener(name, (ev) => { onEvent(ev); refreshDeployment(); });
    for (const name of ['end', 'done', 'close', 'finished']) es.addEventListener(name, async () => {
      es.close();
      await refreshDeployment();
      fetchLog().catch(() => {});
      logState.textContent = 'finished';
    });
    es.onerror = () => {
      if (state.closed) return;
      if (state.dep && FINAL.has(state.dep.status)) {
        es.close();
        fetchLog().catch(() => {});
        logState.textContent = 'finished';
        return;
      }
      if (es.readyState === EventSource.CLOSED || !opened) {
        // The server refused the stream: read the log by polling instead.
        es.close();
        startLogPolling();
      } else {
        logState.textContent = 'reconnecting…';
      }
    };
  }

  function startLogPolling() {
    if (state.logPoll || state.closed) return;
    logState.textContent = 'polling';
    state.logPoll = setInterval(() => fetchLog().catch(() => {}), 1000);
  }

  async function refreshDeployment() {
    let d;
    try {
      d = await get(`/deployments/${enc(id)}`);
    } catch (e) {
      if (!state.dep) throw e;
      return;
    }
    const wasFinal = state.dep && FINAL.has(state.dep.status);
    state.dep = d;
    draw(d);
    loadAudit();
    if (FINAL.has(d.status) && !wasFinal) {
      // Final: read whatever is left and stop streaming.
      setTimeout(() => {
        fetchLog().catch(() => {});
        if (state.es) state.es.close();
        clearInterval(state.logPoll);
        state.logPoll = null;
        logState.textContent = 'finished';
      }, 400);
      if (state.poll) state.poll.stop();
      state.poll = null;
    }
  }

  function draw(d) {
    title.textContent = `Deployment #${d.id ?? id}: ${d.application || ''} ${d.release} build ${d.build} → ${d.stage}`;
    append(clear(crumbs), [h('a', { href: '#/deployments' }, 'Deployments'), ' / ',
      d.application ? [h('a', { href: hashFor('apps', d.application) }, d.application), ' / '] : null]);
    const started = d.started_at ? new Date(d.started_at) : null;
    const finished = d.finished_at ? new Date(d.finished_at) : null;
    const duration = d.duration_ms ?? (started ? (finished || new Date()) - started : null);
    append(clear(statusLine), ['Status: ', statusBadge(d.status), ' ', kindBadge(d.kind),
      d.status === 'scheduled' && whenOf(d) ? [' for ', timeEl(whenOf(d))] : null,
      d.automatic ? h('span', { class: 'badge' }, 'automatic') : null,
      d.error ? h('span', { class: 'status-msg error-text' }, ` ${d.error}`) : null]);
    const said = noticeFor(d);
    notice.textContent = said || '';
    notice.hidden = !said;
    clear(summary).append(dl([
      ['Build', d.application ? h('a', { href: hashFor('apps', d.application, 'releases', d.release, 'builds', d.build) }, `${d.release} build ${d.build}`) : `${d.release} build ${d.build}`],
      ['Stage', d.stage],
      ['Requested by', d.automatic ? `automation (automatic promotion; the build was deployed by ${d.requested_by})` : d.requested_by || '—'],
      ['Requested', timeEl(d.created_at)],
      whenOf(d) ? ['Scheduled for', [timeEl(whenOf(d)), h('span', { class: 'small muted' }, ` (${fmtUtc(whenOf(d))})`)]] : null,
      ['Started', timeEl(d.started_at)],
      ['Finished', timeEl(d.finished_at)],
      ['Duration', fmtDuration(duration)],
      typeof d.context === 'string' && d.context ? ['Variables', d.context === 'current' ? 'current settings' : 'as deployed'] : null,
      d.forced || d.force ? ['Forced', 'yes (gates skipped)'] : null,
      d.comment ? ['Comment', d.comment] : null,
    ]));
    drawActions(d);
    rollbackControls(rollbackBar, d, state);
    drawTargets(d);
    drawGates(d);
    drawContext(d);
  }

  async function drawActions(d) {
    const sig = JSON.stringify([d.status, d.manual || null, whenOf(d)]);
    if (sig === state.actionsSig) return;
    state.actionsSig = sig;
    // Approve and Reject only for who may: the stage's role, not the requester.
    const refusal = d.status === 'waiting' ? await approvalRefusal(d) : null;
    if (sig !== state.actionsSig) return;  // a newer state is being drawn
    clear(actions);
    const act = (label, fn, cls = '') => h('button', { type: 'button', class: cls, onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        await fn();
        await refreshDeployment();
      } catch (e) {
        for (const old of actions.querySelectorAll('.error')) old.remove();
        actions.append(errorBox(e));
      } finally {
        ev.target.disabled = false;
      }
    } }, label);
    if (['scheduled', 'waiting', 'queued', 'running'].includes(d.status) && hasRole('deployer')) {
      actions.append(act(d.status === 'running' ? 'Stop' : 'Cancel deployment', async () => {
        if (d.status !== 'scheduled') return post(`/deployments/${enc(id)}/cancel`, {});
        const reason = await confirmWithReason({ title: `Cancel deployment #${d.id}?`, what: `scheduled deployment #${d.id}` });
        return reason === null ? null : post(`/deployments/${enc(id)}/cancel`, { comment: reason });
      }, 'danger'));
    }
    if (refusal) actions.append(h('span', { class: 'muted small refusal' }, refusal));
    if (d.status === 'waiting' && !refusal) {
      const comment = h('input', { id: 'approval-comment', placeholder: 'comment (optional)' });
      actions.append(h('label', { for: 'approval-comment', class: 'sr-only' }, 'Approval comment'), comment,
        act('Approve', () => post(`/deployments/${enc(id)}/approve`, comment.value ? { comment: comment.value } : {}), 'primary'),
        act('Reject', () => post(`/deployments/${enc(id)}/reject`, comment.value ? { comment: comment.value } : {}), 'danger'));
    }
    if (d.manual) {
      actions.append(h('span', { class: 'warn' }, `Waiting at a manual step: ${d.manual.message || d.manual.step || ''}`, d.manual.role ? ` (needs ${d.manual.role})` : ''),
        act('Continue', () => post(`/deployments/${enc(id)}/continue`, {}), 'primary'));
    }
    if (d.status === 'scheduled' && hasRole('deployer')) {
      const input = h('input', { type: 'datetime-local', step: '1', id: 'move-at', value: whenOf(d) ? toLocalInput(new Date(whenOf(d))) : '' });
      const out = h('output', { for: 'move-at', class: 'utc small' });
      const problem = h('span', { class: 'error-text small', role: 'status', id: 'move-problem' });
      utcHint(input, out);
      actions.append(h('label', { for: 'move-at' }, 'Move to'), input, out,
        act('Move', async () => {
          const checked = checkScheduleInput(input.value);
          problem.textContent = checked.problem || '';
          if (checked.problem) return null;
          return patch(`/deployments/${enc(id)}`, { at: checked.date.toISOString() });
        }), problem);
    }
  }

  function drawTargets(d) {
    clear(targetsBox).append(h('h2', { id: 'dep-targets-h' }, 'Targets'));
    const targets = d.targets || [];
    if (!targets.length) { targetsBox.append(h('p', { class: 'muted' }, 'No target has started yet.')); return; }
    targetsBox.append(h('ul', { class: 'target-progress' }, targets.map((t) => {
      const p = t.progress || {};
      const bytes = p.bytes_transferred ?? p.bytes_done ?? p.bytes_sent ?? p.bytes;
      const bytesTotal = p.bytes_total ?? p.total_bytes;
      const files = p.files_extracted ?? p.files_done ?? p.files;
      const filesTotal = p.files_total ?? p.total_files;
      const bar = (label, value, max, fmt) => {
        if (value === undefined && max === undefined) return null;
        if (!max && !value && FINAL.has(t.status)) return h('div', { class: 'small muted' }, `nothing ${label} (release already on the target)`);
        const text = max ? `${fmt(value || 0)} of ${fmt(max)} ${label}` : `${fmt(value || 0)} ${label}`;
        return h('div', { class: 'bar' }, h('progress', { max: max || 1, value: max ? Math.min(value || 0, max) : (FINAL.has(t.status) ? 1 : undefined), 'aria-label': `${t.target} ${label}` }),
          h('span', { class: 'small' }, text));
      };
      return h('li', { class: 'card', 'data-target': t.target || t.name },
        h('div', null, h('strong', null, t.target || t.name), ' ', statusBadge(t.status)),
        t.message ? h('div', { class: 'small' }, t.message) : null,
        p.phase ? h('div', { class: 'small muted' }, `phase: ${p.phase}`) : null,
        bar('transferred', bytes, bytesTotal, fmtBytes),
        bar('files extracted', files, filesTotal, (x) => String(x)));
    })));
  }

  function drawGates(d) {
    clear(gatesBox);
    const gates = d.gates || [];
    const approvals = d.approvals || [];
    if (!gates.length && !approvals.length) return;
    gatesBox.append(h('h2', null, 'Gates and approvals'));
    if (gates.length) gatesBox.append(h('ul', { class: 'gates' }, gates.map((g) => h('li', { class: g.holds ? 'ok' : 'no' },
      h('span', { class: 'gate-mark', 'aria-hidden': 'true' }, g.holds ? '✓' : '✗'), ' ', h('strong', null, g.gate || g.name),
      ` — ${g.holds ? 'holds' : 'does not hold yet'}`, g.detail ? `: ${g.detail}` : ''))));
    if (approvals.length) gatesBox.append(table(['Who', 'Decision', 'Comment', 'When'], approvals.map((a) => h('tr', null,
      h('td', null, a.user || a.by || ''), h('td', null, a.decision || (a.approved === false ? 'rejected' : 'approved')),
      h('td', null, a.comment || ''), h('td', null, timeEl(a.at))))));
  }

  function drawContext(d) {
    clear(contextBox);
    const c = d.execution_context || (typeof d.context === 'object' ? d.context : null);
    if (!c || typeof c !== 'object') return;
    append(contextBox, renderExecutionContext(c));
  }

  function loadAudit() {
    clear(auditBox);
    const items = (state.dep && state.dep.audit) || [];
    if (!items.length) return;
    auditBox.append(h('h2', null, 'Audit trail'), table(['When', 'Who', 'Action', 'Summary'], items.map((a) => h('tr', null,
      h('td', null, timeEl(a.at)), h('td', null, a.actor || ''), h('td', null, a.action || ''), h('td', null, a.summary || '')))));
  }

  try {
    await refreshDeployment();
  } catch (e) {
    clear(main).append(crumbs, title);  // no empty log or actions under the error
    throw e;
  }
  try { await fetchLog(); } catch (e) { logEl.append(errorBox(e)); }
  if (!FINAL.has(state.dep.status)) {
    startStream();
    // Often while it runs or is about to; a deployment waiting (for an
    // approval, a later time) changes seldom, and the log stream says when
    // the status changes.
    const soon = (d) => IN_PROGRESS.has(d.status) || (d.status === 'scheduled' && Date.parse(whenOf(d)) - Date.now() < 60000);
    state.poll = repeat(refreshDeployment, () => (state.dep && soon(state.dep) ? 500 : 1500));
  } else {
    logState.textContent = 'finished';
  }
  loadAudit();

  return () => {
    state.closed = true;
    if (state.es) state.es.close();
    if (state.poll) state.poll.stop();
    clearInterval(state.logPoll);
  };
}
