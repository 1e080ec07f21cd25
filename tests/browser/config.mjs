// Browser scenarios of the configuration pages: global variables, an
// environment and a target made in the UI, a sensitive value that is never
// shown again and kept when saved untouched; a new application whose spec
// error is shown at its line, then edited with a diff before saving; and
// enrolling a real reprise-agent with the command line the Agents page shows.
// Everything is made here (environment CfgEnv, target cfg-web, application
// cfgapp), independent of the other scenarios.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const SECRET = 'gl0bal-s3cret';
const APP_SECRET = 'app-s3cret';

// Line 6 misspells "environment". The secrets are compared with copies kept
// in the environment (not in the spec, whose text shows secrets masked).
const BAD_SPEC = `description: "first"
variables:
  AppToken: { value: "${APP_SECRET}", sensitive: true }
pipeline:
  - stage: Cfg
    enviroment: CfgEnv
    targets: [cfg-web]
    plan: show
plans:
  show: |
    - log: "region=$CfgRegion only=$CfgOnly"
    - if:
        condition: "$CfgSecret == $CfgWantGlobal"
        then:
          - log: "the stored secret was kept"
    - if:
        condition: "$AppToken == $CfgWantApp"
        then:
          - log: "the app secret was kept"
`;
const GOOD_SPEC = BAD_SPEC.replace('enviroment:', 'environment:');

async function noOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 2) throw new Error(`${what} is ${overflow}px wider than the phone screen`);
}

function waitFor(env, what, check, timeout) {
  return env.waitUntil(check, `waiting for ${what}`, timeout);
}

// Global variables, an environment overriding one, a target: all from the page.
async function configScenario(env, open) {
  const page = await open('cfg-admin');
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(`${env.base()}/#/config`);
  const globals = page.locator('section', { has: page.getByRole('heading', { name: 'Global variables' }) });
  await globals.getByRole('button', { name: 'Add variable' }).click();
  await globals.getByLabel('Variable name (global scope)').last().fill('CfgRegion');
  await globals.getByLabel(/^Value of .* \(global scope\)$/).last().fill('from-global');
  for (const [name, value] of [['CfgOnly', 'only-global'], ['CfgSecret', SECRET]]) {
    await globals.getByRole('button', { name: 'Add variable' }).click();
    await globals.getByLabel('Variable name (global scope)').last().fill(name);
    await globals.getByLabel(/^Value of .* \(global scope\)$/).last().fill(value);
  }
  await globals.locator('input.var-sensitive').last().check();
  await globals.getByRole('button', { name: 'Save global variables' }).click();
  await env.waitText(page, 'section:has(#cfg-globals) .save-status', 'Global variables saved.');

  const envs = page.locator('section', { has: page.getByRole('heading', { name: 'Environments' }) });
  await envs.getByLabel('Name', { exact: true }).fill('CfgEnv');
  await envs.getByRole('button', { name: 'Create environment' }).click();
  const item = envs.locator('details[data-environment="CfgEnv"]');
  await item.waitFor();
  await item.locator('summary').click();
  await item.getByRole('button', { name: 'Add variable' }).click();
  await item.getByLabel('Variable name (environment CfgEnv)').fill('CfgRegion');
  await item.getByLabel(/^Value of .* \(environment CfgEnv\)$/).fill('env-override');
  await item.getByRole('button', { name: 'Save CfgEnv' }).click();
  await env.waitText(page, 'details[data-environment="CfgEnv"] .save-status', 'Environment CfgEnv saved.');

  const targets = page.locator('section', { has: page.getByRole('heading', { name: 'Targets' }) });
  const form = targets.locator('.new-item');
  await form.getByLabel('Name', { exact: true }).fill('cfg-web');
  await form.getByLabel('Environment').selectOption('CfgEnv');
  await form.getByLabel('Agent').fill('local');
  await form.getByLabel('Path').fill('relative/path');
  await form.getByRole('button', { name: 'Create target' }).click();
  await env.waitText(page, 'section:has(#cfg-targets) .new-item .save-status', 'must be absolute');
  await form.getByLabel('Path').fill(join(env.dataDir, 'targets', 'cfg-web'));
  await form.getByRole('button', { name: 'Create target' }).click();
  await page.locator('details[data-target="cfg-web"]').waitFor();
  const t = await env.api('GET', '/targets/cfg-web');
  if (t.environment !== 'CfgEnv' || t.agent !== 'local') throw new Error(`target cfg-web is ${JSON.stringify(t)}`);

  // The secret is never shown again; saved untouched it is kept (the deployment proves it).
  await page.reload();
  const secretValue = page.getByLabel('Value of CfgSecret (global scope)');
  await secretValue.waitFor();
  if ((await secretValue.inputValue()) !== '') throw new Error('the stored secret fills its field');
  if ((await secretValue.getAttribute('placeholder')) !== 'stored; type to replace') throw new Error('the secret field does not say it is stored');
  if ((await page.content()).includes(SECRET)) throw new Error('the page contains the secret');
  await page.getByRole('button', { name: 'Save global variables' }).click();
  await env.waitText(page, 'section:has(#cfg-globals) .save-status', 'Global variables saved.');
  const g = await env.api('GET', '/variables');
  if (g.variables.CfgSecret.value !== '******' || !g.variables.CfgSecret.sensitive) throw new Error(`GET /variables: ${JSON.stringify(g)}`);
  await page.locator('details[data-environment="CfgEnv"] summary').click();
  await page.screenshot({ path: join(env.shotDir, 'config.png'), fullPage: true });
}

// A new application: its error at line 5, then saved; an edit reviewed as a diff.
async function specScenario(env, open) {
  const page = await open('cfg-rita');
  await env.login(page, 'rita', env.USERS.rita.password);
  await page.goto(`${env.base()}/#/config`);
  await page.getByRole('link', { name: 'New application' }).click();
  await page.getByLabel('Name', { exact: true }).fill('cfgapp');
  await page.getByLabel('Application spec (YAML)').fill(BAD_SPEC);
  await page.getByRole('button', { name: 'Review changes' }).click();
  await env.waitText(page, '.diff-summary', `${BAD_SPEC.split('\n').length} added, 0 removed`);
  await page.getByRole('button', { name: 'Save' }).click();
  await env.waitText(page, '#spec-error', 'Line 6, column 5:');
  await env.waitText(page, '#spec-error', 'enviroment');
  const marked = await page.locator('.gutter .ln-error').getAttribute('data-line');
  if (marked !== '6') throw new Error(`the gutter marks line ${marked}, expected 6`);
  await page.screenshot({ path: join(env.shotDir, 'spec-error.png'), fullPage: true });
  await page.getByLabel('Application spec (YAML)').fill(GOOD_SPEC);
  await page.getByRole('button', { name: 'Review changes' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/#\/apps\/cfgapp$/);

  await page.getByRole('link', { name: 'Edit spec' }).click();
  const area = page.getByLabel('Application spec (YAML)');
  await env.waitText(page, '.page-head h1', 'Spec of cfgapp');
  const text = await waitFor(env, 'the stored spec text', async () => (await area.inputValue()) || null, env.T.short);
  if (text.includes(APP_SECRET) || !text.includes('AppToken: { value: "******", sensitive: true }'))
    throw new Error(`the editor shows the secret or no mask:\n${text}`);
  await area.fill(text.replace('description: "first"', 'description: "second"'));
  await page.getByRole('button', { name: 'Review changes' }).click();
  await env.waitText(page, '.diff-summary', '1 added, 1 removed');
  await env.waitText(page, 'table.diff tr.diff-add', 'description: "second"');
  await env.waitText(page, 'table.diff tr.diff-del', 'description: "first"');
  await page.screenshot({ path: join(env.shotDir, 'spec-diff.png'), fullPage: true });
  await page.getByRole('button', { name: 'Save' }).click();
  await env.waitText(page, '.spec-editor .save-status', 'Saved spec version 2');
  const app = await env.api('GET', '/applications/cfgapp');
  if (app.spec.description !== 'second') throw new Error(`stored description: ${app.spec.description}`);

  // A deployment sees the global scope under the environment's, and both secrets kept.
  await env.api('PUT', '/environments/CfgEnv', { variables: { CfgRegion: 'env-override', CfgWantGlobal: SECRET, CfgWantApp: APP_SECRET } });
  await env.api('POST', '/applications/cfgapp/releases', { number: '1.0' });
  await env.api('POST', '/applications/cfgapp/releases/1.0/builds', {});
  const d = await env.api('POST', '/applications/cfgapp/releases/1.0/builds/1/deploy', { stage: 'Cfg' });
  await env.waitStatus(d.id, 'succeeded');
  const log = (await env.api('GET', `/deployments/${d.id}/log`)).lines.map((l) => l.text).join('\n');
  for (const want of ['region=env-override only=only-global', 'the stored secret was kept', 'the app secret was kept'])
    if (!log.includes(want)) throw new Error(`the deployment log lacks "${want}":\n${log}`);
}

// A viewer reads the configuration and cannot change it; it fits a phone.
async function viewerScenario(env, open) {
  const page = await open('cfg-vic', env.PHONE, { isMobile: true, hasTouch: true });
  await env.login(page, 'vic', env.USERS.vic.password);
  await page.goto(`${env.base()}/#/config`);
  await page.locator('details[data-environment="CfgEnv"]').waitFor();
  if (await page.getByRole('button', { name: /^Save|^Create|Add variable/ }).count())
    throw new Error('a viewer is offered to change the configuration');
  if (!(await page.getByText('Only admins can change the configuration.').count())) throw new Error('the page does not say who may change it');
  await noOverflow(page, 'the configuration page');
  await page.screenshot({ path: join(env.shotDir, 'config-phone.png'), fullPage: true });
}

// The command line the page shows enrolls a real agent; it is approved there
// and lists the target that uses it.
async function enrollScenario(env, open) {
  const page = await open('cfg-agents');
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(`${env.base()}/#/agents`);
  const root = join(env.tempDir, 'cfg-agent');
  mkdirSync(root, { recursive: true });
  await page.getByLabel('Agent name').fill('cfg-01');
  await page.getByLabel('Root directory on its machine').fill(root);
  await page.getByRole('button', { name: 'Create enrollment token' }).click();
  const cmd = page.locator('.enroll-command');
  await cmd.waitFor();
  const command = (await cmd.textContent()).trim();
  if (!/^reprise-agent --server 127\.0\.0\.1:\d+ --name cfg-01 --root \S+ --enroll-token rpe_\S+ --fingerprint [0-9a-fA-F:]+$/.test(command))
    throw new Error(`the command line reads: ${command}`);
  await page.screenshot({ path: join(env.shotDir, 'agents-enroll.png'), fullPage: true });
  const args = command.split(' ').slice(1).concat(['--heartbeat-ms', '500', '--quiet']);
  const agent = spawn(env.agentBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  env.children.push(agent);
  let agentLog = '';
  agent.stdout.on('data', (x) => { agentLog += x; });
  agent.stderr.on('data', (x) => { agentLog += x; });
  const approve = page.getByRole('button', { name: 'Approve agent cfg-01' });
  await approve.waitFor({ timeout: env.T.short }).catch((e) => { throw new Error(`${e.message}\nagent output: ${agentLog}`); });
  await approve.click();
  await env.api('PUT', '/targets/cfg-remote', { environment: 'CfgEnv', agent: 'cfg-01', path: join(root, 'site') });
  const row = page.locator('tr[data-agent="cfg-01"]');
  await waitFor(env, 'cfg-01 approved, online, serving cfg-remote', async () => {
    const text = await row.textContent();
    return text.includes('approved') && text.includes('online') && text.includes('cfg-remote');
  }, env.T.short);
  const listed = (await env.api('GET', '/agents?limit=1000')).items.find((a) => a.name === 'cfg-01');
  if (!listed.version || !listed.last_seen) throw new Error(`cfg-01 has no version or last seen: ${JSON.stringify(listed)}`);
  await page.screenshot({ path: join(env.shotDir, 'agents-config.png'), fullPage: true });
}

export function registerConfigScenarios(step, env) {
  const opener = (scenario) => (label, viewport, extra) => scenario.page(label, viewport, extra);
  const add = (name, fn) => step(`configuration: ${name}`, (scenario) => fn(env, opener(scenario)));
  add('global variables, an environment and a target made on the page; a secret never shown again', configScenario);
  add('a new application: its spec error at its line, then an edit reviewed as a diff; a deployment resolves the scopes', specScenario);
  add('a viewer reads the configuration without changing it, on a phone', viewerScenario);
  add('the enrollment command line the page shows enrolls a real agent, approved there with its target', enrollScenario);
}

export const register = registerConfigScenarios;
