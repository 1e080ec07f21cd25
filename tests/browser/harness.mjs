// The browser test harness: a real reprise-server (--demo --local-agent) on
// free loopback ports, headless Chromium (playwright-core), the helpers
// scenarios share, and the runner of one suite. A suite is a module that
// registers its scenarios with `register(step, env)`; each suite runs in a
// process of its own with its own server and data, so suites run in parallel.
// Each scenario runs on browser contexts of its own (its users log in again;
// a user's page from an earlier scenario that passed may be taken over, with
// its app loaded afresh), guarded: a failure or a hang is reported with its error and
// screenshots and the run goes on with the next scenario. Scenarios of one
// suite share the server's data in order (later ones may build on the
// deployments of earlier ones).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

export const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';
export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const USERS = {  // created before the scenarios run
  rita: { role: 'release-manager', password: 'rita-password-1' },
  dave: { role: 'deployer', password: 'dave-password-1' },
  vic: { role: 'viewer', password: 'vic-password-1' },
};
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const T = { short: 15000, deploy: 90000 };
// How often waitUntil, waitStatus and the server start look again: the loopback
// API answers in a millisecond or two, so waiting less often only adds latency.
const POLL_MS = 50;
// A scenario still running after this fails and the run goes on.
const SCENARIO_TIMEOUT_MS = 150000;


export const temp = mkdtempSync(join(tmpdir(), 'reprise-browser-'));
export const dataDir = join(temp, 'data');
// Where this suite's screenshots go (set by runSuite).
export let shotDir = '';
let server = null;
export let serverLog = '';
export let base = '';
export let agentPort = 0;
// The reprise-server binary under test (its directory holds reprise-agent).
export let serverBinary = '';
let browser = null;
// Processes a scenario started (agents): stopped when the suite ends.
export const children = [];
// Script errors of every page, with the scenario that saw them.
const pageErrors = [];
// user -> the storage state (cookies) of that user's last form login.
const sessions = new Map();
// user -> logged-in pages that scenarios which passed left (see login()).
const idleLogins = new Map();

function log(...a) {
  console.log(...a);
}

// A TCP relay in front of the server: cut() drops every connection through it
// (as a network failure would), new connections still get through.
export async function startRelay() {
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
  // Port 0: the kernel picks a free port while we hold it (no window in
  // which another test could take it).
  await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const { port } = relay.address();
  return {
    base: `http://127.0.0.1:${port}`,
    cut: () => { for (const s of open) s.destroy(); },
    close: () => { for (const s of open) s.destroy(); relay.close(); },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function api(method, path, body, token = ADMIN_TOKEN) {
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

// The server binds port 0 for HTTP and agents and says which ports it got in
// its banner: asking the kernel for a free port and handing it over later
// races with the other tests running at the same time.
async function startServer() {
  server = spawn(serverBinary, ['--data', dataDir, '--http', '127.0.0.1:0', '--agent-port', '0',
    '--local-agent', '--demo'], {
    env: { ...process.env, REPRISE_ADMIN_TOKEN: ADMIN_TOKEN, REPRISE_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  const exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const code = await Promise.race([exited, sleep(POLL_MS).then(() => undefined)]);
    if (code !== undefined) throw new Error(`reprise-server exited with ${code}:\n${serverLog}`);
    const http = serverLog.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const agents = serverLog.match(/agents connect to port (\d+)/);
    if (!http || !agents) continue;
    base = `http://127.0.0.1:${http[1]}`;
    agentPort = Number(agents[1]);
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
    this.logins = new Set();  // pages of login(): offered to later scenarios
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

  // A page logged in as `user`, at desktop width, showing a freshly loaded
  // app. The admin's browser is in Europe/Berlin, which the scheduling
  // scenarios rely on. The first login of a user in a suite goes through the
  // form. Later ones take the page an earlier scenario that passed left for
  // that user (its context: cookies, cache), with its web storage reset to
  // what it was at the login, and load the app afresh; or start a fresh
  // context from that session's cookies. A form login costs a password hash
  // on the server, a new context and a cold page load. The form is used again
  // when that session has ended (e.g. after a logout).
  async login(user) {
    const extra = user === 'admin' ? { timezoneId: 'Europe/Berlin' } : {};
    const password = user === 'admin' ? ADMIN_PASSWORD : USERS[user].password;
    let page = (idleLogins.get(user) || []).pop();
    if (page) {
      this.contexts.push(page.context());
      page.setDefaultTimeout(T.short);
      const stored = (sessions.get(user).origins.find((o) => o.origin === base) || {}).localStorage || [];
      await page.evaluate((items) => {
        localStorage.clear();
        sessionStorage.clear();
        for (const { name, value } of items) localStorage.setItem(name, value);
      }, stored);
    } else if (sessions.has(user)) {
      page = await this.page(user, DESKTOP, { ...extra, storageState: sessions.get(user) });
    }
    if (page) {
      page.loginUser = user;
      this.logins.add(page);
      await page.goto(base + '/');
      const heading = page.getByRole('heading', { name: 'Applications', level: 1 });
      const form = page.getByRole('button', { name: 'Log in' });
      await heading.or(form).first().waitFor();
      if (await heading.isVisible()) return page;
      await login(page, user, password);
      sessions.set(user, await page.context().storageState());
      return page;
    }
    page = await this.page(user, DESKTOP, extra);
    page.loginUser = user;
    this.logins.add(page);
    await login(page, user, password);
    sessions.set(user, await page.context().storageState());
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

  // `passed`: the login pages still on this server's app at desktop width
  // (their context's other pages closed) are kept for the next login of
  // their user; after a failure everything is closed.
  async close(passed) {
    for (const p of this.pages()) {
      for (const e of p.errors || []) pageErrors.push(`${this.name} (${p.label}): ${e}`);
      p.errors = [];
    }
    const kept = new Set();
    for (const page of passed ? this.logins : []) {
      const size = page.viewportSize();
      if (page.isClosed() || !page.url().startsWith(base + '/') || kept.has(page.context()) ||
          !size || size.width !== DESKTOP.width || size.height !== DESKTOP.height) continue;
      for (const other of page.context().pages()) if (other !== page) await other.close().catch(() => {});
      kept.add(page.context());
      if (!idleLogins.has(page.loginUser)) idleLogins.set(page.loginUser, []);
      idleLogins.get(page.loginUser).push(page);
    }
    for (const ctx of this.contexts) if (!kept.has(ctx)) await ctx.close().catch(() => {});
    this.contexts = [];
    this.logins.clear();
  }
}

export async function login(page, user, password, origin = base) {
  await page.goto(origin + '/');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Applications', level: 1 }).waitFor();
}

// Polls `check` (async) until it returns something truthy, and returns that;
// after `timeout` ms fails with `describe` (a text, or a function giving one,
// called then). The browser tests' counterpart of tests/support/wait.h.
export async function waitUntil(check, describe, timeout = T.short) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(typeof describe === 'function' ? await describe() : describe);
    await sleep(POLL_MS);
  }
}

// Polls from here: waitForFunction would need eval, which the UI's CSP forbids.
export async function waitText(page, selector, text, timeout = T.short) {
  let got = '';
  await waitUntil(async () => {
    got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(missing)');
    return got && got.includes(text);
  }, () => `waiting for "${text}" in ${selector}; it shows: ${got}`, timeout);
}

export async function deploymentStatus(id) {
  return (await api('GET', `/deployments/${id}`)).status;
}

export async function waitStatus(id, wanted, timeout = T.deploy) {
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
    await sleep(POLL_MS);
  }
  throw new Error(`deployment #${id} is ${s}, expected ${want.join('|')} within ${timeout} ms`);
}

const tokens = {};
// An API token of `user` (one of USERS), created once per suite.
export async function tokenFor(user) {
  if (!tokens[user]) tokens[user] = (await api('POST', `/users/${user}/tokens`, { name: 'browser-test' })).token;
  return tokens[user];
}

// What a suite's register(step, env) receives besides `step`.
function suiteEnv() {
  return {
    base: () => base, adminToken: ADMIN_TOKEN, adminPassword: ADMIN_PASSWORD, USERS, DESKTOP, PHONE, T,
    tempDir: temp, dataDir, shotDir, serverLog: () => serverLog, agentPort: () => agentPort, children,
    api, login, waitText, waitStatus, waitUntil, sleep, tokenFor, startRelay,
    agentBin: join(dirname(serverBinary), 'reprise-agent'),
  };
}

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
  let passed = false;
  try {
    const run = s.fn(scenario);
    run.catch(() => {});  // after a timeout nobody awaits it
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${SCENARIO_TIMEOUT_MS / 1000} s`)), SCENARIO_TIMEOUT_MS);
    });
    await Promise.race([run, timeout]);
    log(`ok    ${s.name} (${Date.now() - t0} ms)`);
    passed = true;
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
    await scenario.close(passed);
  }
}

// Runs one suite: `register(step, env)` adds its scenarios; a last scenario
// checks that no page had a script error. Exits the process with the result.
export async function runSuite(name, register, { serverBin, shotRoot, chromiumPath }) {
  const steps = [];
  const step = (title, fn) => steps.push({ name: title, fn });
  shotDir = join(shotRoot, name);
  serverBinary = serverBin;
  const failures = [];
  let setupFailed = false;
  try {
    rmSync(shotDir, { recursive: true, force: true });
    mkdirSync(shotDir, { recursive: true });
    await startServer();
    log(`suite ${name}: reprise-server on ${base}, data in ${dataDir}`);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS });
    await createUsers();
    register(step, suiteEnv());
    step('no script errors in any page', async () => {
      if (pageErrors.length) throw new Error(`page errors:\n${pageErrors.join('\n')}`);
    });
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
  log(failed ? `browser suite ${name} FAILED` : `browser suite ${name} passed; screenshots in ${shotDir}`);
  process.exit(failed ? 1 : 0);
}
