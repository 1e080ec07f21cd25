// Web UI scenarios in headless Chromium (playwright-core), against a real
// reprise-server started with --demo --local-agent on a free port.
// Usage: node run.mjs REPRISE_SERVER SCREENSHOT_DIR [CHROMIUM]
// Each scenario runs on fresh browser contexts of its own (its users log in
// again), guarded: a failure or a hang is reported with its error and
// screenshots and the run goes on with the next scenario. Scenarios still
// share the server's data in order (later ones build on the deployments of
// earlier ones). Exits non-zero when any scenario failed.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync, appendFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { registerRollbackRecordScenarios } from './rollback_records.mjs';
import { registerReleaseScenarios } from './releases.mjs';

const [serverBin, shotDir, chromiumPath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!serverBin || !shotDir) {
  console.error('usage: node run.mjs REPRISE_SERVER SCREENSHOT_DIR [CHROMIUM]');
  process.exit(2);
}

const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';
const ADMIN_PASSWORD = 'admin-password-for-tests';
const USERS = {  // created before the scenarios run
  rita: { role: 'release-manager', password: 'rita-password-1' },
  dave: { role: 'deployer', password: 'dave-password-1' },
  vic: { role: 'viewer', password: 'vic-password-1' },
};
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const T = { short: 15000, deploy: 90000 };
// A scenario still running after this fails and the run goes on.
const SCENARIO_TIMEOUT_MS = 150000;

const temp = mkdtempSync(join(tmpdir(), 'reprise-browser-'));
const dataDir = join(temp, 'data');
let server = null;
let serverLog = '';
let base = '';
let agentPort = 0;
let browser = null;
const children = [];
// Script errors of every page, with the scenario that saw them.
const pageErrors = [];

function log(...a) {
  console.log(...a);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A TCP relay in front of the server: cut() drops every connection through it
// (as a network failure would), new connections still get through.
async function startRelay() {
  const port = await freePort();
  const target = Number(new URL(base).port);
  const open = new Set();
  const relay = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((resolve) => relay.listen(port, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${port}`,
    cut: () => { for (const s of open) s.destroy(); },
    close: () => { for (const s of open) s.destroy(); relay.close(); },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, path, body, token = ADMIN_TOKEN) {
  const res = await fetch(base + '/api/v1' + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return data;
}

async function startServer() {
  const port = await freePort();
  agentPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(serverBin, ['--data', dataDir, '--http', `127.0.0.1:${port}`, '--agent-port', String(agentPort),
    '--local-agent', '--demo'], {
    env: { ...process.env, REPRISE_ADMIN_TOKEN: ADMIN_TOKEN, REPRISE_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  const exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const code = await Promise.race([exited, sleep(200).then(() => undefined)]);
    if (code !== undefined) throw new Error(`reprise-server exited with ${code}:\n${serverLog}`);
    try {
      const r = await fetch(base + '/api/v1/health');
      if (r.ok) return;
    } catch { /* not yet */ }
  }
  throw new Error('reprise-server did not answer /api/v1/health within 30 s');
}

// What one scenario opens: fresh browser contexts (own cookies and storage),
// closed when the scenario ends.
class Scenario {
  constructor(name) {
    this.name = name;
    this.contexts = [];
  }

  async page(label, viewport = DESKTOP, extra = {}) {
    const ctx = await browser.newContext({ viewport, ...extra });
    this.contexts.push(ctx);
    const page = await ctx.newPage();
    page.label = label;
    page.setDefaultTimeout(T.short);
    page.on('pageerror', (e) => { page.errors = (page.errors || []).concat(String(e)); });
    page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors = (page.consoleErrors || []).concat(m.text()); });
    return page;
  }

  // A fresh page logged in through the form. The admin's browser is in
  // Europe/Berlin, which the scheduling scenarios rely on.
  async login(user) {
    const extra = user === 'admin' ? { timezoneId: 'Europe/Berlin' } : {};
    const page = await this.page(user, DESKTOP, extra);
    await login(page, user, user === 'admin' ? ADMIN_PASSWORD : USERS[user].password);
    return page;
  }

  pages() {
    return this.contexts.flatMap((ctx) => ctx.pages());
  }

  // Screenshots of every open page; returns their paths.
  async screenshots(index) {
    const paths = [];
    for (const [i, p] of this.pages().entries()) {
      const path = join(shotDir, `failure-${String(index + 1).padStart(2, '0')}-${p.label}-${i}.png`);
      if (await p.screenshot({ path, fullPage: true }).then(() => true, () => false)) paths.push(path);
    }
    return paths;
  }

  async close() {
    for (const p of this.pages()) for (const e of p.errors || []) pageErrors.push(`${this.name} (${p.label}): ${e}`);
    for (const ctx of this.contexts) await ctx.close().catch(() => {});
    this.contexts = [];
  }
}

async function login(page, user, password, origin = base) {
  await page.goto(origin + '/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Applications', level: 1 }).waitFor();
}

// Polls from here: waitForFunction would need eval, which the UI's CSP forbids.
async function waitText(page, selector, text, timeout = T.short) {
  const deadline = Date.now() + timeout;
  let got = '';
  for (;;) {
    got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(missing)');
    if (got && got.includes(text)) return;
    if (Date.now() > deadline) throw new Error(`waiting for "${text}" in ${selector}; it shows: ${got}`);
    await sleep(200);
  }
}

async function deploymentStatus(id) {
  return (await api('GET', `/deployments/${id}`)).status;
}

async function waitStatus(id, wanted, timeout = T.deploy) {
  const want = [].concat(wanted);
  const deadline = Date.now() + timeout;
  let s;
  while (Date.now() < deadline) {
    s = await deploymentStatus(id);
    if (want.includes(s)) return s;
    if (['failed', 'cancelled', 'interrupted', 'expired'].includes(s) && !want.includes(s)) {
      const log = await api('GET', `/deployments/${id}/log`).catch(() => ({}));
      throw new Error(`deployment #${id} ended ${s}; log: ${JSON.stringify(log).slice(0, 2000)}`);
    }
    await sleep(300);
  }
  throw new Error(`deployment #${id} is ${s}, expected ${want.join('|')} within ${timeout} ms`);
}

async function succeededOn(build, stage) {
  const r = await api('GET', `/deployments?application=shop&stage=${encodeURIComponent(stage)}&status=succeeded&limit=1000`);
  return r.items.some((d) => String(d.release) === '1.0.0' && Number(d.build) === build);
}

async function currentBuild(stage) {
  const app = await api('GET', '/applications/shop');
  const st = (app.stages || []).find((s) => s.stage === stage);
  if (!st) throw new Error(`GET /applications/shop has no stage ${stage} in "stages": ${JSON.stringify(app.stages)}`);
  const t = st.targets.find((x) => x.current);
  return t ? t.current : null;
}

async function openBoard(page) {
  await page.goto(base + '/#/apps/shop');
  await page.getByRole('heading', { name: 'shop', level: 1 }).waitFor();
  await page.locator('.board .stage').first().waitFor();
}

function depIdFromUrl(page) {
  const m = /#\/deployments\/(\d+)/.exec(page.url());
  if (!m) throw new Error(`not on a deployment page: ${page.url()}`);
  return Number(m[1]);
}

// Approves a waiting deployment from the approvals inbox of `page`'s user.
async function approveInInbox(page, id, comment) {
  await page.goto(base + '/#/approvals');
  await page.getByRole('heading', { name: 'Approvals', level: 1 }).waitFor();
  const button = page.getByRole('button', { name: `Approve deployment #${id}` });
  await button.waitFor({ timeout: T.short });
  await page.locator(`#c-${id}`).fill(comment);
  if (!existsSync(join(shotDir, 'approvals.png'))) await page.screenshot({ path: join(shotDir, 'approvals.png'), fullPage: true });
  await button.click();
  await page.getByText(`Deployment #${id}: approval recorded.`).waitFor();
}

// Opens the dialog from a board button, confirms "now", returns the deployment id.
async function deployFromBoard(page, action, build, stage, { approver, shot } = {}) {
  await openBoard(page);
  const name = `${action} 1.0.0 build ${build} to ${stage}`;
  await page.getByRole('button', { name }).first().click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.locator('.preview[aria-busy="false"]').waitFor({ timeout: T.short });
  if (shot) await page.screenshot({ path: join(shotDir, shot) });
  await dialog.getByRole('button', { name: /now$/ }).click();
  await page.waitForURL(/#\/deployments\/\d+$/);
  const id = depIdFromUrl(page);
  const status = await waitStatus(id, ['waiting', 'queued', 'running', 'succeeded'], T.short);
  if (status === 'waiting') {
    if (!approver) throw new Error(`deployment #${id} waits for approval and no approver was given`);
    await approveInInbox(approver, id, `approved by the browser test for ${stage}`);
  }
  return { id, waited: status === 'waiting' };
}

// A stage with auto_promote hands a successful build on to the next stage by
// itself: wait for that deployment (if one comes) to finish.
async function settleAutoPromotion(build, nextStage) {
  if (!nextStage) return;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const r = await api('GET', `/deployments?application=shop&stage=${encodeURIComponent(nextStage)}&limit=1000`);
    const mine = r.items.filter((d) => String(d.release) === '1.0.0' && Number(d.build) === build);
    const open = mine.find((d) => !['succeeded', 'failed', 'cancelled', 'interrupted', 'expired'].includes(d.status));
    if (open) {
      if (open.status === 'waiting') return;  // left for the next step's approver
      await waitStatus(open.id, ['succeeded', 'failed']);
      return;
    }
    if (mine.length) return;
    await sleep(250);
  }
}

const steps = [];
function step(name, fn) {
  steps.push({ name, fn });
}

// ---------------------------------------------------------------------------

step('the server serves the UI with its security headers', async () => {
  const r = await fetch(base + '/');
  if (r.status !== 200) throw new Error(`GET / answered ${r.status}`);
  const csp = r.headers.get('content-security-policy') || '';
  if (!csp.includes("script-src 'self'") || csp.includes('unsafe-inline')) throw new Error(`weak CSP: ${csp}`);
  if (r.headers.get('x-frame-options') !== 'DENY') throw new Error('X-Frame-Options missing');
});

step('log in: a wrong password is refused clearly, the right one opens the dashboard', async (scenario) => {
  const admin = await scenario.page('admin', DESKTOP, { timezoneId: 'Europe/Berlin' });
  await admin.goto(base + '/');
  await admin.getByLabel('User name').fill('admin');
  await admin.getByLabel('Password').fill('wrong-password');
  await admin.getByRole('button', { name: 'Log in' }).click();
  await waitText(admin, '#login-error', 'invalid user name or password');
  await admin.screenshot({ path: join(shotDir, 'login-error.png') });
  await login(admin, 'admin', ADMIN_PASSWORD);
  await admin.getByRole('link', { name: 'shop' }).waitFor();
  const cookies = await admin.context().cookies();
  const c = cookies.find((x) => x.name === 'reprise_session');
  if (!c || !c.httpOnly || c.sameSite !== 'Strict') throw new Error(`session cookie is not HttpOnly/Strict: ${JSON.stringify(c)}`);
  await admin.screenshot({ path: join(shotDir, 'dashboard.png') });
});

step('the pipeline board shows the stages and builds', async (scenario) => {
  const admin = await scenario.login('admin');
  await openBoard(admin);
  for (const s of ['Integration', 'Testing', 'Production']) await admin.getByRole('heading', { name: s, level: 2 }).waitFor();
  await admin.locator('table.matrix').waitFor();
  await admin.screenshot({ path: join(shotDir, 'board-initial.png'), fullPage: true });
});

step('build page: artifacts with size, sha256, file count and a browsable manifest', async (scenario) => {
  const admin = await scenario.login('admin');
  await admin.goto(base + '/#/apps/shop/releases/1.0.0/builds/2');
  await admin.getByRole('heading', { name: 'Artifacts' }).waitFor();
  await admin.getByRole('cell', { name: 'web', exact: true }).or(admin.getByRole('rowheader', { name: 'web' })).first().waitFor();
  await admin.screenshot({ path: join(shotDir, 'build.png'), fullPage: true });
  await admin.getByRole('link', { name: 'Manifest' }).click();
  await admin.getByRole('heading', { name: 'Artifact web' }).waitFor();
  await admin.getByText('api/status.json').waitFor();
  await admin.getByLabel('Filter').fill('status');
  await waitText(admin, 'main [role=status]', '1 of');
  await admin.screenshot({ path: join(shotDir, 'manifest.png'), fullPage: true });
  await admin.goto(base + '/#/apps/shop/releases/1.0.0');
  await admin.getByRole('heading', { name: 'shop 1.0.0' }).waitFor();
  await admin.getByRole('link', { name: 'build 2', exact: true }).waitFor();
});

step('second users log in (release manager, deployer, viewer)', async (scenario) => {
  for (const name of Object.keys(USERS)) await scenario.login(name);
});

step('build 1 has been through every stage (set up through the API when the demo has not)', async () => {
  for (const stage of ['Integration', 'Testing', 'Production']) {
    if (await succeededOn(1, stage)) continue;
    const d = await api('POST', '/applications/shop/releases/1.0.0/builds/1/deploy', { stage });
    let s = await waitStatus(d.id, ['waiting', 'succeeded']);
    if (s === 'waiting') {
      await api('POST', `/deployments/${d.id}/approve`, { comment: 'setup' }, await tokenFor('rita'));
      s = await waitStatus(d.id, 'succeeded');
    }
  }
});

const tokens = {};
async function tokenFor(user) {
  if (!tokens[user]) tokens[user] = (await api('POST', `/users/${user}/tokens`, { name: 'browser-test' })).token;
  return tokens[user];
}

step('promote build 2 through all stages; Production waits and is approved by a second user', async (scenario) => {
  const admin = await scenario.login('admin');
  const rita = await scenario.login('rita');
  const stages = ['Integration', 'Testing', 'Production'];
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i];
    if (await succeededOn(2, stage)) continue;  // e.g. promoted automatically
    const action = i === 0 ? 'Deploy' : 'Promote';
    const { id, waited } = await deployFromBoard(admin, action, 2, stage, {
      approver: rita, shot: stage === 'Production' ? 'dialog-promote.png' : undefined,
    });
    if (stage === 'Production' && !waited) throw new Error(`Production deployment #${id} did not wait for an approval`);
    await waitStatus(id, 'succeeded');
    const approvals = (await api('GET', `/deployments/${id}`)).approvals || [];
    if (stage === 'Production' && !approvals.some((a) => a.user === 'rita' && a.decision === 'approved'))
      throw new Error(`no approval by rita recorded: ${JSON.stringify(approvals)}`);
    await settleAutoPromotion(2, stages[i + 1]);
  }
  const cur = await currentBuild('Production');
  if (!cur || Number(cur.build) !== 2) throw new Error(`Production runs ${JSON.stringify(cur)}, expected build 2`);
  await openBoard(admin);
  await admin.screenshot({ path: join(shotDir, 'board.png'), fullPage: true });
});

step('Re-Deploy build 1 on Production now: the dialog says it is a rollback; the live log reaches succeeded', async (scenario) => {
  const admin = await scenario.login('admin');
  const rita = await scenario.login('rita');
  await openBoard(admin);
  await admin.getByRole('button', { name: 'Re-Deploy 1.0.0 build 1 to Production' }).first().click();
  const dialog = admin.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.locator('.preview[aria-busy="false"]').waitFor();
  await waitText(admin, 'dialog[open] [data-testid=kind-line]', 'Rollback: Production currently runs 1.0.0 build 2');
  // Keyboard: focus is inside the dialog.
  const inside = await admin.evaluate(() => !!document.activeElement.closest('dialog[open]'));
  if (!inside) throw new Error('focus is not inside the dialog');
  await dialog.getByLabel(/As deployed/).check();
  await dialog.locator('.preview[aria-busy="false"]').waitFor();
  // Build 2's database migration ran on Production: a red box names it and
  // Re-Deploy stays disabled until it is acknowledged.
  const box = dialog.locator('[data-testid=irreversible]');
  await box.waitFor();
  const boxText = await box.textContent();
  for (const want of ['1.0.0 build 2', 'migrate.sh', 'prod-web', 'migrates the shop database', 'before the switch'])
    if (!boxText.includes(want)) throw new Error(`the irreversible box does not say "${want}": ${boxText}`);
  const deployNow = dialog.getByRole('button', { name: 'Re-Deploy now' });
  if (!(await deployNow.isDisabled())) throw new Error('Re-Deploy is enabled before the irreversible steps are acknowledged');
  await box.scrollIntoViewIfNeeded();
  await admin.screenshot({ path: join(shotDir, 'dialog-irreversible.png') });
  await dialog.getByLabel('I understand these cannot be undone by the rollback').check();
  if (await deployNow.isDisabled()) throw new Error('Re-Deploy stays disabled after the acknowledgement');
  await admin.screenshot({ path: join(shotDir, 'dialog-redeploy.png') });
  await deployNow.click();
  await admin.waitForURL(/#\/deployments\/\d+$/);
  const id = depIdFromUrl(admin);
  if ((await deploymentStatus(id)) === 'waiting') await approveInInbox(rita, id, 'rollback approved');
  await waitText(admin, '#deployment-status', 'succeeded', T.deploy);
  await waitText(admin, '#log-state', 'finished', T.short).catch(() => {});
  const lines = await admin.locator('#deployment-log .line').count();
  if (lines < 1) throw new Error('the live log showed no lines');
  await admin.screenshot({ path: join(shotDir, 'deployment.png'), fullPage: true });
  const logText = (await api('GET', `/deployments/${id}/log`)).lines.map((l) => l.text).join('\n');
  if (!logText.includes('undo of step') || !logText.includes('from build 2: '))
    throw new Error(`the rollback's log shows no undo step from build 2:\n${logText}`);
  const cur = await currentBuild('Production');
  if (!cur || Number(cur.build) !== 1) throw new Error(`Production runs ${JSON.stringify(cur)}, expected build 1`);
  const page = join(dataDir, 'targets', 'prod-web', 'current', 'index.html');
  if (existsSync(page) && !readFileSync(page, 'utf8').includes('build 1')) throw new Error(`${page} does not hold build 1`);
});

step('Verify files on Production: the files match build 1; a file edited under current/ is named', async (scenario) => {
  const admin = await scenario.login('admin');
  const manifest = await api('GET', '/applications/shop/releases/1.0.0/builds/1/artifacts/web/manifest');
  const files = manifest.manifest.file_count;
  await openBoard(admin);
  const button = admin.getByRole('button', { name: 'Verify files on prod-web' });
  await button.click();
  await waitText(admin, '#verify-prod-web-result', `${files} files match build 1.0.0 build 1`);
  // Someone edits a file on the machine (one no later step reads).
  const css = join(dataDir, 'targets', 'prod-web', 'current', 'css', 'site.css');
  if (!existsSync(css)) throw new Error(`${css} is not there to edit`);
  appendFileSync(css, '/* edited by hand on the server */\n');
  // Again from the keyboard: Enter on the focused button.
  await button.focus();
  await admin.keyboard.press('Enter');
  await waitText(admin, '#verify-prod-web-result', '1 problem against build 1.0.0 build 1');
  const item = admin.locator('#verify-prod-web-result li', { hasText: 'css/site.css' });
  await item.waitFor();
  const text = await item.textContent();
  if (!text.includes('changed') || !text.includes('size')) throw new Error(`the problem reads: ${text}`);
  const back = await admin.evaluate(() => document.activeElement && document.activeElement.getAttribute('aria-label'));
  if (back !== 'Verify files on prod-web') throw new Error(`focus moved to ${back} during the check`);
  await admin.screenshot({ path: join(shotDir, 'board-verify.png'), fullPage: true });
  const audit = await api('GET', '/audit?action=target.validate&subject=prod-web');
  if (!audit.items.length || !audit.items[0].summary.startsWith('1 problem') || audit.items[0].actor !== 'admin')
    throw new Error(`the check is not audited: ${JSON.stringify(audit.items.slice(0, 2))}`);
});

step('Test connection on Production: ready on the local agent; a target whose agent is away is named', async (scenario) => {
  const admin = await scenario.login('admin');
  await openBoard(admin);
  const button = admin.getByRole('button', { name: 'Test connection to the targets of Production' });
  const result = '#test-connection-stage-Production-result';
  await button.click();
  await waitText(admin, result, 'Every target is ready');
  await waitText(admin, result, 'prod-web: ready');
  await waitText(admin, result, 'writable');
  // The target moves to an agent that never connected: the test names it.
  const target = await api('GET', '/targets/prod-web');
  const keep = { environment: target.environment, agent: target.agent, path: target.path };
  await api('PUT', '/targets/prod-web', { ...keep, agent: 'web-01' });
  try {
    await button.focus();
    await admin.keyboard.press('Enter');
    await waitText(admin, result, "agent 'web-01' of target 'prod-web' is not connected");
    await waitText(admin, result, 'Not every target is ready');
    const back = await admin.evaluate(() => document.activeElement && document.activeElement.getAttribute('aria-label'));
    if (back !== 'Test connection to the targets of Production') throw new Error(`focus moved to ${back} during the test`);
    await admin.locator(result).scrollIntoViewIfNeeded();
    await admin.screenshot({ path: join(shotDir, 'board-test-connection.png'), fullPage: true });
  } finally {
    await api('PUT', '/targets/prod-web', keep);
  }
  const audit = await api('GET', '/audit?action=stage.test-connection');
  if (!audit.items.length || audit.items[0].actor !== 'admin')
    throw new Error(`the test is not audited: ${JSON.stringify(audit.items.slice(0, 2))}`);
});

step('the board shows the hold after the rollback; a release manager clears it', async (scenario) => {
  const admin = await scenario.login('admin');
  const app = await api('GET', '/applications/shop');
  const prod = app.stages.find((s) => s.stage === 'Production');
  await openBoard(admin);
  if (!prod.hold) throw new Error('GET /applications/shop reports no hold on Production after the rollback');
  await admin.locator('#stage-Production .hold').waitFor();
  await admin.getByRole('button', { name: 'Clear hold' }).click();
  await admin.locator('#stage-Production .hold').waitFor({ state: 'detached' });
  const after = (await api('GET', '/applications/shop')).stages.find((x) => x.stage === 'Production');
  if (after.hold) throw new Error(`the hold is still there: ${JSON.stringify(after.hold)}`);
});

step('schedule a re-deploy 5 s ahead and see it fire', async (scenario) => {
  const admin = await scenario.login('admin');
  await openBoard(admin);
  await admin.getByRole('button', { name: 'Re-Deploy 1.0.0 build 1 to Testing' }).first().click();
  const dialog = admin.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.getByLabel('At a date and time').check();
  const when = await admin.evaluate(() => {
    const d = new Date(Date.now() + 5000);
    const p = (n) => String(n).padStart(2, '0');
    const s = d.getSeconds() ? `:${p(d.getSeconds())}` : '';  // Chromium drops ":00"
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}${s}`;
  });
  await dialog.locator('input[type=datetime-local]').fill(when);
  const utc = await dialog.locator('output.utc').textContent();
  if (!utc.includes('UTC') || !utc.includes('Europe/Berlin')) throw new Error(`no UTC/zone hint beside the time: ${utc}`);
  const wanted = new Date(await admin.evaluate((v) => new Date(v).toISOString(), when));
  // Build 2's migration ran on Testing too: acknowledge it.
  await dialog.locator('.preview[aria-busy="false"]').waitFor();
  const ack = dialog.getByLabel('I understand these cannot be undone by the rollback');
  if (await ack.count()) await ack.check();
  await dialog.getByRole('button', { name: 'Schedule Re-Deploy' }).click();
  await admin.waitForURL(/#\/deployments\/\d+$/);
  const id = depIdFromUrl(admin);
  const before = await api('GET', `/deployments/${id}`);
  // Fired immediately it would already be queued or running: it must wait for its time.
  if (before.status !== 'scheduled' && new Date() < wanted) throw new Error(`deployment #${id} is ${before.status} before its time`);
  if (!before.scheduled_at || Math.abs(new Date(before.scheduled_at) - wanted) > 1000)
    throw new Error(`scheduled_at is ${before.scheduled_at}, the dialog asked for ${wanted.toISOString()}`);
  await waitText(admin, '#deployment-status', 'succeeded', 60000);
  const after = await api('GET', `/deployments/${id}`);
  if (new Date(after.started_at) < new Date(after.scheduled_at))
    throw new Error(`deployment #${id} started at ${after.started_at}, before its time ${after.scheduled_at}`);
  const fired = await api('GET', `/deployments?application=shop&stage=Testing&limit=1000`);
  const same = fired.items.filter((d) => d.id === id);
  if (same.length !== 1) throw new Error(`deployment #${id} is listed ${same.length} times`);
});

step('scheduled list: move and cancel a scheduled deployment', async (scenario) => {
  const admin = await scenario.login('admin');
  const at = new Date(Date.now() + 3600 * 1000).toISOString();
  const d = await api('POST', '/applications/shop/releases/1.0.0/builds/2/deploy', { stage: 'Testing', at });
  await admin.goto(base + '/#/scheduled');
  await admin.getByRole('link', { name: `#${d.id}` }).waitFor();
  await admin.screenshot({ path: join(shotDir, 'scheduled.png') });
  const later = new Date(Date.now() + 7200 * 1000);
  // The input is in the browser's zone (Europe/Berlin here).
  const local = await admin.evaluate((iso) => {
    const x = new Date(iso);
    const q = (n) => String(n).padStart(2, '0');
    const s = x.getSeconds() ? `:${q(x.getSeconds())}` : '';
    return `${x.getFullYear()}-${q(x.getMonth() + 1)}-${q(x.getDate())}T${q(x.getHours())}:${q(x.getMinutes())}${s}`;
  }, later.toISOString());
  await admin.locator(`#move-${d.id}`).fill(local);
  await admin.locator('tr', { has: admin.getByRole('link', { name: `#${d.id}` }) }).getByRole('button', { name: 'Move' }).click();
  const deadline = Date.now() + T.short;
  for (;;) {
    const now = await api('GET', `/deployments/${d.id}`);
    if (Math.abs(new Date(now.scheduled_at) - later) < 2000) break;
    if (Date.now() > deadline) throw new Error(`not moved: scheduled_at=${now.scheduled_at}, wanted ${later.toISOString()}`);
    await sleep(300);
  }
  await admin.locator('tr', { has: admin.getByRole('link', { name: `#${d.id}` }) }).getByRole('button', { name: 'Cancel' }).click();
  await admin.getByLabel('Reason').fill('not needed any more');
  await admin.locator('dialog[open]').getByRole('button', { name: 'Cancel deployment' }).click();
  await waitStatus(d.id, 'cancelled', T.short);
});

step('keyboard: the dialog opens from a focused button, keeps focus inside, Escape closes it and focus returns', async (scenario) => {
  const admin = await scenario.login('admin');
  await openBoard(admin);
  const button = admin.getByRole('button', { name: 'Re-Deploy 1.0.0 build 2 to Production' }).first();
  await button.focus();
  await admin.keyboard.press('Enter');
  await admin.locator('dialog[open]').waitFor();
  for (let i = 0; i < 12; i++) {
    await admin.keyboard.press('Tab');
    const inside = await admin.evaluate(() => !!document.activeElement.closest('dialog[open]'));
    if (!inside) throw new Error(`Tab ${i + 1} left the open dialog`);
  }
  await admin.keyboard.press('Escape');
  await admin.locator('dialog').waitFor({ state: 'detached' });
  const back = await admin.evaluate(() => document.activeElement.getAttribute('aria-label'));
  if (back !== 'Re-Deploy 1.0.0 build 2 to Production') throw new Error(`focus went to ${back}, not back to the button`);
});

step('agents page: the local agent is listed online and approved', async (scenario) => {
  const admin = await scenario.login('admin');
  await admin.goto(base + '/#/agents');
  await admin.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  const row = admin.locator('tr', { has: admin.getByRole('rowheader', { name: /local/ }) });
  await row.waitFor();
  const text = await row.textContent();
  if (!text.includes('online') || !text.includes('approved')) throw new Error(`agent row: ${text}`);
});

step('a plan paused at a manual step is continued from the approvals inbox by a deployer', async (scenario) => {
  // A target of its own: int-web belongs to shop.
  await api('PUT', '/targets/checks-web', { environment: 'Integration', agent: 'local', path: join(dataDir, 'targets', 'checks-web') });
  await api('PUT', '/applications/checks', {
    description: 'a plan with a manual step',
    pipeline: [{ stage: 'Checks', environment: 'Integration', targets: ['checks-web'], plan: 'checked' }],
    plans: { checked: '- manual: { message: "Check the smoke tests", role: deployer }\n- log: "checked"\n' },
  });
  await api('POST', '/applications/checks/releases', { number: '1.0' });
  await api('POST', '/applications/checks/releases/1.0/builds', {});
  const d = await api('POST', '/applications/checks/releases/1.0/builds/1/deploy', { stage: 'Checks' });
  const deadline = Date.now() + T.short;
  while (!(await api('GET', `/deployments/${d.id}`)).manual) {
    if (Date.now() > deadline) throw new Error(`deployment #${d.id} never paused at the manual step`);
    await sleep(200);
  }
  const dave = await scenario.page('dave');
  await login(dave, 'dave', USERS.dave.password);
  await dave.goto(base + '/#/approvals');
  await dave.getByText('Manual step: Check the smoke tests').waitFor();
  await dave.getByRole('button', { name: `Continue deployment #${d.id}` }).click();
  await waitStatus(d.id, 'succeeded', T.short);
  await dave.goto(base + `/#/deployments/${d.id}`);
  await waitText(dave, '#deployment-log', 'checked');
  await dave.goto(base + '/#/deployments');
  await dave.getByLabel('Status').selectOption('succeeded');
  await dave.getByRole('button', { name: 'Filter' }).click();
  await dave.getByRole('link', { name: `#${d.id}`, exact: true }).waitFor();
});

step('live log: lines arrive over server-sent events, a dropped stream reconnects without repeating lines; progress bars; secrets masked', async (scenario) => {
  const SECRET = 'sup3r-s3cret-api-key-value';
  await api('PUT', '/targets/live-web', { environment: 'Integration', agent: 'local', path: join(dataDir, 'targets', 'live-web') });
  await api('PUT', '/applications/live', {
    description: 'a plan that pauses after deploying',
    variables: { ApiKey: { value: SECRET, sensitive: true } },
    pipeline: [{ stage: 'Live', environment: 'Integration', targets: ['live-web'], plan: 'paused' }],
    plans: { paused: '- log: "before the pause, key $ApiKey"\n- deploy-artifact: { artifact: web }\n'
      + '- manual: { message: "Hold the line", role: deployer }\n- log: "after the pause"\n'
      + '- manual: { message: "Second hold", role: deployer }\n- log: "the end"\n' },
  });
  await api('POST', '/applications/live/releases', { number: '1.0' });
  await api('POST', '/applications/live/releases/1.0/builds', {});
  // The demo's build 2 artifact, uploaded again under this build: the same bytes share one blob.
  const bytes = Buffer.from(await (await fetch(base + '/api/v1/applications/shop/releases/1.0.0/builds/2/artifacts/web',
    { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).arrayBuffer());
  const put = await fetch(base + '/api/v1/applications/live/releases/1.0/builds/1/artifacts/web',
    { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: bytes });
  if (!put.ok) throw new Error(`artifact upload answered ${put.status}: ${await put.text()}`);
  const manifest = await api('GET', '/applications/live/releases/1.0/builds/1/artifacts/web/manifest');
  const files = manifest.manifest.file_count;
  if (!(files > 0)) throw new Error(`the manifest counts no files: ${JSON.stringify(manifest).slice(0, 500)}`);

  const d = await api('POST', '/applications/live/releases/1.0/builds/1/deploy', { stage: 'Live' });
  // This page reaches the server through a TCP relay, so the test can cut its connections.
  const relay = await startRelay();
  const page = await scenario.page('live');
  const streams = [];
  page.on('request', (r) => { if (r.resourceType() === 'eventsource' && r.url().includes(`/deployments/${d.id}/log`)) streams.push(r); });
  try {
    await login(page, 'dave', USERS.dave.password, relay.base);
    await page.goto(relay.base + `/#/deployments/${d.id}`);
    await waitText(page, '#deployment-log', 'before the pause');
    await waitText(page, '#deployment-status', 'running');
    await page.locator('#deployment-log', { hasText: 'Hold the line' }).waitFor();
    await waitText(page, '#log-state', 'live');
    if (streams.length < 1) throw new Error('the deployment page did not open an event stream for the log');
    if ((await page.locator('#deployment-log').textContent()).includes('after the pause')) throw new Error('the log ran ahead of the manual step');

    // Per-target progress while the plan waits: every file of the artifact extracted.
    const bar = page.getByLabel('live-web files extracted');
    await bar.waitFor();
    const [value, max] = [Number(await bar.getAttribute('value')), Number(await bar.getAttribute('max'))];
    if (!(max === files && value === max)) {
      const t = (await api('GET', `/deployments/${d.id}`)).targets;
      throw new Error(`progress shows ${value} of ${max} files, the artifact has ${files}; targets: ${JSON.stringify(t)}`);
    }
    await page.screenshot({ path: join(shotDir, 'deployment-progress.png'), fullPage: true });

    // Sensitive values never reach the page.
    const html = await page.content();
    if (html.includes(SECRET)) throw new Error('the secret appears in the deployment page');
    await waitText(page, '#deployment-log', 'key ******');

    // Cut the open stream's connection; while it is down the plan goes on.
    // The browser reconnects with Last-Event-ID and shows only what is new.
    relay.cut();
    await api('POST', `/deployments/${d.id}/continue`, {});
    const deadline = Date.now() + T.short;
    while (streams.length < 2) {
      if (Date.now() > deadline) throw new Error(`the log stream did not reconnect (${streams.length} stream requests)`);
      await sleep(200);
    }
    // It resumes after the last line it has: Last-Event-ID once a line came over the stream, else ?after=.
    const headers = await streams[1].allHeaders();
    const after = Number(new URL(streams[1].url()).searchParams.get('after'));
    if (!(Number(headers['last-event-id']) > 0 || after > 0))
      throw new Error(`the reconnect does not say where to resume: ${streams[1].url()} ${JSON.stringify(headers)}`);
    // The plan is paused again: what was logged while the stream was down arrives over the new stream.
    await waitText(page, '#deployment-log', 'Second hold', T.deploy);
    await waitText(page, '#log-state', 'live');
    await api('POST', `/deployments/${d.id}/continue`, {});
    await waitText(page, '#deployment-log', 'the end', T.deploy);
    await waitText(page, '#deployment-status', 'succeeded', T.deploy);
    const texts = await page.locator('#deployment-log .line').allTextContents();
    for (const needle of ['before the pause', 'after the pause', 'the end', 'a deployer to continue: Hold the line',
      'a deployer to continue: Second hold']) {
      const n = texts.filter((t) => t.includes(needle)).length;
      if (n !== 1) throw new Error(`"${needle}" shows ${n} times in the log after the reconnect:\n${texts.join("\n")}`);
    }
    // The context shows the sensitive variable masked.
    const ctx = await api('GET', `/deployments/${d.id}`);
    if (JSON.stringify(ctx).includes(SECRET)) throw new Error('the deployment JSON carries the secret');
  } finally {
    relay.close();
  }
});

step('approvals inbox: a release manager rejects a waiting deployment with a comment', async (scenario) => {
  const rita = await scenario.login('rita');
  const d = await api('POST', '/applications/shop/releases/1.0.0/builds/2/deploy', { stage: 'Production', comment: 'to be rejected' });
  await waitStatus(d.id, 'waiting', T.short);
  await rita.goto(base + '/#/approvals');
  const button = rita.getByRole('button', { name: `Reject deployment #${d.id}` });
  await button.waitFor();
  await rita.locator(`#c-${d.id}`).fill('not during the sale');
  await button.click();
  await rita.getByText(`Deployment #${d.id}: rejection recorded.`).waitFor();
  await waitStatus(d.id, 'cancelled', T.short);
  const after = await api('GET', `/deployments/${d.id}`);
  if (!(after.approvals || []).some((a) => a.user === 'rita' && a.decision === 'rejected' && a.comment === 'not during the sale'))
    throw new Error(`the rejection and its comment are not recorded: ${JSON.stringify(after.approvals)}`);
});

step('agents page: a new agent enrolls as pending and an admin approves it', async (scenario) => {
  const admin = await scenario.login('admin');
  const fp = /certificate sha256 ([0-9a-fA-F:]+)/.exec(serverLog);
  if (!fp) throw new Error(`the server did not print its certificate fingerprint:\n${serverLog}`);
  const { token } = await api('POST', '/agents/enrollment-tokens', {});
  const agentBin = join(dirname(serverBin), 'reprise-agent');
  const root = join(temp, 'ext-agent');
  mkdirSync(root, { recursive: true });
  const agent = spawn(agentBin, ['--server', `127.0.0.1:${agentPort}`, '--name', 'ext-01', '--root', root,
    '--fingerprint', fp[1], '--heartbeat-ms', '500', '--quiet'], {
    env: { ...process.env, REPRISE_ENROLL_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(agent);
  let agentLog = '';
  agent.stdout.on('data', (x) => { agentLog += x; });
  agent.stderr.on('data', (x) => { agentLog += x; });
  await admin.goto(base + '/#/agents');
  const approve = admin.getByRole('button', { name: 'Approve agent ext-01' });
  await approve.waitFor({ timeout: T.short }).catch((e) => { throw new Error(`${e.message}\nagent output: ${agentLog}`); });
  await admin.screenshot({ path: join(shotDir, 'agents-pending.png'), fullPage: true });
  await approve.click();
  await admin.getByText('Agent ext-01 approved.').waitFor();
  const row = admin.locator('tr', { has: admin.getByRole('rowheader', { name: /ext-01/ }) });
  const deadline = Date.now() + T.short;
  for (;;) {
    const text = await row.textContent();
    if (text.includes('approved') && text.includes('online')) break;
    if (Date.now() > deadline) throw new Error(`agent row after approval: ${text}`);
    await sleep(300);
  }
  const listed = (await api('GET', '/agents?limit=1000')).items.find((a) => a.name === 'ext-01');
  if (!listed || listed.status !== 'online') throw new Error(`GET /agents lists ext-01 as ${JSON.stringify(listed)}`);
});

step('a viewer trying to deploy sees a clear refusal', async (scenario) => {
  const vic = await scenario.page('vic');
  await login(vic, 'vic', USERS.vic.password);
  await openBoard(vic);
  if (await vic.getByRole('button', { name: 'Verify files on prod-web' }).count())
    throw new Error('a viewer is offered "Verify files", which needs deployer');
  if (await vic.getByRole('button', { name: 'Test connection to the targets of Production' }).count())
    throw new Error('a viewer is offered "Test connection", which needs deployer');
  await vic.getByRole('button', { name: 'Re-Deploy 1.0.0 build 2 to Testing' }).first().click();
  const dialog = vic.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: /now$/ }).click();
  await waitText(vic, 'dialog[open] .dialog-error', 'permission_denied');
  const text = await dialog.locator('.dialog-error').textContent();
  if (!/deployer/.test(text)) throw new Error(`the refusal does not say which role is needed: ${text}`);
  await vic.screenshot({ path: join(shotDir, 'viewer-refused.png') });
});

step('phone width: the board and a deployment page fit without horizontal scrolling', async (scenario) => {
  const phone = await scenario.page('phone', PHONE, { isMobile: true, hasTouch: true });
  await login(phone, 'dave', USERS.dave.password);
  await openBoard(phone);
  // A deployer verifies Production's files there too; the problem list fits as well.
  await phone.getByRole('button', { name: 'Verify files on prod-web' }).click();
  await phone.locator('#verify-prod-web-result li', { hasText: 'css/site.css' }).waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await phone.screenshot({ path: join(shotDir, 'board-phone.png'), fullPage: true });
  if (overflow > 2) throw new Error(`the board is ${overflow}px wider than the phone screen`);
  const last = (await api('GET', '/deployments?application=shop&status=succeeded&limit=1')).items[0];
  await phone.goto(base + `/#/deployments/${last.id}`);
  await phone.locator('#deployment-log .line').first().waitFor();
  const overflow2 = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await phone.screenshot({ path: join(shotDir, 'deployment-phone.png'), fullPage: true });
  if (overflow2 > 2) throw new Error(`the deployment page is ${overflow2}px wider than the phone screen`);
});

registerRollbackRecordScenarios(step, {
  base: () => base, adminToken: ADMIN_TOKEN, adminPassword: ADMIN_PASSWORD, USERS, PHONE, T, tempDir: temp, dataDir, shotDir,
  api, login, waitText, waitStatus, sleep, tokenFor,
});
registerReleaseScenarios(step, {
  base: () => base, adminToken: ADMIN_TOKEN, adminPassword: ADMIN_PASSWORD, T, PHONE, tempDir: temp, dataDir, shotDir,
  api, login, waitText, waitStatus, sleep,
});

step('logout ends the session', async (scenario) => {
  const admin = await scenario.login('admin');
  await admin.goto(base + '/#/');
  await admin.getByRole('button', { name: 'Log out' }).click();
  await admin.getByRole('button', { name: 'Log in' }).waitFor();
  const r = await admin.evaluate(async () => (await fetch('/api/v1/me')).status);
  if (r !== 401) throw new Error(`after logout /api/v1/me answered ${r}`);
});

step('no script errors in any page', async () => {
  if (pageErrors.length) throw new Error(`page errors:\n${pageErrors.join('\n')}`);
});

// ---------------------------------------------------------------------------

async function createUsers() {
  for (const [name, u] of Object.entries(USERS)) await api('POST', '/users', { name, role: u.role, password: u.password });
}

function indent(text) {
  return String(text).split('\n').join('\n      ');
}

// Runs one scenario on contexts of its own; returns null or its failure
// ({ name, error, screenshots }). A scenario that hangs fails after
// SCENARIO_TIMEOUT_MS; closing its contexts ends what it was waiting for.
async function runScenario(s, index) {
  const scenario = new Scenario(s.name);
  const t0 = Date.now();
  let timer;
  try {
    const run = s.fn(scenario);
    run.catch(() => {});  // after a timeout nobody awaits it
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${SCENARIO_TIMEOUT_MS / 1000} s`)), SCENARIO_TIMEOUT_MS);
    });
    await Promise.race([run, timeout]);
    log(`ok    ${s.name} (${Date.now() - t0} ms)`);
    return null;
  } catch (e) {
    const error = String(e && e.stack || e).replace(/\x1b\[[0-9;]*m/g, '');  // Playwright colours its messages
    const screenshots = await scenario.screenshots(index);
    log(`FAIL  ${s.name} (${Date.now() - t0} ms)\n      ${indent(error)}`);
    for (const path of screenshots) log(`      screenshot: ${path}`);
    for (const p of scenario.pages()) if (p.errors) log(`      page errors (${p.label}): ${p.errors.join(' | ')}`);
    return { name: s.name, error, screenshots };
  } finally {
    clearTimeout(timer);
    await scenario.close();
  }
}

const failures = [];
let setupFailed = false;
try {
  rmSync(shotDir, { recursive: true, force: true });
  mkdirSync(shotDir, { recursive: true });
  await startServer();
  log(`reprise-server on ${base}, data in ${dataDir}`);
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
  await createUsers();
  for (const [i, s] of steps.entries()) {
    const failure = await runScenario(s, i);
    if (failure) failures.push(failure);
  }
} catch (e) {
  setupFailed = true;
  log(`FAIL  setup: ${e && e.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  if (server) {
    server.kill('SIGTERM');
    await Promise.race([new Promise((r) => server.once('exit', r)), sleep(5000)]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  if (setupFailed || failures.length) log(`--- server output ---\n${serverLog.slice(-6000)}`);
  rmSync(temp, { recursive: true, force: true });
}
if (failures.length) {
  log(`\n${failures.length} of ${steps.length} scenarios FAILED:`);
  for (const f of failures) {
    log(`  - ${f.name}\n      ${indent(f.error.split('\n')[0])}`);
    for (const path of f.screenshots) log(`      screenshot: ${path}`);
  }
}
const failed = setupFailed || failures.length > 0;
log(failed ? 'browser tests FAILED' : `browser tests passed; screenshots in ${shotDir}`);
process.exit(failed ? 1 : 0);
