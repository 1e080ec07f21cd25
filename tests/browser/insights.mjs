// Browser scenarios of the dashboard across applications and the insights
// page (charts), on an application of their own ("ins", two stages on
// environments of its own; its plan needs no agent and fails on request).
// `register(step, env)` receives the runner's helpers through `env`.
import { join } from 'node:path';

const APP = 'ins';
const PLAN = '- log: "deploying $BuildNumber"\n- if: { condition: "$Fail == true", then: [ { fail: "asked to fail" } ] }\n';

function spec(prodTargets, guarded = false) {
  const live = { stage: 'Live', environment: 'InsLive', targets: prodTargets, plan: 'p' };
  if (guarded) Object.assign(live, { protected: true, gates: { approvals: { count: 1, role: 'release-manager' } } });
  return {
    description: 'dashboard and insights',
    variables: { Fail: 'false' },
    pipeline: [
      { stage: 'Check', environment: 'InsCheck', targets: ['ins-check'], plan: 'p' },
      live,
    ],
    plans: { p: PLAN },
  };
}

async function deploy(env, build, stage, fail = false, release = '1.0') {
  const body = { stage };
  if (fail) body.variables = { Fail: 'true' };
  const d = await env.api('POST', `/applications/${APP}/releases/${release}/builds/${build}/deploy`, body);
  await env.waitStatus(d.id, fail ? 'failed' : 'succeeded');
  return d.id;
}

// Build 1 on both stages; on Live build 2 fails, then succeeds, then build 1
// is re-deployed (a rollback: Live holds automatic promotion). A second Live
// target added afterwards runs nothing: the stage drifts. Then Live becomes
// protected with an approval gate, which release 2.0 (build 1 on Check) has.
async function setUp(env) {
  for (const e of ['InsCheck', 'InsLive']) await env.api('PUT', `/environments/${e}`, {});
  for (const [t, e] of [['ins-check', 'InsCheck'], ['ins-live-1', 'InsLive'], ['ins-live-2', 'InsLive']]) {
    await env.api('PUT', `/targets/${t}`, { environment: e, agent: 'local', path: join(env.dataDir, 'targets', t) });
  }
  await env.api('PUT', `/applications/${APP}`, spec(['ins-live-1']));
  await env.api('POST', `/applications/${APP}/releases`, { number: '1.0' });
  for (let n = 1; n <= 2; n++) await env.api('POST', `/applications/${APP}/releases/1.0/builds`, {});
  await deploy(env, 1, 'Check');
  await deploy(env, 1, 'Live');
  await deploy(env, 2, 'Check');
  await deploy(env, 2, 'Live', true);
  await deploy(env, 2, 'Live');
  const rollback = await deploy(env, 1, 'Live');
  await env.api('PUT', `/applications/${APP}`, spec(['ins-live-1', 'ins-live-2'], true));
  await env.api('POST', `/applications/${APP}/releases`, { number: '2.0' });
  await env.api('POST', `/applications/${APP}/releases/2.0/builds`, {});
  await deploy(env, 1, 'Check', false, '2.0');
  return rollback;
}

async function noOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 2) throw new Error(`${what} is ${overflow}px wider than the phone screen`);
}

async function dashboardScenario(env, scenario) {
  const page = await scenario.login('vic');
  const row = page.locator(`tr[data-app="${APP}"]`);
  await row.waitFor();
  const check = row.locator('td[data-env="InsCheck"]');
  const live = row.locator('td[data-env="InsLive"]');
  await env.waitText(page, `tr[data-app="${APP}"] td[data-env="InsCheck"]`, '2.0 build 1');
  const liveText = await live.textContent();
  for (const want of ['1.0 build 1', 'succeeded', 'hold', 'drift', 'protected']) {
    if (!liveText.includes(want)) throw new Error(`the Live cell does not say "${want}": ${liveText}`);
  }
  if ((await check.textContent()).includes('hold')) throw new Error('Check shows a hold it does not have');
  const drift = await live.locator('.badge.drift').getAttribute('title');
  if (!drift.includes('ins-live-2 nothing')) throw new Error(`the drift marker does not name the target: ${drift}`);
  // One request for the whole page.
  const requests = [];
  page.on('request', (r) => { if (r.url().includes('/api/v1/')) requests.push(r.url()); });
  await page.reload();
  await row.waitFor();
  // The session and the navigation's approvals badge are the page frame's, not the dashboard's.
  const apiCalls = requests.filter((u) => !u.endsWith('/api/v1/session') && !u.endsWith('/api/v1/me/approvals'));
  if (apiCalls.length !== 1 || !apiCalls[0].endsWith('/api/v1/dashboard')) {
    throw new Error(`the dashboard asked ${JSON.stringify(apiCalls)}`);
  }
  await page.screenshot({ path: join(env.shotDir, 'dashboard-matrix.png'), fullPage: true });
  const phone = await scenario.page('vic-phone', env.PHONE);
  await env.login(phone, 'vic', env.USERS.vic.password);
  await phone.locator(`tr[data-app="${APP}"]`).waitFor();
  await noOverflow(phone, 'the dashboard');
  await phone.screenshot({ path: join(env.shotDir, 'dashboard-phone.png'), fullPage: true });
}

async function insightsScenario(env, scenario) {
  const page = await scenario.login('vic');
  await page.getByRole('link', { name: 'Insights', exact: true }).click();
  await page.getByRole('heading', { name: 'Insights', level: 1 }).waitFor();
  await page.getByLabel('Application').selectOption(APP);
  await page.waitForURL(/application=ins/);
  // Live is the last stage, shown first: 4 deployments, 2 failures (build 2
  // failed once, and succeeded once before it was rolled back).
  await env.waitText(page, '[data-key="Change failure rate"]', '50 %');
  await env.waitText(page, '[data-key="Change failure rate"]', '2 of 4');
  await env.waitText(page, '[data-key="Deployment frequency"]', '3 succeeded of 4 deployments');
  await env.waitText(page, '[data-key="Time to restore"]', 'median of 1 restore');
  const restore = await page.locator('[data-key="Time to restore"] .insight-value').textContent();
  if (restore === '—') throw new Error('no time to restore is shown');
  const charts = page.locator('.insight-chart canvas');
  await charts.first().waitFor();
  if ((await charts.count()) !== 3) throw new Error(`${await charts.count()} charts drawn, expected 3`);
  // The numbers behind a chart, as a table.
  await page.getByText('Data table').first().click();
  await page.screenshot({ path: join(env.shotDir, 'insights.png'), fullPage: true });
  // The period and the stage are kept in the URL.
  await page.getByLabel('90 days').check();
  await page.waitForURL(/days=90/);
  await env.waitText(page, '.insights p.muted', 'the last 90 days, per week');
  await page.getByLabel('Stage').selectOption('Check');
  await page.waitForURL(/stage=Check/);
  await env.waitText(page, '[data-key="Change failure rate"]', '0 %');
  await page.reload();
  await env.waitText(page, '.insights p.muted', 'Check · the last 90 days');
  const phone = await scenario.page('vic-phone', env.PHONE);
  await env.login(phone, 'vic', env.USERS.vic.password);
  await phone.goto(`${env.base()}/#/insights?application=${APP}&days=30`);
  await phone.locator('.insight-chart canvas').first().waitFor();
  await noOverflow(phone, 'the insights page');
  await phone.screenshot({ path: join(env.shotDir, 'insights-phone.png'), fullPage: true });
}

// A scheduled re-deploy that is cancelled does not hide the build's earlier
// success on the board's matrix or the release page.
async function cancelledRedeployScenario(env, scenario) {
  const at = new Date(Date.now() + 3600 * 1000).toISOString();
  const d = await env.api('POST', `/applications/${APP}/releases/1.0/builds/1/deploy`, { stage: 'Check', at });
  await env.api('POST', `/deployments/${d.id}/cancel`, {});
  const page = await scenario.login('vic');
  await page.goto(`${env.base()}/#/apps/${APP}`);
  const cell = page.locator('table.matrix tr', { has: page.getByRole('link', { name: '1.0 build 1', exact: true }) }).locator('td[data-stage="Check"]');
  await cell.waitFor();
  const text = await cell.textContent();
  if (!text.includes('succeeded') || text.includes('cancelled')) throw new Error(`the board's Check cell of build 1 shows "${text}"`);
  const title = await cell.locator('a').first().getAttribute('title');
  if (!title.includes(`#${d.id} is cancelled`)) throw new Error(`the cell's title does not name the cancelled #${d.id}: ${title}`);
  await page.goto(`${env.base()}/#/apps/${APP}/releases/1.0`);
  const row = page.locator('tr', { has: page.getByRole('link', { name: 'build 1', exact: true }) });
  await row.waitFor();
  const rowText = await row.textContent();
  if (rowText.includes('cancelled') || !rowText.includes('succeeded')) throw new Error(`the release page's row of build 1 shows "${rowText}"`);
}

// The deploy dialog, the deployment page and the inbox offer only what the
// user may do, and say why not.
async function rolesScenario(env, scenario) {
  const dave = await scenario.login('dave');
  await dave.goto(`${env.base()}/#/apps/${APP}`);
  const promote = dave.getByRole('button', { name: 'Promote 2.0 build 1 to Live' });
  const hover = await promote.getAttribute('title');
  if (!hover || !hover.includes('Preview only: Live is protected')) throw new Error(`the Promote button's hover text is ${hover}`);
  await promote.click();
  let dialog = dave.locator('dialog[open]');
  await dialog.locator('.preview[aria-busy="false"]').waitFor();
  const daveConfirm = dialog.locator('button[type=submit]');
  if (!(await daveConfirm.isDisabled())) throw new Error('a deployer may confirm a promotion to a protected stage');
  const why = await daveConfirm.getAttribute('title');
  if (!why.includes('Live is protected') || !why.includes('release-manager')) throw new Error(`the disabled button says: ${why}`);
  await env.waitText(dave, 'dialog[open] .refusal', 'needs the release-manager role');
  await dave.screenshot({ path: join(env.shotDir, 'dialog-refused-deployer.png') });

  const rita = await scenario.login('rita');
  await rita.goto(`${env.base()}/#/apps/${APP}`);
  await rita.getByRole('button', { name: 'Promote 2.0 build 1 to Live' }).click();
  dialog = rita.locator('dialog[open]');
  await dialog.locator('.preview[aria-busy="false"]').waitFor();
  // The approval gate will hold it: the button says so.
  const request = dialog.getByRole('button', { name: 'Request promotion', exact: true });
  await request.waitFor();
  await rita.screenshot({ path: join(env.shotDir, 'dialog-request.png') });
  await request.click();
  await rita.waitForURL(/#\/deployments\/\d+$/);
  const id = Number(/deployments\/(\d+)$/.exec(rita.url())[1]);
  await env.waitStatus(id, 'waiting', env.T.short);
  await env.waitText(rita, '.refusal', 'You requested this deployment');
  if (await rita.getByRole('button', { name: 'Approve' }).count()) throw new Error('the requester is offered Approve on the deployment page');
  await rita.goto(`${env.base()}/#/approvals`);
  await rita.getByRole('link', { name: new RegExp(`^#${id} `) }).waitFor();
  await env.waitText(rita, `section.approval:has(a[href="#/deployments/${id}"]) .refusal`, 'another user approves it');
  if (await rita.getByRole('button', { name: `Approve deployment #${id}` }).count()) throw new Error('the requester is offered Approve in the inbox');
  // Someone else may.
  const admin = await scenario.login('admin');
  await admin.goto(`${env.base()}/#/approvals`);
  await admin.getByRole('button', { name: `Approve deployment #${id}` }).waitFor();
  await env.api('POST', `/deployments/${id}/cancel`, {});
}

// Clearing the hold on a protected stage asks for a reason, kept in the audit.
async function clearHoldScenario(env, scenario) {
  const rita = await scenario.login('rita');
  await rita.goto(`${env.base()}/#/apps/${APP}`);
  await rita.locator('#stage-Live .hold').waitFor();
  await rita.locator('#stage-Live').getByRole('button', { name: 'Clear hold' }).click();
  const dialog = rita.locator('dialog[open]');
  await dialog.getByRole('button', { name: 'Clear the hold on Live' }).click();
  await env.waitText(rita, 'dialog[open]', 'Say why the hold can be cleared');
  await dialog.getByLabel('Reason (kept in the audit log)').fill('build 1 verified on Live');
  await rita.screenshot({ path: join(env.shotDir, 'clear-hold-dialog.png') });
  await dialog.getByRole('button', { name: 'Clear the hold on Live' }).click();
  await rita.locator('#stage-Live .hold').waitFor({ state: 'detached' });
  const audit = await env.api('GET', `/audit?action=stage.clear-hold&subject=${APP}/Live`);
  if (!audit.items.some((a) => a.summary === 'build 1 verified on Live' && a.actor === 'rita')) {
    throw new Error(`the audit does not keep the reason: ${JSON.stringify(audit.items)}`);
  }
}

// The board names the list of other builds for what it is; the execution
// context reads as variables by scope, targets, artifacts and the plan.
async function boardAndContextScenario(env, s, scenario) {
  const page = await scenario.login('vic');
  await page.goto(`${env.base()}/#/apps/${APP}`);
  const live = page.locator('#stage-Live');
  await live.getByRole('heading', { name: 'Builds that ran here before' }).waitFor();
  const item = live.locator('.candidates li', { hasText: '1.0 build 2' });
  await env.waitText(page, '#stage-Live .candidates', 'newer');
  if (!(await item.textContent()).includes('newer')) throw new Error('build 2 on Live is not marked newer than the current build 1');
  // The pipeline at a glance, in stage order, each node what runs there.
  const nodes = page.locator('ol.pipeline > li');
  const order = await nodes.evaluateAll((els) => els.map((e) => e.dataset.stage));
  if (JSON.stringify(order) !== '["Check","Live"]') throw new Error(`the pipeline shows ${JSON.stringify(order)}`);
  const liveNode = await page.locator('ol.pipeline li[data-stage="Live"]').textContent();
  if (liveNode.includes('cancelled')) throw new Error(`the Live node shows a deployment that never ran: ${liveNode}`);
  for (const want of ['1.0 build 1', 'protected', '1 approval']) if (!liveNode.includes(want)) throw new Error(`the Live node does not say "${want}": ${liveNode}`);
  await page.locator('ol.pipeline li[data-stage="Live"] button').click();
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  if (focused !== 'stage-Live-h') throw new Error(`the Live node moved focus to ${focused}`);
  await page.screenshot({ path: join(env.shotDir, 'board-pipeline.png'), fullPage: true });
  const phone = await scenario.page('vic-phone', env.PHONE);
  await env.login(phone, 'vic', env.USERS.vic.password);
  await phone.goto(`${env.base()}/#/apps/${APP}`);
  await phone.locator('ol.pipeline').waitFor();
  await noOverflow(phone, 'the board');
  await phone.screenshot({ path: join(env.shotDir, 'board-pipeline-phone.png'), fullPage: true });
  await page.goto(`${env.base()}/#/deployments/${s.rollback}`);
  await page.getByRole('heading', { name: 'Variables by scope' }).waitFor();
  const ctx = await page.locator('section:has(h2:text("Execution context"))').textContent();
  for (const raw of ['is_rollback', 'plan_text', 'is_redeploy']) if (ctx.includes(raw)) throw new Error(`the context shows the raw key ${raw}`);
  for (const want of ['rollback', 'Application', 'Fail', 'Targets', 'ins-live-1']) if (!ctx.includes(want)) throw new Error(`the context does not show "${want}"`);
  await page.getByText(/^Plan p as it ran$/).click();
  await env.waitText(page, '.context-plan pre', 'asked to fail');
  await page.screenshot({ path: join(env.shotDir, 'deployment-context.png'), fullPage: true });
}

export function register(step, env) {
  const s = {};
  step('insights: an application of its own with failures and a rollback', async () => {
    s.rollback = await setUp(env);
  });
  step('dashboard: applications × environments with build, status, age, hold and drift, in one request', (scenario) => dashboardScenario(env, scenario));
  step('insights: the four keys as figures and charts; period and stage kept in the URL', (scenario) => insightsScenario(env, scenario));
  step('board: a cancelled scheduled re-deploy does not hide the earlier success (matrix and release page)', (scenario) => cancelledRedeployScenario(env, scenario));
  step('board: buttons follow role and gates (disabled with the reason, "Request promotion", no Approve for the requester)', (scenario) => rolesScenario(env, scenario));
  step('board: clearing the hold on a protected stage asks for a reason, kept in the audit', (scenario) => clearHoldScenario(env, scenario));
  step('board: the pipeline at a glance; other builds named for what they are; the execution context for people', (scenario) => boardAndContextScenario(env, s, scenario));
}
