// One rollback record (#/rollback-records/{rid}): status, who did what when,
// per-target summary with the last connection check (drifted files), warnings
// (irreversible steps, drift) in a red box, the components, the actions its
// status and the user's permissions allow (test connection, submit, approve /
// reject, execute now or later, validate), the execution's live log link and
// the validation file.
import { get, post, enc } from '../api.js';
import { h, append, clear, hashFor, timeEl, statusBadge, dl, errorBox, flash, table, fmtUtc } from '../dom.js';
import { hasRole } from '../session.js';
import { toLocalInput, utcHint } from './deploy_dialog.js';
import { typeBadge, typeCounts, stageFacts, mayCreate, mayExecute, mayDecide, plural } from './rollback_common.js';

const ACTIVE = new Set(['scheduled', 'executing']);
const MAX_ROWS = 500;

export async function renderRollbackRecord(main, ctx) {
  const rid = ctx.params.rid;
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/rollback-records' }, 'Rollback logs'), ' / ');
  const title = h('h1', null, `Rollback record #${rid}`);
  const statusLine = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite', id: 'record-status' });
  const warningsBox = h('div');
  const actions = h('div', { class: 'record-actions' });
  const result = h('div', { id: 'record-action-result', role: 'status', 'aria-live': 'polite' });
  const summary = h('div');
  const historyBox = h('section');
  const targetsBox = h('section');
  const validationBox = h('section');
  const componentsBox = h('section');
  const auditBox = h('section');
  main.append(crumbs, title, statusLine, warningsBox, actions, result, summary, targetsBox, validationBox, historyBox, componentsBox, auditBox);

  const state = { record: null, facts: null, timer: null, ack: false, sig: '' };
  state.record = await get(`/rollback-records/${enc(rid)}`);
  state.facts = await stageFacts(state.record.application, state.record.stage);

  async function reload() {
    try {
      state.record = await get(`/rollback-records/${enc(rid)}`);
    } catch (e) {
      clear(result).append(errorBox(e));
      return;
    }
    draw();
  }

  // Runs an action; its answer is the record (or, for a check, a report).
  async function run(button, label, fn) {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    clear(result).append(h('p', { class: 'muted' }, `${label}…`));
    try {
      const r = await fn();
      clear(result);
      if (r && r.id !== undefined && r.status) state.record = r;
      else await reload();
      draw();
      return true;
    } catch (e) {
      clear(result).append(errorBox(e));
      flash(e.message);
      await reload();
      return false;
    } finally {
      button.setAttribute('aria-disabled', 'false');
    }
  }

  function draw() {
    const r = state.record;
    title.textContent = `Rollback record #${r.id}: ${r.application} ${r.release} build ${r.build} on ${r.stage}`;
    append(clear(crumbs), [h('a', { href: '#/rollback-records' }, 'Rollback logs'), ' / ',
      h('a', { href: hashFor('apps', r.application) }, r.application), ' / ']);
    append(clear(statusLine), ['Status: ', statusBadge(r.status),
      r.status === 'scheduled' && r.scheduled_at ? [' for ', timeEl(r.scheduled_at), h('span', { class: 'small muted' }, ` (${fmtUtc(r.scheduled_at)})`)] : null,
      r.error ? h('span', { class: 'status-msg error-text' }, ` ${r.error}`) : null]);
    drawWarnings(r);
    drawActions(r);
    const comps = r.components || [];
    const selected = r.components_selected ?? comps.filter((c) => c.selected).length;
    const total = r.components_total ?? comps.length;
    clear(summary).append(dl([
      ['Deployment', h('a', { href: hashFor('deployments', r.deployment_id) }, `#${r.deployment_id}`)],
      ['Build', h('a', { href: hashFor('apps', r.application, 'releases', r.release, 'builds', r.build) }, `${r.release} build ${r.build}`)],
      ['Stage', r.stage],
      ['Components', h('span', { id: 'record-components-count' }, `${selected} of ${total} selected`)],
      r.comment ? ['Comment', r.comment] : null,
      r.approval_rule ? ['Approval', r.approval_rule] : null,
      r.execution_deployment_id ? ['Execution', [h('a', { href: hashFor('deployments', r.execution_deployment_id), id: 'record-execution-link' },
        `deployment #${r.execution_deployment_id}`), ' (live log)']] : null,
    ]));
    drawTargets(r);
    drawValidation(r);
    drawHistory(r);
    drawComponents(r);
    clear(auditBox);
    if ((r.audit || []).length) {
      auditBox.append(h('h2', null, 'Audit trail'), table(['When', 'Who', 'Action', 'Summary'], r.audit.map((a) => h('tr', null,
        h('td', null, timeEl(a.at)), h('td', null, a.actor || ''), h('td', null, a.action || ''), h('td', null, a.summary || ''))), { class: 'compact' }));
    }
    schedule(r);
  }

  function schedule(r) {
    clearInterval(state.timer);
    state.timer = null;
    if (ACTIVE.has(r.status)) state.timer = setInterval(reload, 1500);
  }

  function drawWarnings(r) {
    const warnings = [].concat(r.warnings || []);
    const drifted = driftedFiles(r);
    clear(warningsBox);
    if (!warnings.length && !drifted.length) return;
    const irreversible = warnings.some((w) => w && typeof w === 'object' && (w.kind === 'irreversible' || w.step));
    const ack = h('input', { type: 'checkbox', id: 'record-ack', checked: state.ack });
    ack.addEventListener('change', () => { state.ack = ack.checked; });
    warningsBox.append(h('section', { class: 'danger-box', id: 'record-warnings', 'aria-labelledby': 'record-warnings-h' },
      h('h2', { id: 'record-warnings-h' }, 'Warnings'),
      h('ul', null, warnings.map((w) => h('li', null, warningText(w))),
        drifted.length ? h('li', null, `Files changed on the targets since the deployment (execution is refused until the connection is tested again and they match): `,
          drifted.slice(0, 50).map(([t, p], i) => [i ? ', ' : '', h('code', null, p), ` (${t})`]),
          drifted.length > 50 ? ` and ${drifted.length - 50} more` : '') : null),
      irreversible && r.status === 'approved'
        ? h('div', { class: 'checkbox' }, ack, h('label', { for: 'record-ack' }, 'I understand that a rollback cannot undo these steps'))
        : null));
  }

  function drawActions(r) {
    const f = state.facts;
    const sig = JSON.stringify([r.status, r.submitted_by, (r.approvals || []).length]);
    if (sig === state.sig) return;
    state.sig = sig;
    clear(actions);
    const bar = h('div', { class: 'actions-bar' });
    const btn = (label, id, cls, fn) => {
      const b = h('button', { type: 'button', id, class: cls || '' }, label);
      b.addEventListener('click', () => run(b, label, fn));
      bar.append(b);
      return b;
    };
    const path = `/rollback-records/${enc(r.id)}`;
    if (['draft', 'pending-approval', 'approved'].includes(r.status) && hasRole('deployer')) {
      btn('Test connection', 'record-test-connection', 'secondary', () => post(`${path}/test-connection`, {}));
    }
    if (r.status === 'draft' && mayCreate(f)) {
      btn('Submit for approval', 'record-submit', 'primary', () => post(`${path}/submit`, {}));
    }
    actions.append(bar);
    if (r.status === 'pending-approval' && mayDecide(f, r)) {
      const comment = h('textarea', { id: 'record-decision-comment', rows: 2 });
      const row = h('div', { class: 'actions-bar' });
      const decide = (label, verb, cls) => {
        const b = h('button', { type: 'button', id: `record-${verb}`, class: cls }, label);
        b.addEventListener('click', () => run(b, label, () => post(`${path}/${verb}`, comment.value.trim() ? { comment: comment.value.trim() } : {})));
        row.append(b);
      };
      decide('Approve', 'approve', 'primary');
      decide('Reject', 'reject', 'danger');
      actions.append(h('div', { class: 'card decision' },
        h('div', { class: 'field' }, h('label', { for: 'record-decision-comment' }, 'Approval comment'), comment), row));
    } else if (r.status === 'pending-approval') {
      actions.append(h('p', { class: 'small muted', id: 'record-waiting' },
        `Waiting for approval${r.submitted_by ? ` (submitted by ${r.submitted_by}, who cannot approve it)` : ''}.`));
    }
    if (r.status === 'approved' && mayExecute(f)) {
      const at = h('input', { type: 'datetime-local', step: '1', id: 'record-execute-at', value: toLocalInput(new Date(Date.now() + 3600 * 1000)) });
      const out = h('output', { for: 'record-execute-at', class: 'utc small' });
      utcHint(at, out);
      const body = () => (state.ack ? { acknowledge_irreversible: true } : {});
      const now = h('button', { type: 'button', id: 'record-execute-now', class: 'primary' }, 'Execute now');
      now.addEventListener('click', () => run(now, 'Execute now', () => post(`${path}/execute`, body())));
      const later = h('button', { type: 'button', id: 'record-execute-later', class: 'secondary' }, 'Execute later');
      later.addEventListener('click', () => {
        const d = new Date(at.value);
        if (!at.value || isNaN(d)) { clear(result).append(errorBox({ message: 'Enter a valid date and time.' })); at.focus(); return; }
        run(later, 'Execute later', () => post(`${path}/execute`, { ...body(), at: d.toISOString() }));
      });
      actions.append(h('div', { class: 'actions-bar' }, now,
        h('label', { for: 'record-execute-at' }, 'or at'), at, later, out));
    }
    if (['executed', 'validated', 'validation-failed'].includes(r.status) && hasRole('deployer')) {
      const b = h('button', { type: 'button', id: 'record-validate', class: 'primary' }, r.validated_at ? 'Validate again' : 'Validate');
      b.addEventListener('click', () => run(b, 'Validate', () => post(`${path}/validate`, {})));
      actions.append(h('div', { class: 'actions-bar' }, b));
    }
  }

  function drawTargets(r) {
    const targets = r.targets || [];
    const comps = r.components || [];
    const conn = connectionOf(r);
    clear(targetsBox).append(h('h2', null, 'Targets'));
    if (conn.checked_at) targetsBox.append(h('p', { class: 'small' }, `Connection ${conn.ok ? 'tested: every target is ready' : 'tested: not every target is ready'} · `, timeEl(conn.checked_at)));
    const names = targets.length ? targets.map((t) => t.target) : [...new Set(comps.map((c) => c.target))];
    targetsBox.append(h('ul', { class: 'target-progress' }, names.map((name) => {
      const t = targets.find((x) => x.target === name) || { target: name };
      const mine = comps.filter((c) => c.target === name);
      const sel = mine.filter((c) => c.selected);
      const c = (conn.targets || []).find((x) => x.target === name);
      return h('li', { class: 'card', 'data-target': name },
        h('div', null, h('strong', null, name)),
        h('div', { class: 'small' }, `${sel.length} of ${plural(mine.length, 'component', 'components')} selected`, sel.length ? ` (${typeCounts(sel)})` : ''),
        h('div', { class: 'small muted' }, 'before the deployment: ', previousLabel(t)),
        c ? connectionLine(c) : null);
    })));
  }

  // The validation file is fetched once per validation (its time changes).
  async function loadValidation(r) {
    if (!r.validated_at || state.validationAt === r.validated_at) return;
    state.validationAt = r.validated_at;
    try {
      state.validation = await get(`/rollback-records/${enc(r.id)}/validation`);
    } catch (e) {
      state.validation = { error: e };
    }
    drawValidation(state.record);
  }

  function drawValidation(r) {
    clear(validationBox);
    if (!r.validated_at && !r.validation) return;
    loadValidation(r);
    const v = state.validationAt === r.validated_at && state.validation ? state.validation : {};
    const base = `/api/v1/rollback-records/${enc(r.id)}/validation`;
    validationBox.append(h('h2', null, 'Validation'),
      h('div', { class: r.status === 'validation-failed' || v.ok === false ? 'verify-bad' : 'verify-ok', id: 'record-validation' }, validationSummary(r, v)),
      h('p', null, 'Validation file: ',
        h('a', { href: base, download: `rollback-record-${r.id}-validation.json`, id: 'record-validation-json' }, 'JSON'), ' · ',
        h('a', { href: `${base}?format=text`, download: `rollback-record-${r.id}-validation.txt`, id: 'record-validation-text' }, 'text')));
  }

  function drawHistory(r) {
    const rows = [];
    const add = (what, who, at, comment) => { if (at || who) rows.push(h('tr', null, h('td', null, what), h('td', null, who || '—'), h('td', null, timeEl(at)), h('td', null, comment || ''))); };
    add('created', r.created_by, r.created_at, r.comment);
    add('submitted for approval', r.submitted_by, r.submitted_at);
    for (const a of r.approvals || []) add(a.decision || 'approved', a.user, a.at, a.comment);
    add(r.scheduled_at ? 'execution requested (scheduled)' : 'execution requested', r.executed_by, r.executed_at);
    if (r.finished_at) add(r.status === 'failed' ? 'execution failed' : 'executed', '', r.finished_at, r.error);
    add('validated', r.validated_by, r.validated_at);
    clear(historyBox).append(h('h2', null, 'History'), table(['What', 'Who', 'When', 'Comment'], rows, { class: 'compact', id: 'record-history' }));
  }

  function drawComponents(r) {
    const comps = r.components || [];
    clear(componentsBox).append(h('h2', null, 'Components'));
    if (!comps.length) { componentsBox.append(h('p', { class: 'muted' }, 'None.')); return; }
    const shown = comps.slice(0, MAX_ROWS);
    append(componentsBox, [table(['Target', 'Path', 'Type', 'Selected'], shown.map((c) => h('tr', { class: c.selected ? '' : 'muted' },
      h('td', null, c.target), h('td', null, h('code', { class: 'hash' }, c.path)), h('td', null, typeBadge(c.type)),
      h('td', null, c.selected ? 'yes' : 'no'))), { class: 'compact', id: 'record-components' }),
    comps.length > shown.length ? h('p', { class: 'muted small' }, `First ${MAX_ROWS} of ${comps.length} shown.`) : null]);
  }

  draw();
  return () => clearInterval(state.timer);
}

// The connection check and the validation file give times as Unix milliseconds.
function isoOf(t) {
  if (typeof t !== 'number') return t || null;
  const d = new Date(t);
  return isNaN(d) ? null : d.toISOString();
}

function connectionOf(r) {
  const c = r.connection || {};
  return { ok: c.ok ?? r.connection_ok, checked_at: isoOf(c.checked_at || r.connection_checked_at), targets: c.targets || [] };
}

function driftedOf(c) {
  const d = c.drifted || c.drift || [];
  return (Array.isArray(d) ? d : [].concat(d.missing || [], d.changed || [], d.extra || []))
    .map((x) => (typeof x === 'string' ? x : x.problem ? `${x.path}: ${x.problem}` : x.path));
}

function driftedFiles(r) {
  const out = [];
  for (const c of connectionOf(r).targets) for (const p of driftedOf(c)) out.push([c.target, p]);
  return out;
}

function connectionLine(c) {
  const drifted = driftedOf(c);
  const ok = c.ok ?? (!c.problem && !drifted.length);
  const facts = [c.agent ? `agent ${c.agent}` : null, c.writable === undefined ? null : c.writable ? 'writable' : 'not writable',
    drifted.length ? `${plural(drifted.length, 'file', 'files')} drifted` : ok ? 'runs the deployment\'s files' : null].filter(Boolean).join(' · ');
  return h('div', { class: `small conn-line ${ok ? 'conn-ok' : 'conn-bad'}`, 'data-connection': ok ? 'ok' : 'problem' },
    h('strong', null, ok ? 'ready' : 'problem'), facts ? ` — ${facts}` : '',
    c.problem ? h('div', { class: 'conn-problem' }, c.problem) : null,
    drifted.length ? h('ul', { class: 'verify-problems' }, drifted.slice(0, 50).map((p) => h('li', null, h('code', { class: 'verify-path' }, p)))) : null);
}

function previousLabel(t) {
  const p = t.previous || (t.previous_release ? { release: t.previous_release, build: t.previous_build, deployment_id: t.previous_deployment_id } : null);
  if (!p || !p.release) return 'nothing (the deployment added every file)';
  return [`${p.release} build ${p.build}`, p.deployment_id ? [' (', h('a', { href: hashFor('deployments', p.deployment_id) }, `#${p.deployment_id}`), ')'] : null];
}

function warningText(w) {
  if (typeof w === 'string') return w;
  if (!w || typeof w !== 'object') return String(w);
  if (w.message && !w.step) return w.message;
  const parts = [];
  if (w.step) parts.push(`irreversible step ${w.step}`);
  if (w.release) parts.push(`of ${w.release} build ${w.build}`);
  if (w.target) parts.push(`on ${w.target}`);
  const at = w.at ? [' at ', timeEl(w.at)] : null;
  return [parts.join(' ') || w.message || JSON.stringify(w), at, w.note ? `: ${w.note}` : '', w.undo ? ' (undo steps will run)' : ''];
}

// "Passed" or "Failed", who and when, then per target: the selected
// components (reverted?) and the other files (exactly the deployment's?).
function validationSummary(r, v) {
  const ok = v.ok ?? r.status === 'validated';
  const head = h('p', null, h('strong', null, ok ? 'Passed' : 'Failed'), r.validated_by ? ` · validated by ${r.validated_by}` : '', ' · ', timeEl(r.validated_at));
  if (v.error) return [head, h('p', { class: 'verify-error' }, 'The validation file could not be read: ', v.error.message)];
  const problems = (list) => h('ul', { class: 'verify-problems' }, (list || []).slice(0, 50).map((p) => h('li', null,
    p.type ? [typeBadge(p.type), ' '] : null, h('code', { class: 'verify-path' }, p.path), p.problem ? `: ${p.problem}` : '')));
  return [head, h('ul', { class: 'validation-targets' }, (v.targets || []).map((t) => h('li', { 'data-target': t.target },
    h('strong', null, t.target), ': ',
    t.problem ? ['could not validate: ', t.problem] : [
      `${t.selected_components ?? 0} selected components `, t.components && t.components.ok ? 'reverted' : 'with problems',
      `; other files (${t.files_checked ?? '?'} files checked in all) `, t.other_files && t.other_files.ok ? 'exactly the deployment\'s' : 'with problems',
      t.components && !t.components.ok ? problems(t.components.problems) : null,
      t.other_files && !t.other_files.ok ? problems(t.other_files.problems) : null])))];
}
