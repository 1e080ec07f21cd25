// The Deploy / Promote / Re-Deploy dialog: now or at a time (the browser's
// zone, with UTC beside it), "as deployed" or current variables, a preview of
// what changes on each target, gates, and an explicit rollback line; the
// irreversible steps a rollback cannot undo must be acknowledged first.
import { post, buildPath } from '../api.js';
import { h, append, clear, errorBox, loading, table, fmtUtc } from '../dom.js';
import { hasRole } from '../session.js';
import { checkScheduleInput } from '../schedule.js';

let counter = 0;

// The confirm button's text when an approval will hold the deployment.
const REQUEST = { 'Re-Deploy': 'Request re-deploy', Deploy: 'Request deploy', Promote: 'Request promotion' };

// Why the signed-in user may not request this deployment, or null. Mirrors
// the API: deployer; on a protected stage release-manager, or the
// environment's redeploy grant for a re-deploy or rollback; force needs
// release-manager.
export function deployRefusal({ kind, spec, grant, force }) {
  if (!hasRole('deployer')) return 'Deploying needs the deployer role (release-manager on protected stages); you may look at the preview.';
  if (force && !hasRole('release-manager')) return 'Forcing needs the release-manager role.';
  if (spec && spec.protected && !hasRole('release-manager')) {
    const again = kind === 'redeploy' || kind === 'rollback';
    if (again && grant) return null;
    return again
      ? `${spec.stage} is protected: re-deploying there needs the release-manager role or the redeploy grant on ${spec.environment}.`
      : `${spec.stage} is protected: bringing a build there needs the release-manager role.`;
  }
  return null;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

// A Date as the value of <input type="datetime-local" step="1"> in local time.
export function toLocalInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function zoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  } catch {
    return 'local time';
  }
}

// "<input> = 2026-11-23 18:00:00 UTC" beside a datetime-local input.
export function utcHint(input, out) {
  const update = () => {
    const d = new Date(input.value);
    out.textContent = input.value && !isNaN(d) ? `${fmtUtc(d.toISOString())} (your time zone: ${zoneName()})` : '';
  };
  input.addEventListener('input', update);
  update();
  return update;
}

function describeBuild(x) {
  if (!x) return null;
  if (typeof x === 'string') return x;
  if (x.release !== undefined) return `${x.release} build ${x.build}`;
  return null;
}

function countOf(v) {
  if (Array.isArray(v)) return v.length;
  if (typeof v === 'number') return v;
  return 0;
}

function fileList(label, v) {
  if (!Array.isArray(v) || !v.length) return null;
  const shown = v.slice(0, 200);
  return h('details', null, h('summary', null, `${label} (${v.length})`),
    h('ul', { class: 'files' }, shown.map((p) => h('li', null, h('code', null, typeof p === 'string' ? p : p.path || JSON.stringify(p))))),
    v.length > shown.length ? h('p', { class: 'muted' }, `… and ${v.length - shown.length} more`) : null);
}

export function renderPreview(p, { model, stage, release, build }) {
  const out = [];
  const kind = p.kind || 'deploy';
  const current = describeBuild(p.current) || describeBuild(model ? model.currentOf(stage) : null);
  const target = `${release} build ${build}`;
  let line;
  if (p.summary) line = p.summary;
  else if (kind === 'rollback') line = `Rollback: ${stage} currently runs ${current || 'a newer build'}; this goes back to ${target}.`;
  else if (kind === 'redeploy') line = `Re-deploy: ${target} succeeded on ${stage} before${current ? `; ${stage} currently runs ${current}` : ''}.`;
  else line = `Promote: ${target} enters ${stage} for the first time${current ? `; ${stage} currently runs ${current}` : ''}.`;
  out.push(h('p', { class: `kind-line kind-${kind}`, 'data-testid': 'kind-line' }, line));
  if (p.summary && p.summary !== line) out.push(h('p', { class: 'summary' }, p.summary));
  for (const problem of p.problems || []) out.push(h('p', { class: 'warn' }, `Will fail: ${problem}`));

  const targets = p.targets || [];
  out.push(h('h3', null, 'Files per target'));
  if (!targets.length) out.push(h('p', { class: 'muted' }, 'No file changes reported.'));
  else {
    out.push(table(['Target', 'Now runs', 'Added', 'Overwritten', 'Deleted', 'Unchanged'], targets.map((t) =>
      h('tr', null, h('th', { scope: 'row' }, t.target), h('td', null, t.current || 'nothing'), h('td', null, String(countOf(t.added))),
        h('td', null, String(countOf(t.overwritten))), h('td', null, String(countOf(t.deleted))),
        h('td', null, String(countOf(t.unchanged))))), { class: 'compact' }));
    for (const t of targets) {
      const lists = [fileList('added', t.added), fileList('overwritten', t.overwritten), fileList('deleted', t.deleted)].filter(Boolean);
      if (lists.length) out.push(h('div', { class: 'file-lists' }, h('strong', null, t.target), lists));
      if (t.error || t.message) out.push(h('p', { class: 'warn' }, `${t.target}: ${t.error || t.message}`));
    }
  }

  const vars = p.variables || [];
  out.push(h('h3', null, 'Variables that differ'));
  if (!vars.length) out.push(h('p', { class: 'muted' }, 'None: the variables are the same as deployed.'));
  else out.push(table(['Name', 'Scope', 'Change', 'As deployed', 'Current'], vars.map((v) =>
    h('tr', null, h('th', { scope: 'row' }, v.name), h('td', null, [v.scope, v.target].filter(Boolean).join(' ')), h('td', null, v.change || ''),
      h('td', null, h('code', null, v.as_deployed ?? '—')), h('td', null, h('code', null, v.current ?? '—')))), { class: 'compact' }));

  const gates = p.gates || [];
  out.push(h('h3', null, 'Gates'));
  if (!gates.length) out.push(h('p', { class: 'muted' }, 'No gates on this stage.'));
  else out.push(h('ul', { class: 'gates' }, gates.map((g) => h('li', { class: g.holds ? 'ok' : 'no' },
    h('span', { class: 'gate-mark', 'aria-hidden': 'true' }, g.holds ? '✓' : '✗'), ' ',
    h('strong', null, g.gate), ` — ${g.holds ? 'holds' : 'does not hold yet'}`, g.detail ? `: ${g.detail}` : ''))));

  const ops = p.operations || {};
  const opTargets = Object.keys(ops);
  if (opTargets.length) {
    out.push(h('h3', null, 'Plan'));
    for (const t of opTargets) {
      const lines = Array.isArray(ops[t]) ? ops[t] : [String(ops[t])];
      out.push(h('details', null, h('summary', null, `${t}: ${lines.length} operation(s)`), h('pre', { class: 'ops' }, lines.join('\n'))));
    }
  }
  return out;
}

// The irreversible steps a re-deploy goes back across, in a red box with the
// acknowledgement the request needs; `onChange(checked)` follows the checkbox.
// `words` replaces the explanation and the undo column's text (a rollback
// record runs no undo steps).
export function irreversibleBox(steps, id, onChange, words = {}) {
  const intro = words.intro || 'They ran on this stage since this build was last deployed here. Putting the build back does not reverse them; where a step names undo steps, they run from the newer build\'s own plan before anything is switched.';
  const undo = words.undo || 'its undo steps run first, before the switch';
  const check = h('input', { type: 'checkbox', id: `${id}-ack`, name: 'acknowledge_irreversible' });
  check.addEventListener('change', () => onChange(check.checked));
  const rows = steps.map((s) => h('tr', null,
    h('td', null, `${s.release} build ${s.build}`),
    h('td', null, h('code', null, s.step), h('span', { class: 'muted' }, ` step ${s.step_id}`)),
    h('td', null, s.target), h('td', null, fmtUtc(s.ran_at)), h('td', null, s.note),
    h('td', null, s.has_undo ? undo : 'none')));
  return h('section', { class: 'irreversible', 'data-testid': 'irreversible', 'aria-labelledby': `${id}-irr` },
    h('h3', { id: `${id}-irr` }, `This rollback cannot undo ${steps.length} irreversible step${steps.length === 1 ? '' : 's'}`),
    h('p', null, intro),
    table(['Build', 'Step', 'Target', 'Ran', 'Note', 'Undo'], rows, { class: 'compact' }),
    h('div', { class: 'checkbox' }, check, h('label', { for: `${id}-ack` }, 'I understand these cannot be undone by the rollback')));
}

// Opens the dialog. `onDone(deployment)` is called after a successful request.
export function openDeployDialog({ model, release, build, stage, onDone }) {
  const id = `dd${++counter}`;
  const opener = document.activeElement;
  const app = model.app.name;
  const stages = model.stageNames();

  const stageSel = h('select', { id: `${id}-stage`, name: 'stage' },
    stages.map((s) => h('option', { value: s, selected: s === stage }, s)));
  const nowRadio = h('input', { type: 'radio', name: `${id}-when`, id: `${id}-now`, value: 'now', checked: true });
  const laterRadio = h('input', { type: 'radio', name: `${id}-when`, id: `${id}-later`, value: 'later' });
  const inOneHour = new Date(Date.now() + 3600 * 1000);
  inOneHour.setSeconds(0, 0);
  const atInput = h('input', { type: 'datetime-local', id: `${id}-at`, name: 'at', step: '1', value: toLocalInput(inOneHour), disabled: true, 'aria-describedby': `${id}-utc` });
  const utcOut = h('output', { id: `${id}-utc`, for: `${id}-at`, class: 'utc' });
  const refreshUtc = utcHint(atInput, utcOut);
  const asDeployed = h('input', { type: 'radio', name: `${id}-ctx`, id: `${id}-asdep`, value: 'as-deployed', checked: true });
  const currentCtx = h('input', { type: 'radio', name: `${id}-ctx`, id: `${id}-cur`, value: 'current' });
  const contextSet = h('fieldset', { class: 'ctx' }, h('legend', null, 'Variables'),
    h('div', { class: 'radio' }, asDeployed, h('label', { for: `${id}-asdep` }, 'As deployed — exactly as resolved in this build\'s last successful deployment to the stage')),
    h('div', { class: 'radio' }, currentCtx, h('label', { for: `${id}-cur` }, 'Current settings — today\'s environment, target and application variables')));
  const comment = h('textarea', { id: `${id}-comment`, name: 'comment', rows: 2, placeholder: 'Why? (shown in the audit trail)' });
  const force = h('input', { type: 'checkbox', id: `${id}-force`, name: 'force' });
  const forceRow = hasRole('release-manager') ? h('div', { class: 'checkbox' }, force,
    h('label', { for: `${id}-force` }, 'Force: skip the gates (needs a comment; audited)')) : null;
  const previewBox = h('section', { class: 'preview', 'aria-live': 'polite', 'aria-busy': 'true', 'aria-label': 'Preview' });
  const errorArea = h('div', { class: 'dialog-error' });
  // Why this user may not confirm (shown, and the button's hover text).
  const refusal = h('p', { class: 'warn refusal', id: `${id}-refusal`, hidden: true });
  const confirm = h('button', { type: 'submit', class: 'primary', id: `${id}-confirm` }, 'Confirm');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const title = h('h2', { id: `${id}-title` }, '');

  const form = h('form', { class: 'deploy-form', novalidate: true },
    title,
    h('div', { class: 'field' }, h('label', { for: `${id}-stage` }, 'Stage'), stageSel),
    h('fieldset', { class: 'when' }, h('legend', null, 'When'),
      h('div', { class: 'radio' }, nowRadio, h('label', { for: `${id}-now` }, 'Now')),
      h('div', { class: 'radio' }, laterRadio, h('label', { for: `${id}-later` }, 'At a date and time')),
      h('div', { class: 'at-row' }, h('label', { for: `${id}-at`, class: 'sr-only' }, `Date and time (${zoneName()})`), atInput, utcOut)),
    contextSet,
    h('div', { class: 'field' }, h('label', { for: `${id}-comment` }, 'Comment'), comment),
    forceRow,
    previewBox,
    h('div', { class: 'dialog-foot' }, refusal, errorArea, h('div', { class: 'actions' }, cancel, confirm)));
  const dialog = h('dialog', { class: 'deploy-dialog', 'aria-labelledby': `${id}-title` }, form);

  let kind = null;
  let seq = 0;
  let irreversible = [];  // steps the request must acknowledge
  let acknowledged = false;
  let approvalPending = false;  // an approval gate will hold the deployment

  function label() {
    const k = kind === 'rollback' || kind === 'redeploy' ? 'Re-Deploy' : (stages.indexOf(stageSel.value) === 0 ? 'Deploy' : 'Promote');
    return k;
  }

  function updateTexts() {
    const verb = label();
    title.textContent = `${verb} ${app} ${release} build ${build} to ${stageSel.value}`;
    const later = laterRadio.checked;
    const requested = approvalPending && !force.checked;
    confirm.textContent = later ? `Schedule ${verb}` : requested ? REQUEST[verb] : `${verb} now`;
    confirm.title = requested && !later ? 'It waits for the approval the stage asks for before it runs' : '';
    contextSet.hidden = kind === 'promote' || kind === 'deploy';
    const reason = deployRefusal({ kind, spec: model.stageSpec(stageSel.value), grant: model.grants && model.grants.get(model.stageSpec(stageSel.value)?.environment), force: force.checked });
    refusal.hidden = !reason;
    refusal.textContent = reason || '';
    if (reason) {
      confirm.title = reason;
      confirm.setAttribute('aria-describedby', refusal.id);
    } else {
      confirm.removeAttribute('aria-describedby');
    }
    confirm.disabled = !!reason || (irreversible.length > 0 && !acknowledged);
  }

  async function loadPreview() {
    const mine = ++seq;
    clear(previewBox).append(h('h3', null, 'Preview'), loading('Computing the preview…'));
    previewBox.setAttribute('aria-busy', 'true');
    const ctxValue = currentCtx.checked ? 'current' : 'as-deployed';
    try {
      const body = { stage: stageSel.value };
      if (kind !== 'promote' && kind !== 'deploy' && kind !== null) body.context = ctxValue;
      const p = await post(`${buildPath(app, release, build)}/preview`, body);
      if (mine !== seq) return;
      const firstKind = kind === null;
      kind = p.kind || (model.succeededOn(release, build, stageSel.value) ? 'redeploy' : 'promote');
      updateTexts();
      if (firstKind && kind !== 'promote' && ctxValue !== 'as-deployed') { loadPreview(); return; }
      irreversible = p.irreversible || [];
      approvalPending = (p.gates || []).some((g) => g.gate === 'approvals' && !g.holds);
      acknowledged = false;
      updateTexts();
      const box = irreversible.length ? irreversibleBox(irreversible, id, (checked) => { acknowledged = checked; updateTexts(); }) : null;
      append(clear(previewBox), [h('h3', null, 'Preview'), box, renderPreview(p, { model, stage: stageSel.value, release, build })]);
    } catch (e) {
      if (mine !== seq) return;
      irreversible = [];
      kind = model.succeededOn(release, build, stageSel.value) ? 'redeploy' : 'promote';
      updateTexts();
      clear(previewBox).append(h('h3', null, 'Preview'), h('p', { class: 'warn' }, 'The preview is not available:'), errorBox(e));
    } finally {
      if (mine === seq) previewBox.setAttribute('aria-busy', 'false');
    }
  }

  function close() {
    dialog.close();
  }

  stageSel.addEventListener('change', () => { kind = null; loadPreview(); });
  asDeployed.addEventListener('change', loadPreview);
  currentCtx.addEventListener('change', loadPreview);
  force.addEventListener('change', updateTexts);
  for (const r of [nowRadio, laterRadio]) r.addEventListener('change', () => {
    atInput.disabled = !laterRadio.checked;
    if (laterRadio.checked) atInput.focus();
    refreshUtc();
    updateTexts();
  });
  cancel.addEventListener('click', close);
  // Tab and Shift+Tab cycle inside the dialog instead of leaving for the browser.
  dialog.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const focusable = [...dialog.querySelectorAll('button, input, select, textarea, summary, a[href], [tabindex]:not([tabindex="-1"])')]
      .filter((el) => !el.disabled && el.offsetParent !== null);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (ev.shiftKey && document.activeElement === first) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && document.activeElement === last) {
      ev.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(errorArea);
    const body = { stage: stageSel.value };
    if (laterRadio.checked) {
      const checked = checkScheduleInput(atInput.value);
      if (checked.problem) {
        errorArea.append(h('p', { class: 'error-text', role: 'alert' }, checked.problem));
        atInput.focus();
        return;
      }
      body.at = checked.date.toISOString();
    }
    if (kind === 'redeploy' || kind === 'rollback') body.context = currentCtx.checked ? 'current' : 'as-deployed';
    if (comment.value.trim()) body.comment = comment.value.trim();
    if (force.checked) {
      if (!body.comment) {
        errorArea.append(errorBox({ message: 'A forced deployment needs a comment.' }));
        comment.focus();
        return;
      }
      body.force = true;
    }
    if (irreversible.length) {
      if (!acknowledged) return;
      body.acknowledge_irreversible = true;
    }
    confirm.disabled = true;
    try {
      const dep = await post(`${buildPath(app, release, build)}/deploy`, body);
      close();
      if (onDone) onDone(dep);
    } catch (e) {
      errorArea.append(errorBox(e));
      errorArea.scrollIntoView({ block: 'nearest' });
    } finally {
      updateTexts();
    }
  });

  updateTexts();
  document.body.append(dialog);
  dialog.showModal();
  stageSel.focus();
  loadPreview();
  return dialog;
}
