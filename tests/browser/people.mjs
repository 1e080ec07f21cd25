// Browser scenarios of users, API tokens, grants, the audit log, the
// approvals badge, dark mode and the accessibility check (axe-core).
// Independent of the other scenarios' state: the users, the environment and
// the application used here are created by these scenarios through the API.
//
// axeCheck(page, what) is exported for other scenario files: it loads axe-core
// into the page and throws listing every serious or critical violation.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
let axeSource = null;

// The UI's CSP forbids inline scripts, so a <script> tag with axe's text is
// refused. Playwright's evaluate runs through the DevTools protocol, which
// the page's CSP does not govern: axe is defined that way, then run.
export async function axeCheck(page, what = page.url()) {
  if (!axeSource) axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    throw new Error(`axe: ${bad.length} serious or critical violation(s) on ${what}:\n` +
      bad.map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n    ${v.nodes.join('\n    ')}`).join('\n'));
  }
  return violations;
}

const PEOPLE = {
  pete: { role: 'release-manager', password: 'pete-password-1' },
  rosa: { role: 'release-manager', password: 'rosa-password-1' },
  dina: { role: 'deployer', password: 'dina-password-1' },
};

async function bearer(env, token, path) {
  return (await fetch(`${env.base()}/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } })).status;
}

async function setUp(env) {
  for (const [name, u] of Object.entries(PEOPLE)) {
    await env.api('POST', '/users', { name, role: u.role, password: u.password }).catch((e) => {
      if (!String(e).includes('409')) throw e;
    });
  }
  await env.api('PUT', '/environments/PeopleProd', {});
  await env.api('PUT', '/targets/people-web', { environment: 'PeopleProd', agent: 'local', path: join(env.dataDir, 'targets', 'people-web') });
  await env.api('PUT', '/applications/people', {
    pipeline: [{ stage: 'Live', environment: 'PeopleProd', targets: ['people-web'], plan: 'p',
      gates: { approvals: { count: 1, role: 'release-manager' } } }],
    plans: { p: '- log: hello\n' },
  });
  await env.api('POST', '/applications/people/releases', { number: '1.0' });
  await env.api('POST', '/applications/people/releases/1.0/builds', {});
}

async function loginAs(env, open, user, extra = {}, viewport) {
  const page = await open(user, viewport, extra);
  await env.login(page, user, user === 'admin' ? env.adminPassword : PEOPLE[user].password);
  return page;
}

// Until the page's "Loading…" placeholders are gone.
async function settled(page) {
  await page.locator('main p[role="status"]', { hasText: 'Loading…' }).first().waitFor({ state: 'detached' });
}

async function shot(env, page, name) {
  await page.screenshot({ path: join(env.shotDir, name), fullPage: true });
}

async function usersScenario(env, open) {
  const admin = await loginAs(env, open, 'admin');
  const dina = await loginAs(env, open, 'dina');
  await admin.goto(env.base() + '/#/users');
  await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  // Create a user through the form.
  await admin.getByLabel('User name').fill('ulla');
  await admin.getByLabel('Role').selectOption('deployer');
  await admin.getByLabel('Password').fill('short');
  await admin.getByRole('button', { name: 'Create user' }).click();
  await admin.getByText('password must be at least 8 characters').waitFor();
  await admin.getByLabel('Password').fill('ulla-password-1');
  await admin.getByRole('button', { name: 'Create user' }).click();
  await admin.getByText('User ulla created (deployer).').waitFor();
  await admin.locator('#users-table tr[data-user="ulla"]').waitFor();
  await shot(env, admin, 'users.png');
  await axeCheck(admin, '#/users');

  // Her page: role, token shown once, last use, revoke.
  await admin.getByRole('link', { name: 'ulla', exact: true }).click();
  await admin.getByRole('heading', { name: 'ulla', level: 1 }).waitFor();
  await admin.getByLabel('Role', { exact: true }).selectOption('release-manager');
  await admin.getByRole('button', { name: 'Change role' }).click();
  await admin.getByText('ulla is now release-manager.').waitFor();
  await admin.getByLabel('Token name').fill('ci-bot');
  await admin.getByLabel('Expires').selectOption({ label: '30 days' });
  await admin.getByRole('button', { name: 'Create token' }).click();
  const secret = (await admin.locator('#token-secret code').textContent()).trim();
  if (!/^rpr_[0-9a-f]{64}$/.test(secret)) throw new Error(`the token shown is not a token: ${secret}`);
  const row = admin.locator('#tokens-table tr', { hasText: 'ci-bot' });
  await row.waitFor();
  if (!(await row.textContent()).includes('never')) throw new Error('a new token shows a last use');
  if (await bearer(env, secret, '/me') !== 200) throw new Error('the new token does not work');
  await shot(env, admin, 'user.png');
  await axeCheck(admin, '#/users/ulla');
  // Shown once: a reload does not show it again; the last use shows.
  await admin.reload();
  await admin.locator('#tokens-table tr', { hasText: 'ci-bot' }).waitFor();
  if (await admin.locator('#token-secret').count()) throw new Error('the secret is shown again after a reload');
  if ((await admin.content()).includes(secret)) throw new Error('the secret is in the page after a reload');
  await env.waitText(admin, '#tokens-table tr:has-text("ci-bot") td:nth-child(3)', 'ago');
  admin.once('dialog', (d) => d.accept());
  await admin.getByRole('button', { name: /^Revoke token ci-bot/ }).click();
  await admin.getByText('Token "ci-bot" revoked.').waitFor();
  if (await bearer(env, secret, '/me') !== 401) throw new Error('a revoked token still works');

  // Grants: a checkbox per environment.
  await admin.getByLabel('redeploy on PeopleProd').check();
  await admin.getByText('ulla now holds redeploy on PeopleProd.').waitFor();
  const grants = await env.api('GET', '/environments/PeopleProd/grants');
  if (!grants.items.some((g) => g.user === 'ulla' && g.permission === 'redeploy')) throw new Error('the grant was not stored');

  // Disabling dina logs her browser out at its next request.
  await admin.goto(env.base() + '/#/users/dina');
  await admin.getByRole('heading', { name: 'dina', level: 1 }).waitFor();
  admin.once('dialog', (d) => d.accept());
  await admin.getByRole('button', { name: 'Disable user' }).click();
  await admin.getByText('dina is disabled: sessions and tokens are refused.').waitFor();
  await dina.goto(env.base() + '/#/deployments');
  await dina.getByRole('button', { name: 'Log in' }).waitFor();
  await admin.getByRole('button', { name: 'Enable user' }).click();
  await admin.getByText('dina is enabled again.').waitFor();
  const audit = await env.api('GET', '/audit?subject=dina&action=user.update');
  if (audit.items[0].summary !== 'enabled' || audit.items[1].summary !== 'disabled') throw new Error(`audit: ${JSON.stringify(audit.items)}`);
}

async function auditScenario(env, open) {
  // 60 entries of one action: more than a page.
  for (let i = 0; i < 60; i++) await env.api('PUT', `/environments/audit-${String(i).padStart(2, '0')}`, {});
  const admin = await loginAs(env, open, 'admin');
  await admin.goto(env.base() + '/#/audit');
  await admin.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
  await admin.getByLabel('Action').fill('environment.put');
  await admin.getByLabel('Subject').fill('audit-59');
  await admin.getByRole('button', { name: 'Filter' }).click();
  // The unfiltered list shows audit-59 first too: wait for the filtered one (one row).
  const filtered = admin.locator('#audit-table tbody tr');
  await env.waitUntil(async () => (await filtered.count()) === 1,
    async () => `the subject filter shows ${await filtered.count()} entries, not 1`);
  await env.waitText(admin, '#audit-table tbody', 'audit-59');
  if (!admin.url().includes('subject=audit-59')) throw new Error(`the filters are not in the URL: ${admin.url()}`);
  // Paging through the 60.
  await admin.getByLabel('Subject').fill('');
  await admin.getByRole('button', { name: 'Filter' }).click();
  await env.waitText(admin, '.pager', '1–50');
  await admin.getByRole('button', { name: 'Next' }).click();
  await env.waitText(admin, '.pager', '51–');
  await shot(env, admin, 'audit.png');
  await axeCheck(admin, '#/audit');
  // The CSV has every match, not a page.
  const href = await admin.locator('#au-csv').getAttribute('href');
  if (!href.includes('format=csv') || !href.includes('action=environment.put')) throw new Error(`CSV link: ${href}`);
  const csv = await admin.evaluate(async (u) => (await fetch(u)).text(), href);
  const rows = csv.trim().split('\r\n');
  if (rows[0] !== 'id,at,actor,action,subject,summary') throw new Error(`CSV header: ${rows[0]}`);
  if (rows.filter((r) => r.includes(',audit-')).length !== 60) throw new Error(`CSV has ${rows.length - 1} rows, expected the 60 audit-* entries among them`);
  // A URL with filters opens with them filled in.
  await admin.goto(env.base() + '/#/audit?actor=admin&action=user.create&subject=pete');
  await env.waitText(admin, '#audit-table tbody', 'pete');
  if (await admin.getByLabel('Actor').inputValue() !== 'admin') throw new Error('the actor filter was not taken from the URL');
}

async function approvalsBadgeScenario(env, open) {
  const pete = await loginAs(env, open, 'pete');
  const rosa = await loginAs(env, open, 'rosa');
  const d = await env.api('POST', '/applications/people/releases/1.0/builds/1/deploy', { stage: 'Live' }, await env.tokenFor('pete'));
  if (d.status !== 'waiting') throw new Error(`the deployment is ${d.status}, expected waiting`);
  const countFor = async (page) => page.evaluate(async () => (await (await fetch('/api/v1/me/approvals')).json()));
  await rosa.goto(env.base() + '/#/deployments');
  const mine = await countFor(rosa);
  if (!mine.deployment_ids.includes(d.id)) throw new Error(`rosa's approvals do not list #${d.id}: ${JSON.stringify(mine)}`);
  await env.waitText(rosa, '#approvals-badge', String(mine.count));
  const link = rosa.getByRole('link', { name: /^Approvals/ });
  if (!(await link.textContent()).includes('waiting for your approval')) throw new Error('the badge has no text for screen readers');
  await shot(env, rosa, 'approvals-badge.png');
  // Not my own: pete requested it.
  await pete.goto(env.base() + '/#/deployments');
  const his = await countFor(pete);
  if (his.deployment_ids.includes(d.id)) throw new Error('pete is asked to approve his own deployment');
  // Approving it takes it off the badge.
  await rosa.goto(env.base() + '/#/approvals');
  await rosa.getByRole('button', { name: `Approve deployment #${d.id}` }).click();
  await rosa.getByText(`Deployment #${d.id}: approval recorded.`).waitFor();
  const after = (await countFor(rosa)).count;
  if (after === 0) {
    await env.waitUntil(async () => (await rosa.locator('#approvals-badge').count()) === 0,
      'the badge stays after the last approval', 5000);
  } else {
    await env.waitText(rosa, '#approvals-badge', String(after));
  }
}

async function themeScenario(env, open) {
  const admin = await loginAs(env, open, 'admin');
  await admin.goto(env.base() + '/#/users');
  await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  const theme = () => admin.evaluate(() => document.documentElement.getAttribute('data-theme'));
  if (await theme() !== 'light') throw new Error(`the theme is ${await theme()} in a light browser`);
  // The heading takes focus after a reload without drawing a focus box.
  await admin.reload();
  await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  // Focus moves to the heading once the page has drawn.
  let focus = {};
  await env.waitUntil(async () => {
    focus = await admin.evaluate(() => {
      const el = document.activeElement;
      return { tag: el.tagName, outline: getComputedStyle(el).outlineStyle };
    });
    return focus.tag === 'H1';
  }, 'the heading never took focus', 5000).catch(() => {});
  if (focus.tag !== 'H1' || focus.outline !== 'none') throw new Error(`after a reload the focused ${focus.tag} has outline ${focus.outline}`);
  const toggle = admin.getByRole('button', { name: 'Dark mode' });
  await toggle.click();
  if (await theme() !== 'dark') throw new Error('the toggle did not switch to dark');
  if (await toggle.getAttribute('aria-pressed') !== 'true') throw new Error('the toggle does not say it is pressed');
  await admin.reload();
  await admin.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  if (await theme() !== 'dark') throw new Error('the dark choice was not remembered');
  const bg = await admin.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  if (bg !== 'rgb(13, 17, 23)') throw new Error(`the dark page background is ${bg}`);
  // Every page of this slice, the login page, the dashboard and a board, in dark, checked by axe.
  for (const [hash, heading, name] of [['#/users', 'Users', 'users-dark.png'], ['#/users/pete', 'pete', 'user-dark.png'],
    ['#/audit', 'Audit log', 'audit-dark.png'], ['#/', 'Applications', 'dashboard-dark.png'], ['#/apps/people', 'people', 'board-dark.png']]) {
    await admin.goto(env.base() + '/' + hash);
    await admin.getByRole('heading', { name: heading, level: 1 }).waitFor();
    await settled(admin);
    await shot(env, admin, name);
    await axeCheck(admin, `${hash} (dark)`);
  }
  await toggle.click();
  if (await theme() !== 'light') throw new Error('the toggle did not switch back to light');
  // A browser that prefers dark gets dark without a choice, on the login page too.
  const dark = await open('dark-login', undefined, { colorScheme: 'dark' });
  await dark.goto(env.base() + '/');
  await dark.getByRole('button', { name: 'Log in' }).waitFor();
  if (await dark.evaluate(() => document.documentElement.getAttribute('data-theme')) !== 'dark') throw new Error('prefers-color-scheme: dark is not followed');
  await shot(env, dark, 'login-dark.png');
  await axeCheck(dark, 'login (dark)');
}

async function axeScenario(env, open) {
  const page = await open('axe-login');
  await page.goto(env.base() + '/');
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await axeCheck(page, 'the login page');
  await env.login(page, 'admin', env.adminPassword);
  for (const [hash, heading] of [['#/', 'Applications'], ['#/apps/shop', 'shop'], ['#/apps/people', 'people'],
    ['#/users', 'Users'], ['#/users/rosa', 'rosa'], ['#/audit', 'Audit log']]) {
    await page.goto(env.base() + '/' + hash);
    await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    await settled(page);
    await axeCheck(page, hash);
  }
  // Phone width, light and dark.
  const phone = await open('people-phone', env.PHONE, { isMobile: true, hasTouch: true });
  await env.login(phone, 'admin', env.adminPassword);
  // The theme is read when the app loads: one reload per theme, then the
  // pages by their links' hashes.
  for (const theme of ['light', 'dark']) {
    await phone.evaluate((t) => localStorage.setItem('reprise.theme', t), theme);
    await phone.reload();
    for (const [hash, heading, name] of [['#/users', 'Users', 'users-phone'], ['#/users/rosa', 'rosa', 'user-phone'], ['#/audit', 'Audit log', 'audit-phone']]) {
      await phone.goto(env.base() + '/' + hash);
      if (await phone.evaluate(() => document.documentElement.getAttribute('data-theme')) !== theme) throw new Error(`${hash} is not ${theme}`);
      await phone.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await settled(phone);
      await shot(env, phone, `${name}${theme === 'dark' ? '-dark' : ''}.png`);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 2) throw new Error(`${hash} is ${overflow}px wider than the phone screen`);
    }
  }
}

export function register(step, env) {
  const opener = (scenario) => (label, viewport, extra) => scenario.page(`people-${label}`, viewport, extra);
  const add = (name, fn) => step(`people: ${name}`, (scenario) => fn(env, opener(scenario)));
  add('set up users, an environment and an application with an approval gate', async () => setUp(env));
  add('users: create, role, token shown once with last use, revoke, grant, disable logs the user out', usersScenario);
  add('audit log: filters in the URL, paging, CSV of every match', auditScenario);
  add('the Approvals badge counts what waits for my approval, not my own', approvalsBadgeScenario);
  add('dark mode: system preference, toggle remembered; no focus box on the heading after a reload', themeScenario);
  add('axe-core finds no serious or critical violation; pages fit a phone in light and dark', axeScenario);
}
