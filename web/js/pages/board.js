// The pipeline board of one application: stages as columns, each target's
// current build with status, who and when; rollback candidates; the hold
// after a rollback; and the builds with their progress through the stages.
// "Test connection" on a stage asks every target's agent whether it is
// connected and can write the target (POST …/stages/{stage}/test-connection)
// and shows the per-target answer inline.
import { post, enc } from '../api.js';
import { h, append, clear, whenOf, hashFor, timeEl, relTime, statusBadge, loading, flash, fmtBytes, FINAL } from '../dom.js';
import { go } from '../router.js';
import { hasRole } from '../session.js';
import { loadAppModel } from '../model.js';
import { openDeployDialog, deployRefusal } from './deploy_dialog.js';
import { rememberNotice } from '../schedule.js';
import { BUSY_MS, IN_PROGRESS } from '../poll.js';
import { verifyControls } from './verify.js';
import { openRollbackPicker } from './rollback_picker.js';
import { mayCreate, redeployGrants, recordsByExecution } from './rollback_common.js';

export async function renderBoard(main, ctx) {
  const appName = ctx.params.app;
  const header = h('div', { class: 'page-head' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Applications'), ' / '),
    h('h1', null, appName),
    hasRole('release-manager') ? h('a', { href: hashFor('apps', appName, 'spec'), class: 'button secondary small spec-link' }, 'Edit spec') : null);
  const body = h('div', null, loading());
  main.append(header, body);
  let timer = null;
  let signature = '';
  const verifications = new Map();  // "Verify files" results survive redraws
  const connections = new Map();  // "Test connection" results, per stage
  const grants = new Map();  // environment -> the user holds its redeploy grant

  async function refresh(force) {
    const model = await loadAppModel(appName);
    model.grants = await redeployGrants(model.pipeline.map((p) => p.environment), grants);
    const running = (model.app.stages || []).flatMap((st) => (st.targets || []).map((t) => t.current && t.current.deployment_id));
    model.records = await recordsByExecution(model.deployments.filter((d) => running.includes(d.id))
      .map((d) => ({ ...d, application: d.application || appName })));
    const sig = JSON.stringify([model.app.stages, model.deployments.map((d) => [d.id, d.status]), model.builds.length]);
    if (!force && sig === signature) return model;
    if (document.querySelector('dialog[open]')) return model;  // do not redraw under a dialog
    signature = sig;
    const hadFocus = document.activeElement && document.activeElement.id;
    append(clear(body), render(model, () => refresh(true), verifications, connections));
    if (hadFocus) {
      const again = document.getElementById(hadFocus);
      if (again) again.focus({ preventScroll: true });
    }
    // Often while a deployment runs, less while one waits, seldom when idle.
    const inProgress = model.deployments.some((d) => IN_PROGRESS.has(d.status));
    const active = model.deployments.some((d) => !FINAL.has(d.status));
    clearInterval(timer);
    timer = setInterval(() => refresh(false).catch(() => {}), inProgress ? BUSY_MS : active ? 2000 : 8000);
    return model;
  }

  try {
    await refresh(true);
  } catch (e) {
    body.remove();  // no "Loading…" beside the error
    throw e;
  }
  return () => clearInterval(timer);
}

function stageId(stage) {
  return 'stage-' + stage.replace(/[^A-Za-z0-9_-]/g, '_');
}

function render(model, reload, verifications, connections) {
  const app = model.app;
  const frag = [];
  frag.push(h('p', { class: 'muted' },
    app.spec && app.spec.description ? `${app.spec.description} · ` : '',
    `spec version ${app.spec_version}`, app.updated_by ? ` · updated by ${app.updated_by} ` : ' ', timeEl(app.updated_at),
    ' · ', h('a', { href: `#/insights?application=${encodeURIComponent(app.name)}` }, 'Insights')));
  if (model.deploymentsError) {
    frag.push(h('p', { class: 'warn', role: 'status' },
      `Deployment history is not available from this server (${model.deploymentsError.message}).`));
  }

  const openDialog = (release, build, stage) => openDeployDialog({
    model, release, build, stage,
    onDone: (dep) => {
      if (dep && dep.id !== undefined) {
        rememberNotice(dep);
        go(hashFor('deployments', dep.id));
      } else {
        reload();
      }
    },
  });

  frag.push(pipelineStrip(model));

  // Columns.
  const columns = model.pipeline.map((p) => stageColumn(model, p, openDialog, reload, verifications, connections));
  frag.push(h('section', { class: 'board', 'aria-label': 'Pipeline' }, columns));

  // Builds x stages.
  frag.push(h('h2', null, 'Builds'));
  if (hasRole('deployer')) frag.push(h('p', null, h('a', { href: hashFor('apps', app.name, 'new-release'), class: 'button' }, 'New release')));
  if (!model.builds.length) frag.push(h('p', { class: 'muted' }, 'No builds yet.'));
  else frag.push(buildsMatrix(model, openDialog));
  return frag;
}

// The hover text of a Deploy / Promote / Re-Deploy button the user may open
// (to see the preview) but not confirm: why not.
function actionRefusal(model, stage, action) {
  const spec = model.stageSpec(stage);
  const reason = deployRefusal({ kind: action === 'Re-Deploy' ? 'redeploy' : 'promote', spec, grant: model.grants && model.grants.get(spec && spec.environment) });
  return reason ? `Preview only: ${reason}` : null;
}

// The pipeline at a glance: one node per stage in order, arrows between them;
// each node the build its targets run, the stage's latest deployment, and its
// protection, approvals and hold. A node moves focus to the stage's column.
function pipelineStrip(model) {
  return h('ol', { class: 'pipeline', 'aria-label': 'Pipeline at a glance' }, model.pipeline.map((p) => {
    const st = model.stageState.get(p.stage) || {};
    const current = model.currentOf(p.stage);
    const latest = model.latestThatRanOn(p.stage);
    const approvals = p.gates && p.gates.approvals && p.gates.approvals.count;
    const state = latest ? latest.status : current ? 'succeeded' : 'empty';
    return h('li', { class: `pipe-node pipe-${state.replace(/[^a-z-]/g, '')}`, 'data-stage': p.stage },
      h('button', {
        type: 'button', class: 'pipe-stage',
        'aria-label': `${p.stage}: ${current ? `runs ${current.release} build ${current.build}` : 'nothing deployed'}${latest ? `, last deployment ${latest.status}` : ''}. Show the stage`,
        onclick: () => {
          const heading = document.getElementById(stageId(p.stage) + '-h');
          if (!heading) return;
          heading.setAttribute('tabindex', '-1');
          heading.scrollIntoView({ block: 'start' });
          heading.focus({ preventScroll: true });
        },
      }, p.stage),
      h('div', { class: 'pipe-build' }, current ? `${current.release} build ${current.build}` : '—'),
      h('div', { class: 'badges' },
        latest ? statusBadge(latest.status) : null,
        p.protected ? h('span', { class: 'badge protected' }, 'protected') : null,
        approvals ? h('span', { class: 'badge', title: `${approvals} approval(s) from ${p.gates.approvals.role || 'release-manager'}` }, `${approvals} approval${approvals > 1 ? 's' : ''}`) : null,
        st.hold ? h('span', { class: 'badge hold-mark' }, 'hold') : null,
        p.auto_promote ? h('span', { class: 'badge', title: 'promotes the next stage automatically' }, 'auto →') : null));
  }));
}

// One target's line of a connection test.
function connectionItem(t) {
  const ok = !t.problem;
  const facts = t.connected && t.approved
    ? [`agent ${t.agent}${t.version ? ' ' + t.version : ''}`, `${t.latency_ms} ms`,
      t.writable ? 'writable' : 'not writable', `${fmtBytes(t.free_bytes)} free`,
      t.needed_bytes ? `${fmtBytes(t.needed_bytes)} needed` : null].filter(Boolean).join(' · ')
    : `agent ${t.agent}`;
  return h('li', { class: ok ? 'conn-ok' : 'conn-bad', 'data-target': t.target },
    h('strong', null, t.target), ': ', ok ? 'ready' : 'problem', ' — ', facts,
    ok ? null : h('div', { class: 'conn-problem' }, t.problem));
}

function connectionView(entry) {
  if (!entry) return null;
  if (entry.pending) return h('p', { class: 'muted small' }, 'Testing the connection to every target…');
  if (entry.error) return h('p', { class: 'verify-error small' }, 'Could not test the connection: ', entry.error.message || String(entry.error));
  const r = entry.report;
  return h('div', { class: 'small ' + (r.ok ? 'conn-all-ok' : 'verify-bad') },
    h('p', null, h('strong', null, r.ok ? 'Every target is ready' : 'Not every target is ready'), ' · ', timeEl(entry.at)),
    h('ul', { class: 'conn-targets' }, (r.targets || []).map(connectionItem)));
}

function connectionControls(model, p, connections) {
  const id = 'test-connection-' + stageId(p.stage);
  const out = h('div', { class: 'conn-result', id: `${id}-result`, role: 'status', 'aria-live': 'polite' });
  const button = h('button', {
    type: 'button', class: 'small secondary', id,
    'aria-label': `Test connection to the targets of ${p.stage}`, 'aria-controls': `${id}-result`,
  }, 'Test connection');

  // The board may have been redrawn meanwhile: fill what is on the page now.
  function show(entry) {
    const el = out.isConnected ? out : document.getElementById(`${id}-result`) || out;
    const btn = button.isConnected ? button : document.getElementById(id) || button;
    const pending = !!(entry && entry.pending);
    el.setAttribute('aria-busy', pending ? 'true' : 'false');
    btn.setAttribute('aria-disabled', pending ? 'true' : 'false');
    btn.textContent = pending ? 'Testing…' : 'Test connection';
    append(clear(el), [connectionView(entry)]);
  }

  button.addEventListener('click', async () => {
    const now = connections.get(p.stage);
    if (now && now.pending) return;  // one test at a time; the button keeps its focus
    connections.set(p.stage, { pending: true });
    show(connections.get(p.stage));
    let entry;
    try {
      const report = await post(`/applications/${enc(model.app.name)}/stages/${enc(p.stage)}/test-connection`, {});
      entry = { report, at: new Date().toISOString() };
    } catch (e) {
      entry = { error: e };
    }
    connections.set(p.stage, entry);
    show(entry);
  });
  show(connections.get(p.stage));
  return h('div', { class: 'conn' }, button, out);
}

function stageColumn(model, p, openDialog, reload, verifications, connections) {
  const st = model.stageState.get(p.stage) || {};
  const gates = p.gates || {};
  const badges = [];
  if (p.protected) badges.push(h('span', { class: 'badge protected', title: 'Needs release-manager' }, 'protected'));
  if (p.auto_promote) badges.push(h('span', { class: 'badge', title: 'Builds are promoted here automatically' }, 'auto-promote'));
  if (gates.approvals && gates.approvals.count > 0) badges.push(h('span', { class: 'badge', title: 'Approvals needed before it runs' },
    `${gates.approvals.count} approval${gates.approvals.count > 1 ? 's' : ''} · ${gates.approvals.role || 'any role'}`));
  const windows = [].concat(gates.window || []).filter(Boolean);
  if (windows.length) badges.push(h('span', { class: 'badge', title: `Deployment window${gates.timezone ? ` (${gates.timezone})` : ''}` },
    `window: ${windows.join(', ')}`));

  const col = h('section', { class: 'stage', id: stageId(p.stage), 'aria-labelledby': stageId(p.stage) + '-h' },
    h('header', null, h('h2', { id: stageId(p.stage) + '-h' }, p.stage),
      h('div', { class: 'muted small' }, `environment ${p.environment || st.environment || ''}`), h('div', { class: 'badges' }, badges)));

  if (st.hold) {
    const hold = st.hold;
    const box = h('div', { class: 'hold', role: 'status' },
      h('strong', null, 'Hold: '), 'automatic promotion is paused', hold.reason ? ` (${hold.reason})` : ' after a rollback',
      hold.by ? ` by ${hold.by}` : '', ' ', hold.since ? timeEl(hold.since) : null,
      hold.deployment_id !== undefined ? [' (', h('a', { href: hashFor('deployments', hold.deployment_id) }, `#${hold.deployment_id}`), ')'] : null);
    if (hasRole('release-manager')) box.append(' ', clearHoldButton(model, p, reload));
    col.append(box);
  }

  const active = model.activeOn(p.stage);
  if (active.length) {
    col.append(h('ul', { class: 'active' }, active.map((d) => h('li', null,
      statusBadge(d.status), ' ', h('a', { href: hashFor('deployments', d.id) }, `#${d.id} ${d.release} build ${d.build}`),
      d.status === 'scheduled' && whenOf(d) ? [' at ', timeEl(whenOf(d))] : null))));
  }

  const targets = st.targets || (p.targets || []).map((t) => ({ target: t }));
  const latest = model.latestOn(p.stage);
  col.append(h('ul', { class: 'targets', 'aria-label': `Targets of ${p.stage}` }, targets.map((t) => {
    const c = t.current;
    const dep = c && c.deployment_id !== undefined ? model.deployments.find((d) => d.id === c.deployment_id) : null;
    const status = t.status || (dep ? dep.status : c ? 'succeeded' : null);
    return h('li', { class: 'target card', 'data-target': t.target },
      h('div', { class: 'target-name' }, t.target),
      c ? h('div', { class: 'current' },
        h('a', { class: 'build-link', href: hashFor('apps', model.app.name, 'releases', c.release, 'builds', c.build) }, `${c.release} build ${c.build}`),
        rollbackRecordNote(model.records.get(c.deployment_id)), ' ', status ? statusBadge(status) : null,
        h('div', { class: 'small muted' }, c.by ? `by ${c.by} · ` : '', timeEl(c.at), c.at ? ` (${relTime(c.at)})` : '',
          c.deployment_id !== undefined ? [' · ', h('a', { href: hashFor('deployments', c.deployment_id) }, `#${c.deployment_id}`)] : null))
        : h('div', { class: 'muted' }, 'nothing deployed yet'),
      c && hasRole('deployer')
        ? verifyControls(t.target, `${c.release}/${c.build}/${c.deployment_id}`, verifications) : null,
      dep ? rollbackButton(model, p, dep, t.target) : null);
  })));
  if (hasRole('deployer')) col.append(connectionControls(model, p, connections));
  if (latest && FINAL.has(latest.status) && latest.status !== 'succeeded') {
    col.append(h('p', { class: 'small' }, 'Last deployment: ', statusBadge(latest.status), ' ',
      h('a', { href: hashFor('deployments', latest.id) }, `#${latest.id} ${latest.release} build ${latest.build}`)));
  }

  // Every other build that succeeded here: older ones are rollbacks, newer
  // ones (after a rollback) bring the stage forward again.
  const cands = st.rollback_candidates || [];
  const current = model.currentOf(p.stage);
  col.append(h('h3', null, 'Builds that ran here before'));
  if (!cands.length) col.append(h('p', { class: 'muted small' }, 'None yet.'));
  else col.append(h('ul', { class: 'candidates' }, cands.map((c) => h('li', null,
    h('span', null, `${c.release} build ${c.build}`), ' ', directionBadge(model, c, current), ' ',
    h('span', { class: 'small muted' }, timeEl(c.at)), ' ',
    h('button', {
      type: 'button', class: 'small',
      'aria-label': `Re-Deploy ${c.release} build ${c.build} to ${p.stage}`,
      title: actionRefusal(model, p.stage, 'Re-Deploy'),
      onclick: () => openDialog(c.release, c.build, p.stage),
    }, 'Re-Deploy')))));
  return col;
}

// "older" (re-deploying it rolls back) or "newer" than the stage's current build.
function directionBadge(model, c, current) {
  if (!current) return null;
  const created = (x) => (model.builds.find((b) => String(b.release) === String(x.release) && Number(b.number) === Number(x.build)) || {}).created_at;
  const mine = created(c);
  const theirs = created(current);
  if (!mine || !theirs) return null;
  return mine < theirs || (mine === theirs && Number(c.build) < Number(current.build))
    ? h('span', { class: 'badge kind-rollback', title: `older than ${current.release} build ${current.build}: re-deploying it is a rollback` }, 'older')
    : h('span', { class: 'badge kind-redeploy', title: `newer than ${current.release} build ${current.build}, which runs here after a rollback` }, 'newer');
}

// "Clear hold": on a protected stage it asks for a reason first (kept in the
// audit entry), in a dialog; elsewhere it clears at once.
function clearHoldButton(model, p, reload) {
  const id = `clear-hold-${stageId(p.stage)}`;
  const clearIt = async (comment) => {
    await post(`/applications/${enc(model.app.name)}/stages/${enc(p.stage)}/clear-hold`, comment ? { comment } : {});
    flash(`Hold cleared on ${p.stage}.`, 'ok');
    reload();
  };
  const button = h('button', { type: 'button', class: 'small', id, 'aria-haspopup': p.protected ? 'dialog' : null }, 'Clear hold');
  button.addEventListener('click', async () => {
    if (p.protected) { openClearHoldDialog(p, button, clearIt); return; }
    button.disabled = true;
    try {
      await clearIt('');
    } catch (e) {
      flash(e.message);
      button.disabled = false;
    }
  });
  return button;
}

function openClearHoldDialog(p, opener, clearIt) {
  const reason = h('textarea', { id: 'clear-hold-reason', rows: 3, required: true });
  const error = h('div', { role: 'status' });
  const confirm = h('button', { type: 'submit', class: 'primary' }, `Clear the hold on ${p.stage}`);
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h('form', { novalidate: true },
    h('h2', { id: 'clear-hold-title' }, `Clear the hold on ${p.stage}?`),
    h('p', null, `${p.stage} is protected. Automatic promotion into it was paused after a rollback; once cleared, automation may deploy newer builds there again.`),
    h('div', { class: 'field' }, h('label', { for: 'clear-hold-reason' }, 'Reason (kept in the audit log)'), reason),
    error, h('div', { class: 'actions' }, cancel, confirm));
  const dialog = h('dialog', { class: 'deploy-dialog clear-hold-dialog', 'aria-labelledby': 'clear-hold-title' }, form);
  cancel.addEventListener('click', () => dialog.close());
  reason.addEventListener('input', () => { error.textContent = ''; });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener.isConnected) opener.focus();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!reason.value.trim()) {
      error.append(h('p', { class: 'error' }, 'Say why the hold can be cleared.'));
      reason.focus();
      return;
    }
    confirm.disabled = true;
    try {
      await clearIt(reason.value.trim());
      dialog.close();
    } catch (e) {
      error.append(h('p', { class: 'error' }, e.message));
      confirm.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  reason.focus();
}

// " + rollback record #3 (2 of 7 components reverted)" on a target that runs
// a rollback record's result.
function rollbackRecordNote(r) {
  if (!r) return null;
  return [' + ', h('a', { href: hashFor('rollback-records', r.id), class: 'build-link' }, `rollback record #${r.id}`),
    h('span', { class: 'small' }, ` (${r.components_selected} of ${r.components_total} components reverted)`)];
}

// "Rollback…" (parts of the deployment a target runs) when it succeeded and
// the user may create a rollback record on the stage.
function rollbackButton(model, p, dep, target) {
  if (dep.status !== 'succeeded' || dep.kind === 'selective-rollback') return null;
  if (!mayCreate({ spec: p, grant: model.grants.get(p.environment) })) return null;
  const button = h('button', {
    type: 'button', class: 'small secondary rollback-open', id: `rollback-${stageId(target)}`,
    'aria-label': `Rollback… parts of deployment #${dep.id} on ${target}`, 'aria-haspopup': 'dialog',
  }, 'Rollback…');
  button.addEventListener('click', () => openRollbackPicker({ deployment: { ...dep, application: dep.application || model.app.name }, opener: button }));
  return h('div', { class: 'verify' }, button);
}

function buildsMatrix(model, openDialog) {
  const stages = model.stageNames();
  const rows = model.builds.map((b) => {
    const cells = stages.map((s) => {
      const outcome = model.outcomeOn(b.release, b.number, s);
      const current = model.currentOf(s);
      const isCurrent = current && String(current.release) === String(b.release) && Number(current.build) === Number(b.number);
      const action = model.actionFor(b.release, b.number, s);
      return h('td', { 'data-stage': s },
        outcome && outcome.id !== null ? h('a', { href: hashFor('deployments', outcome.id), title: outcome.title }, statusBadge(outcome.status))
          : outcome || isCurrent ? statusBadge('succeeded') : h('span', { class: 'muted' }, '—'),
        isCurrent ? h('span', { class: 'badge current-badge' }, 'current') : null,
        ' ',
        action ? h('button', {
          type: 'button', class: 'small' + (action === 'Re-Deploy' ? ' secondary' : ''),
          'aria-label': `${action} ${b.release} build ${b.number} to ${s}`,
          title: actionRefusal(model, s, action),
          onclick: () => openDialog(b.release, b.number, s),
        }, action) : null);
    });
    return h('tr', null,
      h('th', { scope: 'row' }, h('a', { href: hashFor('apps', model.app.name, 'releases', b.release, 'builds', b.number) }, `${b.release} build ${b.number}`),
        h('div', { class: 'small muted' }, b.created_by ? `${b.created_by} · ` : '', timeEl(b.created_at))),
      cells);
  });
  return h('div', { class: 'table-wrap' }, h('table', { class: 'matrix' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Build'), stages.map((s) => h('th', { scope: 'col' }, s)))),
    h('tbody', null, rows)));
}

