// Browser scenarios of selective rollback records: the component picker, the
// record page through test connection, submit, approval by a second user,
// execution and validation (bytes checked on disk), and the Rollback logs page.
// Each scenario is a function of `env` (the runner's helpers), `s` (what the
// earlier ones made: the deployment, the record) and `open(label, viewport,
// extra)`, which gives a fresh logged-out page; each opens the pages it needs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Two builds of one small site. Build 2 (the deployment rolled back in part)
// changes index.html and css/site.css, deletes css/old.css and adds js/new.js,
// img/a.svg and img/b.svg: 6 components (3 delete, 2 override, 1 restore).
const BUILD1 = {
  'index.html': '<h1>rr build 1</h1>\n',
  'css/site.css': 'body { color: black; }\n',
  'css/old.css': '.old { }\n',
  'js/app.js': 'console.log("same");\n',
};
const BUILD2 = {
  'index.html': '<h1>rr build 2</h1>\n',
  'css/site.css': 'body { color: navy; }\n',
  'js/app.js': 'console.log("same");\n',
  'js/new.js': 'console.log("new");\n',
  'img/a.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
  'img/b.svg': '<svg xmlns="http://www.w3.org/2000/svg"><g/></svg>\n',
};

export function tarOf(dir, files) {
  mkdirSync(dir, { recursive: true });
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  const out = `${dir}.tar.gz`;
  const top = [...new Set(Object.keys(files).map((p) => p.split('/')[0]))].sort();
  execFileSync('tar', ['-C', dir, '-czf', out, ...top]);
  return readFileSync(out);
}

async function upload(env, build, bytes) {
  const res = await fetch(`${env.base()}/api/v1/applications/rr/releases/1.0/builds/${build}/artifacts/web`,
    { method: 'PUT', headers: { Authorization: `Bearer ${env.adminToken}` }, body: bytes });
  if (!res.ok) throw new Error(`artifact upload of build ${build} answered ${res.status}: ${await res.text()}`);
}

async function noOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 2) throw new Error(`${what} is ${overflow}px wider than the phone screen`);
}

async function recordStatus(env, id) {
  return (await env.api('GET', `/rollback-records/${id}`)).status;
}

async function waitRecord(env, id, wanted, timeout) {
  const want = [].concat(wanted);
  const deadline = Date.now() + timeout;
  let s;
  while (Date.now() < deadline) {
    s = await recordStatus(env, id);
    if (want.includes(s)) return s;
    if (['failed', 'rejected', 'validation-failed'].includes(s)) {
      throw new Error(`rollback record #${id} is ${s}: ${JSON.stringify(await env.api('GET', `/rollback-records/${id}`)).slice(0, 2000)}`);
    }
    await env.sleep(50);
  }
  throw new Error(`rollback record #${id} is ${s}, expected ${want.join('|')} within ${timeout} ms`);
}

// An application of its own ("rr", stage "Release" on target rr-web) where
// build 1 and then build 2 were deployed; returns build 2's deployment (D).
export async function setUpRollbackRecordApp(env) {
  const root = join(env.tempDir, 'rr-builds');
  await env.api('PUT', '/targets/rr-web', { environment: 'Integration', agent: 'local', path: join(env.dataDir, 'targets', 'rr-web') });
  await env.api('PUT', '/applications/rr', {
    description: 'selective rollback records',
    pipeline: [{ stage: 'Release', environment: 'Integration', targets: ['rr-web'], plan: 'site' }],
    // The exec is irreversible: a record of build 2's deployment lists it and
    // is executed only once it is acknowledged.
    plans: { site: '- deploy-artifact: { artifact: web }\n- exec: { command: "true" }\n  irreversible: true\n  note: "cache schema v2"\n' },
  });
  await env.api('POST', '/applications/rr/releases', { number: '1.0' });
  let d = null;
  for (const [n, files] of [[1, BUILD1], [2, BUILD2]]) {
    await env.api('POST', '/applications/rr/releases/1.0/builds', {});
    await upload(env, n, tarOf(join(root, `b${n}`), files));
    d = await env.api('POST', `/applications/rr/releases/1.0/builds/${n}/deploy`, { stage: 'Release' });
    await env.waitStatus(d.id, 'succeeded');
  }
  return d.id;
}

// The picker: every component selected, a directory deselected, the filter,
// then the confirmation creates the record and opens its page.
export async function pickerScenario(env, depId, open) {
  const page = await open('rr-admin');
  await env.login(page, 'admin', env.adminPassword);
  // Offered on the board's target card too.
  await page.goto(`${env.base()}/#/apps/rr`);
  await page.getByRole('button', { name: `Rollback… parts of deployment #${depId} on rr-web` }).waitFor();
  await page.goto(`${env.base()}/#/deployments/${depId}`);
  await page.getByRole('button', { name: `Rollback… parts of deployment #${depId}` }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  // The reason first: it is stored with the draft.
  await dialog.getByLabel(/^Comment/).fill('put the old styles back');
  await dialog.getByRole('button', { name: 'Choose components' }).click();
  const count = dialog.locator('.picker-count');
  await env.waitText(page, 'dialog[open] .picker-count', '6 of 6 selected');
  for (const [path, type] of [['index.html', 'override'], ['css/old.css', 'restore'], ['js/new.js', 'delete'], ['img/a.svg', 'delete']]) {
    const box = dialog.getByLabel(`${path} (${type})`, { exact: true });
    if (!(await box.isChecked())) throw new Error(`${path} is not selected by default`);
  }
  // Deselecting a directory deselects everything under it.
  await dialog.getByLabel('directory img/', { exact: true }).uncheck();
  await env.waitText(page, 'dialog[open] .picker-count', '4 of 6 selected');
  if (await dialog.getByLabel('img/b.svg (delete)', { exact: true }).isChecked()) throw new Error('img/b.svg is still selected');
  // The filter narrows what is shown, not what is selected.
  await dialog.getByLabel('Filter').fill('css');
  await env.waitText(page, 'dialog[open] .picker-count', '4 of 6 selected · 2 shown');
  if (await dialog.getByLabel('js/new.js (delete)', { exact: true }).isVisible()) throw new Error('the filter still shows js/new.js');
  await page.screenshot({ path: join(env.shotDir, 'rollback-picker.png') });
  await dialog.getByLabel('Filter').fill('');
  await env.waitText(page, 'dialog[open] .picker-count', '4 of 6 selected');
  if (!(await count.textContent()).startsWith('4 of 6 selected')) throw new Error(`count reads ${await count.textContent()}`);
  await dialog.getByRole('button', { name: 'Next' }).click();
  await env.waitText(page, 'dialog[open] .confirm-line', 'Roll back 4 of 6 components (1 delete, 2 override, 1 restore)');
  await env.waitText(page, 'dialog[open]', 'put the old styles back');
  await page.screenshot({ path: join(env.shotDir, 'rollback-confirm.png') });
  await dialog.getByRole('button', { name: 'Create rollback record' }).click();
  await page.waitForURL(/#\/rollback-records\/\d+$/);
  const rid = Number(/rollback-records\/(\d+)/.exec(page.url())[1]);
  await env.waitText(page, '#record-status', 'draft');
  await env.waitText(page, '#record-components-count', '4 of 6 selected');
  const rec = await env.api('GET', `/rollback-records/${rid}`);
  const chosen = (rec.components || []).filter((c) => c.selected).map((c) => c.path).sort();
  if (JSON.stringify(chosen) !== JSON.stringify(['css/old.css', 'css/site.css', 'index.html', 'js/new.js']))
    throw new Error(`the record selects ${JSON.stringify(chosen)}`);
  if (rec.comment !== 'put the old styles back') throw new Error(`the record's comment is ${JSON.stringify(rec.comment)}`);
  return rid;
}

// The record page: test connection, submit, approval by a second user,
// execute now, validate, the validation file; bytes checked on disk.
export async function recordFlowScenario(env, { rid }, open) {
  const page = await open('rr-admin');
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(`${env.base()}/#/rollback-records/${rid}`);
  await env.waitText(page, '#record-status', 'draft');
  // A file edited on the target since the deployment: the check names it.
  const site = join(env.dataDir, 'targets', 'rr-web', 'current', 'css', 'site.css');
  writeFileSync(site, 'body { color: red; } /* edited by hand */\n');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await page.locator('[data-target="rr-web"] [data-connection="problem"]').waitFor();
  await env.waitText(page, '[data-target="rr-web"] .conn-line', 'css/site.css');
  await env.waitText(page, '#record-warnings', 'css/site.css: size');
  await page.screenshot({ path: join(env.shotDir, 'rollback-record-drift.png'), fullPage: true });
  writeFileSync(site, BUILD2['css/site.css']);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await page.locator('[data-target="rr-web"] [data-connection="ok"]').waitFor();
  // Submitted meanwhile (here through the API): the stale page's Submit is
  // refused, and the refusal shows once, beside the actions, not also in the
  // banner at the top.
  await env.api('POST', `/rollback-records/${rid}/submit`, {});
  await page.getByRole('button', { name: 'Submit for approval' }).click();
  await page.locator('#record-action-result .error').waitFor();
  const refusal = await page.locator('#record-action-result .error').textContent();
  const banner = page.locator('#flash');
  if (await banner.isVisible()) throw new Error(`the refusal shows twice, also in the banner: ${await banner.textContent()} / ${refusal}`);
  await env.waitText(page, '#record-status', 'pending-approval');
  if (await page.getByRole('button', { name: 'Approve' }).count()) throw new Error('the submitter is offered "Approve"');
  await env.waitText(page, '#record-waiting', 'submitted by admin');

  const rita = await open('rr-rita');
  await env.login(rita, 'rita', env.USERS.rita.password);
  await rita.goto(`${env.base()}/#/rollback-records/${rid}`);
  await rita.getByLabel('Approval comment').fill('fine by me');
  await rita.screenshot({ path: join(env.shotDir, 'rollback-record-approve.png'), fullPage: true });
  await rita.getByRole('button', { name: 'Approve' }).click();
  await env.waitText(rita, '#record-status', 'approved');
  await env.waitText(rita, '#record-history', 'fine by me');

  await page.reload();
  // The irreversible step build 2's deployment ran: listed, and both execute
  // buttons wait for the acknowledgement.
  const irr = page.locator('[data-testid="irreversible"]');
  await env.waitText(page, '[data-testid="irreversible"]', 'cache schema v2');
  if (!(await page.getByRole('button', { name: 'Execute now' }).isDisabled())) throw new Error('Execute now is enabled before the irreversible step is acknowledged');
  await page.screenshot({ path: join(env.shotDir, 'rollback-record-irreversible.png'), fullPage: true });
  await irr.getByLabel('I understand these cannot be undone by the rollback').check();
  await page.getByRole('button', { name: 'Execute now' }).click();
  await page.locator('#record-execution-link').waitFor({ timeout: env.T.deploy });
  await env.waitText(page, '#record-status', 'executed', env.T.deploy);
  const live = join(env.dataDir, 'targets', 'rr-web', 'current');
  const read = (p) => readFileSync(join(live, p), 'utf8');
  if (read('index.html') !== BUILD1['index.html']) throw new Error(`index.html is not build 1's: ${read('index.html')}`);
  if (read('css/site.css') !== BUILD1['css/site.css']) throw new Error('css/site.css is not build 1\'s');
  if (read('css/old.css') !== BUILD1['css/old.css']) throw new Error('css/old.css was not restored');
  if (existsSync(join(live, 'js/new.js'))) throw new Error('js/new.js was not removed');
  if (read('img/a.svg') !== BUILD2['img/a.svg']) throw new Error('img/a.svg (not selected) is not build 2\'s');

  await page.getByRole('button', { name: 'Validate' }).click();
  await env.waitText(page, '#record-status', 'validated', env.T.deploy);
  const href = await page.locator('#record-validation-json').getAttribute('href');
  const json = await page.request.get(env.base() + href);
  if (json.status() !== 200) throw new Error(`the validation file answered ${json.status()}`);
  JSON.parse(await json.text());
  const text = await page.request.get(env.base() + await page.locator('#record-validation-text').getAttribute('href'));
  if (text.status() !== 200 || !(await text.text()).length) throw new Error(`the text validation file answered ${text.status()}`);
  await page.screenshot({ path: join(env.shotDir, 'rollback-record.png'), fullPage: true });
  // The execution's live log.
  await page.locator('#record-execution-link').click();
  await page.waitForURL(/#\/deployments\/\d+$/);
  await page.locator('#deployment-log .line').first().waitFor();
  await env.waitText(page, '#deployment-rollback-record', `rollback record #${rid} (4 of 6 components`);
  // The board: the target runs build 2 plus the record.
  await page.goto(`${env.base()}/#/apps/rr`);
  await env.waitText(page, '.target[data-target="rr-web"]', `1.0 build 2 + rollback record #${rid} (4 of 6 components reverted)`);
  await page.screenshot({ path: join(env.shotDir, 'rollback-board.png'), fullPage: true });
}

// The Rollback logs page lists the record with its status; the column choice
// is remembered; the CSV export carries the same filters.
export async function rollbackLogsScenario(env, { rid }, open) {
  const page = await open('rr-admin');
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(`${env.base()}/#/rollback-records`);
  await page.getByRole('heading', { name: 'Rollback logs', level: 1 }).waitFor();
  await page.locator('#rl-app').fill('rr');
  await page.getByRole('button', { name: 'Filter' }).click();
  const row = page.locator(`tr[data-record="${rid}"]`);
  await row.waitFor();
  await env.waitText(page, `tr[data-record="${rid}"] td[data-col="status"]`, 'validated');
  // Status and day filters.
  await page.locator('#rl-status').selectOption('rejected');
  await page.getByRole('button', { name: 'Filter' }).click();
  await row.waitFor({ state: 'detached' });
  await page.locator('#rl-status').selectOption('validated');
  const today = await page.evaluate(() => {
    const d = new Date();
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  });
  await page.locator('#rl-from').fill(today);
  await page.locator('#rl-to').fill(today);
  await page.getByRole('button', { name: 'Filter' }).click();
  await row.waitFor();
  const csv = await page.locator('#rl-csv').getAttribute('href');
  for (const part of ['format=csv', 'application=rr', 'status=validated', 'from=', 'to='])
    if (!csv.includes(part)) throw new Error(`the CSV link ${csv} lacks ${part}`);
  const res = await page.request.get(env.base() + csv);
  if (res.status() !== 200 || !(await res.text()).includes(String(rid))) throw new Error(`the CSV export answered ${res.status()}`);
  // Hide the stage column: it stays hidden after a reload.
  await page.getByText('Columns', { exact: true }).click();
  await page.getByLabel('Stage', { exact: true }).last().uncheck();
  await page.locator('th[data-col="stage"]').waitFor({ state: 'detached' });
  await page.screenshot({ path: join(env.shotDir, 'rollback-logs.png'), fullPage: true });
  await page.reload();
  await row.waitFor();
  if (await page.locator('th[data-col="stage"]').count()) throw new Error('the hidden column came back after a reload');
  if (!(await page.locator('th[data-col="status"]').count())) throw new Error('the status column is missing');
}

// A release manager rejects one record with a comment; another, approved, is
// executed later (scheduled at the time asked for), then its execution is
// cancelled. Both are records of a fresh deployment of build 2 after build 1.
export async function rejectAndScheduleScenario(env, s, open) {
  for (const n of [1, 2]) {
    // Going back to build 1 crosses build 2's irreversible step.
    const d = await env.api('POST', `/applications/rr/releases/1.0/builds/${n}/deploy`, { stage: 'Release', acknowledge_irreversible: true });
    await env.waitStatus(d.id, 'succeeded');
    if (n === 2) env.freshDeployment = d.id;
  }
  const dep = env.freshDeployment;
  const rita = await env.tokenFor('rita');
  const one = await env.api('POST', `/deployments/${dep}/rollback-records`, { comment: 'to be rejected' });
  await env.api('POST', `/rollback-records/${one.id}/submit`, {});
  const rp = await open('rr-rita');
  await env.login(rp, 'rita', env.USERS.rita.password);
  await rp.goto(`${env.base()}/#/rollback-records/${one.id}`);
  await rp.getByLabel('Approval comment').fill('not before the audit');
  await rp.getByRole('button', { name: 'Reject' }).click();
  await env.waitText(rp, '#record-status', 'rejected');
  await env.waitText(rp, '#record-history', 'not before the audit');
  if (await rp.getByRole('button', { name: /Execute|Submit/ }).count()) throw new Error('a rejected record still offers actions');

  const two = await env.api('POST', `/deployments/${dep}/rollback-records`, { exclude: ['img'] });
  await env.api('POST', `/rollback-records/${two.id}/submit`, {});
  await env.api('POST', `/rollback-records/${two.id}/approve`, { comment: 'later' }, rita);
  const page = await open('rr-admin', undefined, { timezoneId: 'Europe/Berlin' });
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(`${env.base()}/#/rollback-records/${two.id}`);
  await env.waitText(page, '#record-status', 'approved');
  const local = await page.evaluate(() => {
    const x = new Date(Date.now() + 2 * 3600 * 1000);
    const q = (v) => String(v).padStart(2, '0');
    const sec = x.getSeconds() ? `:${q(x.getSeconds())}` : '';  // Chromium drops ":00"
    return `${x.getFullYear()}-${q(x.getMonth() + 1)}-${q(x.getDate())}T${q(x.getHours())}:${q(x.getMinutes())}${sec}`;
  });
  const wanted = new Date(await page.evaluate((v) => new Date(v).toISOString(), local));
  await page.locator('#record-execute-at').fill(local);
  await page.getByLabel('I understand these cannot be undone by the rollback').check();
  await page.getByRole('button', { name: 'Execute later' }).click();
  await env.waitText(page, '#record-status', 'scheduled');
  const rec = await env.api('GET', `/rollback-records/${two.id}`);
  if (!rec.scheduled_at || Math.abs(new Date(rec.scheduled_at) - wanted) > 1000)
    throw new Error(`scheduled_at is ${rec.scheduled_at}, the page asked for ${wanted.toISOString()}`);
  await page.screenshot({ path: join(env.shotDir, 'rollback-record-scheduled.png'), fullPage: true });
  await env.api('POST', `/deployments/${rec.execution_deployment_id}/cancel`, {});
}

// A viewer sees the record but is offered neither "Rollback…" nor its actions.
export async function rollbackViewerScenario(env, { rid, depId }, open) {
  const vic = await open('rr-vic');
  await env.login(vic, 'vic', env.USERS.vic.password);
  await vic.goto(`${env.base()}/#/deployments/${depId}`);
  await env.waitText(vic, '#deployment-status', 'succeeded');
  await vic.locator('#deployment-log .line').first().waitFor();
  if (await vic.getByRole('button', { name: /Rollback…/ }).count()) throw new Error('a viewer is offered "Rollback…"');
  await vic.goto(`${env.base()}/#/rollback-records/${rid}`);
  await env.waitText(vic, '#record-status', 'validated');
  for (const name of ['Validate', 'Test connection', 'Execute now', 'Approve']) {
    if (await vic.getByRole('button', { name }).count()) throw new Error(`a viewer is offered "${name}"`);
  }
}

// The record page and the rollback logs at phone width.
export async function rollbackPhoneScenario(env, { rid, depId }, open) {
  const phone = await open('rr-phone', env.PHONE, { isMobile: true, hasTouch: true });
  await env.login(phone, 'rita', env.USERS.rita.password);
  await phone.goto(`${env.base()}/#/rollback-records/${rid}`);
  await env.waitText(phone, '#record-status', 'validated');
  await phone.screenshot({ path: join(env.shotDir, 'rollback-record-phone.png'), fullPage: true });
  await noOverflow(phone, 'the rollback record page');
  await phone.goto(`${env.base()}/#/rollback-records`);
  await phone.locator(`tr[data-record="${rid}"]`).waitFor();
  await phone.screenshot({ path: join(env.shotDir, 'rollback-logs-phone.png'), fullPage: true });
  await noOverflow(phone, 'the rollback logs page');
  // The picker too (cancelled: its draft stays a draft).
  await phone.goto(`${env.base()}/#/deployments/${depId}`);
  await phone.getByRole('button', { name: `Rollback… parts of deployment #${depId}` }).click();
  await phone.locator('dialog[open]').getByRole('button', { name: 'Choose components' }).click();
  await env.waitText(phone, 'dialog[open] .picker-count', '6 of 6 selected');
  await phone.screenshot({ path: join(env.shotDir, 'rollback-picker-phone.png') });
  await noOverflow(phone, 'the component picker');
  await phone.locator('dialog[open]').getByRole('button', { name: 'Cancel' }).click();
  await phone.locator('dialog').waitFor({ state: 'detached' });
}

// All of the above, in order, as runner steps. A step given a scenario with
// page() opens its pages there; otherwise through env.newUserPage.
export function register(step, env) {
  const s = { depId: 0, rid: 0 };
  const opener = (scenario) => (label, viewport, extra) => (scenario && scenario.page
    ? scenario.page(label, viewport, extra) : env.newUserPage(label, viewport, extra));
  const add = (name, fn) => step(`rollback records: ${name}`, (scenario) => fn(opener(scenario)));
  add('a deployment of build 2 after build 1 on an application of its own', async () => {
    s.depId = await setUpRollbackRecordApp(env);
  });
  add('the picker deselects a directory, counts, filters, and creates the record', async (open) => {
    s.rid = await pickerScenario(env, s.depId, open);
  });
  add('test connection (a drifted file named), submit, approval by a second user, execute, validate, validation file', async (open) => {
    await recordFlowScenario(env, s, open);
  });
  add('the Rollback logs page lists the record with its status; columns remembered; CSV', async (open) => {
    await rollbackLogsScenario(env, s, open);
  });
  add('a release manager rejects a record with a comment; another is executed later at the time asked for', async (open) => {
    await rejectAndScheduleScenario(env, s, open);
  });
  add('a viewer is offered neither Rollback… nor the record\'s actions', async (open) => {
    await rollbackViewerScenario(env, s, open);
  });
  add('the record, the logs and the picker fit a phone screen', async (open) => {
    await rollbackPhoneScenario(env, s, open);
  });
}
