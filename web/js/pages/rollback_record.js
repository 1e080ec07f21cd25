// One rollback record (#/rollback-records/{rid}): status, who did what when,
// per-target summary with the last connection check (drifted files), warnings
// (drifted files, what the server warns of) in a red box, the components, the
// actions its status and the user's permissions allow (test connection,
// submit, approve / reject, execute now or later, validate), the execution's
// live log link and the validation file.
import { get, post, enc } from '../api.js';
import { h, append, clear, hashFor, timeEl, statusBadge, dl, errorBox, table, fmtUtc } from '../dom.js';
import { hasRole } from '../session.js';
import { toLocalInput, utcHint, irreversibleBox } from './deploy_dialog.js';
import { typeBadge, typeCounts, stageFacts, mayCreate, mayExecute, mayDecide, plural } from './rollback_common.js';

const ACTIVE = new Set(['scheduled', 'executing']);
const MAX_ROWS = 500;

export async function renderRollbackRecord(main, ctx) {
  const rid = ctx.params.rid;
  const el = {
    crumbs: h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/rollback-records' }, 'Rollback logs'), ' / '),
    title: h('h1', null, `Rollback record #${rid}`),
    status: h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite', id: 'record-status' }),
    warnings: h('div'),
    actions: h('div', { class: 'record-actions' }),
    result: h('div', { id: 'record-action-result', role: 'status', 'aria-live': 'polite' }),
    summary: h('div'),
    targets: h('section'),
    validation: h('section'),
    history: h('section'),
    components: h('section'),
    audit: h('section'),
  };
  main.append(...Object.values(el));

  const state = { record: null, facts: null, timer: null, sig: '', validation: null, validationAt: null };
  state.record = await get(`/rollback-records/${enc(rid)}`);
  state.facts = await stageFacts(state.record.application, state.record.stage);

  async function reload() {
    try {
      state.record = await get(`/rollback-records/${enc(rid)}`);
    } catch (e) {
      clear(el.result).append(errorBox(e));
      return;
    }
    draw();
  }

  // Runs an action (the button keeps its focus); its answer is the record.
  async function run(button, label, fn) {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    clear(el.result).append(h('p', { class: 'muted' }, `${label}…`));
    try {
      const r = await fn();
      clear(el.result);
      if (r && r.id !== undefined && r.status) state.record = r;
      else await reload();
      draw();
    } catch (e) {
      // Shown once, beside the actions (not also in the banner).
      clear(el.result).append(errorBox(e));
      await reload();
    } finally {
      button.setAttribute('aria-disabled', 'false');
    }
  }

  // The validation file, fetched once per validation (its time changes).
  async function loadValidation(r) {
    if (!r.validated_at || state.validationAt === r.validated_at) return;
    state.validationAt = r.validated_at;
    state.validation = null;
    try {
      state.validation = await get(`/rollback-records/${enc(r.id)}/validation`);
    } catch (e) {
      state.validation = { error: e };
    }
    append(clear(el.validation), [validationView(state.record, state.validation)]);
  }

  function draw() {
    const r = state.record;
    el.title.textContent = `Rollback record #${r.id}: ${r.application} ${r.release} build ${r.build} on ${r.stage}`;
    append(clear(el.crumbs), [h('a', { href: '#/rollback-records' }, 'Rollback logs'), ' / ',
      h('a', { href: hashFor('apps', r.application) }, r.application), ' / ']);
    append(clear(el.status), ['Status: ', statusBadge(r.status),
      r.status === 'scheduled' && r.scheduled_at ? [' for ', timeEl(r.scheduled_at), h('span', { class: 'small muted' }, ` (${fmtUtc(r.scheduled_at)})`)] : null,
      r.error ? h('span', { class: 'status-msg error-text' }, ` ${r.error}`) : null]);
    append(clear(el.warnings), [warningsView(r)]);
    const sig = JSON.stringify([r.status, r.submitted_by, (r.approvals || []).length]);
    if (sig !== state.sig) {
      state.sig = sig;
      append(clear(el.actions), actionsView(r, state.facts, run, el.result));
    }
    append(clear(el.summary), [summaryView(r)]);
    append(clear(el.targets), targetsView(r));
    loadValidation(r);
    append(clear(el.validation), [validationView(r, state.validationAt === r.validated_at ? state.validation : null)]);
    append(clear(el.history), historyView(r));
    append(clear(el.components), componentsView(r));
    append(clear(el.audit), auditView(r));
    clearInterval(state.timer);
    state.timer = ACTIVE.has(r.status) ? setInterval(reload, r.status === 'executing' ? 500 : 1500) : null;
  }

  draw();
  return () => clearInterval(state.timer);
}

function summaryView(r) {
  const comps = r.components || [];
  const selected = r.components_selected ?? comps.filter((c) => c.selected).length;
  const total = r.components_total ?? comps.length;
  return dl([
    ['Deployment', h('a', { href: hashFor('deployments', r.deployment_id) }, `#${r.deployment_id}`)],
    ['Build', h('a', { href: hashFor('apps', r.application, 'releases', r.release, 'builds', r.build) }, `${r.release} build ${r.build}`)],
    ['Stage', r.stage],
    ['Components', h('span', { id: 'record-components-count' }, `${selected} of ${total} selected`)],
    r.comment ? ['Comment', r.comment] : null,
    r.approval_rule ? ['Approval', r.approval_rule] : null,
    r.execution_deployment_id ? ['Execution', [h('a', { href: hashFor('deployments', r.execution_deployment_id), id: 'record-execution-link' },
      `deployment #${r.execution_deployment_id}`), ' (live log)']] : null,
  ]);
}

function warningsView(r) {
  const warnings = [].concat(r.warnings || []);
  const drifted = driftedFiles(r);
  if (!warnings.length && !drifted.length) return null;
  return h('section', { class: 'danger-box', id: 'record-warnings', 'aria-labelledby': 'record-warnings-h' },
    h('h2', { id: 'record-warnings-h' }, 'Warnings'),
    h('ul', null, warnings.map((w) => h('li', null, warningText(w))),
      drifted.length ? h('li', null, 'Files changed on the targets since the deployment (execution is refused until the connection is tested again and they match): ',
        drifted.slice(0, 50).map(([t, p], i) => [i ? ', ' : '', h('code', null, p), ` (${t})`]),
        drifted.length > 50 ? ` and ${drifted.length - 50} more` : '') : null));
}

// The buttons the record's status and the user's permissions allow.
function actionsView(r, facts, run, result) {
  const out = [];
  const path = `/rollback-records/${enc(r.id)}`;
  const button = (label, id, cls, fn) => {
    const b = h('button', { type: 'button', id, class: cls }, label);
    b.addEventListener('click', () => run(b, label, fn));
    return b;
  };
  const bar = h('div', { class: 'actions-bar' });
  if (['draft', 'pending-approval', 'approved'].includes(r.status) && hasRole('deployer')) {
    bar.append(button('Test connection', 'record-test-connection', 'secondary', () => post(`${path}/test-connection`, {})));
  }
  if (r.status === 'draft' && mayCreate(facts)) {
    bar.append(button('Submit for approval', 'record-submit', 'primary', () => post(`${path}/submit`, {})));
  }
  out.push(bar);
  if (r.status === 'pending-approval' && mayDecide(facts, r)) {
    const comment = h('textarea', { id: 'record-decision-comment', rows: 2 });
    const body = () => (comment.value.trim() ? { comment: comment.value.trim() } : {});
    out.push(h('div', { class: 'card decision' },
      h('div', { class: 'field' }, h('label', { for: comment.id }, 'Approval comment'), comment),
      h('div', { class: 'actions-bar' },
        button('Approve', 'record-approve', 'primary', () => post(`${path}/approve`, body())),
        button('Reject', 'record-reject', 'danger', () => post(`${path}/reject`, body())))));
  } else if (r.status === 'pending-approval') {
    out.push(h('p', { class: 'small muted', id: 'record-waiting' },
      `Waiting for approval${r.submitted_by ? ` (submitted by ${r.submitted_by}, who cannot approve it)` : ''}.`));
  }
  if (r.status === 'approved' && mayExecute(facts)) out.push(executeControls(path, run, result, button, r.irreversible || []));
  if (['executed', 'validated', 'validation-failed'].includes(r.status) && hasRole('deployer')) {
    out.push(h('div', { class: 'actions-bar' },
      button(r.validated_at ? 'Validate again' : 'Validate', 'record-validate', 'primary', () => post(`${path}/validate`, {}))));
  }
  return out;
}

// Execute now, or at a date and time in the browser's zone (UTC beside it).
function executeControls(path, run, result, button, irreversible) {
  let acknowledged = false;
  const body = (extra) => (irreversible.length ? { ...extra, acknowledge_irreversible: true } : extra);
  const at = h('input', { type: 'datetime-local', step: '1', id: 'record-execute-at', value: toLocalInput(new Date(Date.now() + 3600 * 1000)) });
  const out = h('output', { for: at.id, class: 'utc small' });
  utcHint(at, out);
  const later = h('button', { type: 'button', id: 'record-execute-later', class: 'secondary' }, 'Execute later');
  later.addEventListener('click', () => {
    const d = new Date(at.value);
    if (!at.value || isNaN(d)) {
      clear(result).append(errorBox({ message: 'Enter a valid date and time.' }));
      at.focus();
      return;
    }
    run(later, 'Execute later', () => post(`${path}/execute`, body({ at: d.toISOString() })));
  });
  const now = button('Execute now', 'record-execute-now', 'primary', () => post(`${path}/execute`, body({})));
  // Irreversible steps ran since the targets' previous builds: both buttons
  // wait for the acknowledgement the request carries.
  const gate = () => { now.disabled = later.disabled = irreversible.length > 0 && !acknowledged; };
  gate();
  const box = irreversible.length ? irreversibleBox(irreversible, 'record-exec', (checked) => { acknowledged = checked; gate(); }, {
    intro: 'They ran on these targets since what the targets ran before this deployment. The record puts files back; it does not reverse these steps and runs no undo steps.',
    undo: 'has undo steps (not run by a record)',
  }) : null;
  return h('div', null, box, h('div', { class: 'actions-bar' }, now, h('label', { for: at.id }, 'or at'), at, later, out));
}

function targetsView(r) {
  const targets = r.targets || [];
  const comps = r.components || [];
  const conn = connectionOf(r);
  const names = targets.length ? targets.map((t) => t.target) : [...new Set(comps.map((c) => c.target))];
  return [h('h2', null, 'Targets'),
    conn.checked_at ? h('p', { class: 'small' }, `Connection tested: ${conn.ok ? 'every target is ready' : 'not every target is ready'} · `, timeEl(conn.checked_at)) : null,
    h('ul', { class: 'target-progress' }, names.map((name) => {
      const t = targets.find((x) => x.target === name) || { target: name };
      const mine = comps.filter((c) => c.target === name);
      const sel = mine.filter((c) => c.selected);
      const c = conn.targets.find((x) => x.target === name);
      return h('li', { class: 'card', 'data-target': name },
        h('div', null, h('strong', null, name)),
        h('div', { class: 'small' }, `${sel.length} of ${plural(mine.length, 'component', 'components')} selected`, sel.length ? ` (${typeCounts(sel)})` : ''),
        h('div', { class: 'small muted' }, 'before the deployment: ', previousLabel(t)),
        c ? connectionLine(c) : null);
    }))];
}

function validationView(r, v) {
  if (!r.validated_at && !r.validation) return null;
  const file = v || {};
  const base = `/api/v1/rollback-records/${enc(r.id)}/validation`;
  return h('div', null, h('h2', null, 'Validation'),
    h('div', { class: r.status === 'validation-failed' || file.ok === false ? 'verify-bad' : 'verify-ok', id: 'record-validation' }, validationSummary(r, file)),
    h('p', null, 'Validation file: ',
      h('a', { href: base, download: `rollback-record-${r.id}-validation.json`, id: 'record-validation-json' }, 'JSON'), ' · ',
      h('a', { href: `${base}?format=text`, download: `rollback-record-${r.id}-validation.txt`, id: 'record-validation-text' }, 'text')));
}

function historyView(r) {
  const rows = [];
  const add = (what, who, at, comment) => {
    if (at || who) rows.push(h('tr', null, h('td', null, what), h('td', null, who || '—'), h('td', null, timeEl(at)), h('td', null, comment || '')));
  };
  add('created', r.created_by, r.created_at, r.comment);
  add('submitted for approval', r.submitted_by, r.submitted_at);
  for (const a of r.approvals || []) add(a.decision || 'approved', a.user, a.at, a.comment);
  add(r.scheduled_at ? 'execution requested (scheduled)' : 'execution requested', r.executed_by, r.executed_at);
  if (r.finished_at) add(r.status === 'failed' ? 'execution failed' : 'executed', '', r.finished_at, r.error);
  add('validated', r.validated_by, r.validated_at);
  return [h('h2', null, 'History'), table(['What', 'Who', 'When', 'Comment'], rows, { class: 'compact', id: 'record-history' })];
}

function componentsView(r) {
  const comps = r.components || [];
  if (!comps.length) return [h('h2', null, 'Components'), h('p', { class: 'muted' }, 'None.')];
  const shown = comps.slice(0, MAX_ROWS);
  return [h('h2', null, 'Components'),
    table(['Target', 'Path', 'Type', 'Selected'], shown.map((c) => h('tr', { class: c.selected ? '' : 'muted' },
      h('td', null, c.target), h('td', null, h('code', { class: 'hash' }, c.path)), h('td', null, typeBadge(c.type)),
      h('td', null, c.selected ? 'yes' : 'no'))), { class: 'compact', id: 'record-components' }),
    comps.length > shown.length ? h('p', { class: 'muted small' }, `First ${MAX_ROWS} of ${comps.length} shown.`) : null];
}

function auditView(r) {
  if (!(r.audit || []).length) return [];
  return [h('h2', null, 'Audit trail'), table(['When', 'Who', 'Action', 'Summary'], r.audit.map((a) => h('tr', null,
    h('td', null, timeEl(a.at)), h('td', null, a.actor || ''), h('td', null, a.action || ''), h('td', null, a.summary || ''))), { class: 'compact' })];
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
