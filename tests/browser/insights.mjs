// Browser scenarios of the dashboard across applications and the insights
// page (charts), on an application of their own ("ins", two stages on
// environments of its own; its plan needs no agent and fails on request).
// `register(step, env)` receives the runner's helpers through `env`.
import { join } from 'node:path';

const APP = 'ins';
const PLAN = '- log: "deploying $BuildNumber"\n- if: { condition: "$Fail == true", then: [ { fail: "asked to fail" } ] }\n';

function spec(prodTargets) {
  return {
    description: 'dashboard and insights',
    variables: { Fail: 'false' },
    pipeline: [
      { stage: 'Check', environment: 'InsCheck', targets: ['ins-check'], plan: 'p' },
      { stage: 'Live', environment: 'InsLive', targets: prodTargets, plan: 'p' },
    ],
    plans: { p: PLAN },
  };
}

async function deploy(env, build, stage, fail = false) {
  const body = { stage };
  if (fail) body.variables = { Fail: 'true' };
  const d = await env.api('POST', `/applications/${APP}/releases/1.0/builds/${build}/deploy`, body);
  await env.waitStatus(d.id, fail ? 'failed' : 'succeeded');
  return d.id;
}

// Build 1 on both stages; on Live build 2 fails, then succeeds, then build 1
// is re-deployed (a rollback: Live holds automatic promotion). A second Live
// target added afterwards runs nothing: the stage drifts.
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
  await env.api('PUT', `/applications/${APP}`, spec(['ins-live-1', 'ins-live-2']));
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
  await env.waitText(page, `tr[data-app="${APP}"] td[data-env="InsCheck"]`, '1.0 build 2');
  const liveText = await live.textContent();
  for (const want of ['1.0 build 1', 'succeeded', 'hold', 'drift']) {
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
  const apiCalls = requests.filter((u) => !u.endsWith('/api/v1/session'));
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

export function register(step, env) {
  const s = {};
  step('insights: an application of its own with failures and a rollback', async () => {
    s.rollback = await setUp(env);
  });
  step('dashboard: applications × environments with build, status, age, hold and drift, in one request', (scenario) => dashboardScenario(env, scenario));
  step('insights: the four keys as figures and charts; period and stage kept in the URL', (scenario) => insightsScenario(env, scenario));
}
