// The core suite: the demo application "shop" taken through the product's
// main loop in the browser: log in, the board, a build's artifacts, promotion
// through every stage with an approval, Re-Deploy of build 1 as a rollback,
// Verify files, Test connection, the hold, the phone width, logout. Scenarios
// run in order and build on each other's deployments. The helpers for the
// shop's board are exported for the scheduling suite.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADMIN_PASSWORD, DESKTOP, PHONE, T, USERS, api, base, dataDir, deploymentStatus, login, shotDir, sleep, tokenFor,
  waitStatus, waitText,
} from './harness.mjs';

export async function succeededOn(build, stage) {
  const r = await api('GET', `/deployments?application=shop&stage=${encodeURIComponent(stage)}&status=succeeded&limit=1000`);
  return r.items.some((d) => String(d.release) === '1.0.0' && Number(d.build) === build);
}

export async function currentBuild(stage) {
  const app = await api('GET', '/applications/shop');
  const st = (app.stages || []).find((s) => s.stage === stage);
  if (!st) throw new Error(`GET /applications/shop has no stage ${stage} in "stages": ${JSON.stringify(app.stages)}`);
  const t = st.targets.find((x) => x.current);
  return t ? t.current : null;
}

export async function openBoard(page) {
  await page.goto(base + '/#/apps/shop');
  await page.getByRole('heading', { name: 'shop', level: 1 }).waitFor();
  await page.locator('.board .stage').first().waitFor();
}

// Opens the shop's board and the deploy dialog of its button `name`.
export async function openBoardDialog(page, name) {
  await openBoard(page);
  await page.getByRole('button', { name }).first().click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  return dialog;
}

// Waits for deployment `id` to succeed, approving it as rita when a gate holds it.
export async function approvedAndDone(id) {
  if ((await waitStatus(id, ['waiting', 'succeeded'])) === 'waiting') {
    await api('POST', `/deployments/${id}/approve`, { comment: 'setup' }, await tokenFor('rita'));
    await waitStatus(id, 'succeeded');
  }
}

export function depIdFromUrl(page) {
  const m = /#\/deployments\/(\d+)/.exec(page.url());
  if (!m) throw new Error(`not on a deployment page: ${page.url()}`);
  return Number(m[1]);
}

// Approves a waiting deployment from the approvals inbox of `page`'s user.
export async function approveInInbox(page, id, comment) {
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
export async function deployFromBoard(page, action, build, stage, { approver, shot } = {}) {
  await openBoard(page);
  const name = `${action} 1.0.0 build ${build} to ${stage}`;
  await page.getByRole('button', { name }).first().click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  await dialog.locator('.preview[aria-busy="false"]').waitFor({ timeout: T.short });
  if (shot) await page.screenshot({ path: join(shotDir, shot) });
  await dialog.getByRole('button', { name: /now$|^Request / }).click();
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
// itself (unless that stage is on hold): wait for that deployment to come and
// finish. Without auto_promote none comes, so there is nothing to wait for.
export async function settleAutoPromotion(build, nextStage) {
  if (!nextStage) return;
  const stages = (await api('GET', '/applications/shop')).stages || [];
  const next = stages.findIndex((s) => s.stage === nextStage);
  if (next < 1 || !stages[next - 1].auto_promote || stages[next].hold) return;
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
    await sleep(50);
  }
}

export function register(step) {
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
      await approvedAndDone(d.id);
    }
  });

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
    const dialog = await openBoardDialog(admin, 'Re-Deploy 1.0.0 build 1 to Production');
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
    const deployNow = dialog.getByRole('button', { name: /^(Re-Deploy now|Request re-deploy)$/ });
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
    await admin.getByLabel('Reason (kept in the audit log)').fill('rollback verified');
    await admin.getByRole('button', { name: 'Clear the hold on Production' }).click();
    await admin.locator('#stage-Production .hold').waitFor({ state: 'detached' });
    const after = (await api('GET', '/applications/shop')).stages.find((x) => x.stage === 'Production');
    if (after.hold) throw new Error(`the hold is still there: ${JSON.stringify(after.hold)}`);
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

  step('logout ends the session', async (scenario) => {
    const admin = await scenario.login('admin');
    await admin.goto(base + '/#/');
    await admin.getByRole('button', { name: 'Log out' }).click();
    await admin.getByRole('button', { name: 'Log in' }).waitFor();
    const r = await admin.evaluate(async () => (await fetch('/api/v1/me')).status);
    if (r !== 401) throw new Error(`after logout /api/v1/me answered ${r}`);
  });

}
