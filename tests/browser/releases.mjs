// Browser scenarios of releases, builds and the deployments history: a
// release and a build created with Markdown notes (a hostile note stays text)
// and links; an artifact uploaded by drag and drop with its progress, sha256
// and file count; the history's filters kept in the URL, durations, CSV and
// a target's page; and the faults around scheduling and requests: the
// scheduled list redraws after Move and Cancel, times are checked in words
// before anything is sent, a cancel asks for a reason, a request says it
// waits for an approval (and the notice goes when it no longer does), 404
// pages show only the error, automatic promotions are "automation".
// Independent of the other scenarios: its own application, targets, users.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tarOf } from './rollback_records.mjs';

const APP = 'relapp';
const USERS = {
  'rel-rm': { role: 'release-manager', password: 'rel-rm-password-1' },
  'rel-dep': { role: 'deployer', password: 'rel-dep-password-1' },
  'rel-view': { role: 'viewer', password: 'rel-view-password-1' },
};
const HOSTILE = [
  '# Release 2.0',
  '',
  'Adds **fast checkout** and *gift cards*; see `checkout.js`.',
  '',
  '- first item',
  '- second [tracker](https://tracker.example/REL-7)',
  '',
  '<img src=x onerror="document.title=\'pwned\'"> <script>document.title="pwned"</script>',
  '[click me](javascript:document.title="pwned") [data](data:text/html,<b>x</b>)',
].join('\n');

async function upload(env, build, bytes) {
  const res = await fetch(`${env.base()}/api/v1/applications/${APP}/releases/1.0/builds/${build}/artifacts/web`,
    { method: 'PUT', headers: { Authorization: `Bearer ${env.adminToken}` }, body: bytes });
  if (!res.ok) throw new Error(`upload of build ${build} answered ${res.status}: ${await res.text()}`);
}

async function tokenOf(env, user) {
  return (await env.api('POST', `/users/${user}/tokens`, { name: 'releases-test' })).token;
}

// Stages Build (promotes automatically) -> Test -> Live (1 approval from a
// release manager), each on a target of the local agent; release 1.0 with
// build 1 deployed to Build by rel-dep (and so to Test by the automation).
async function setUp(env, s) {
  for (const [name, u] of Object.entries(USERS)) await env.api('POST', '/users', { name, role: u.role, password: u.password });
  for (const t of ['rel-build', 'rel-test', 'rel-live']) {
    await env.api('PUT', `/targets/${t}`, { environment: 'Integration', agent: 'local', path: join(env.dataDir, 'targets', t) });
  }
  await env.api('PUT', `/applications/${APP}`, {
    pipeline: [
      { stage: 'Build', environment: 'Integration', targets: ['rel-build'], plan: 'site', auto_promote: true },
      { stage: 'Test', environment: 'Integration', targets: ['rel-test'], plan: 'site' },
      { stage: 'Live', environment: 'Integration', targets: ['rel-live'], plan: 'site', gates: { approvals: { count: 1, role: 'release-manager' } } },
    ],
    plans: { site: '- deploy-artifact: { artifact: web }\n' },
  });
  await env.api('POST', `/applications/${APP}/releases`, { number: '1.0' });
  await env.api('POST', `/applications/${APP}/releases/1.0/builds`, {});
  await upload(env, 1, tarOf(join(env.tempDir, 'rel-b1'), { 'index.html': '<h1>rel 1</h1>\n', 'css/a.css': 'a{}\n' }));
  s.depToken = await tokenOf(env, 'rel-dep');
  s.rmToken = await tokenOf(env, 'rel-rm');
  const d = await env.api('POST', `/applications/${APP}/releases/1.0/builds/1/deploy`, { stage: 'Build' }, s.depToken);
  await env.waitStatus(d.id, 'succeeded');
  s.first = d.id;
  let items = [];
  await env.waitUntil(async () => {
    items = (await env.api('GET', `/deployments?application=${APP}&stage=Test`)).items;
    return items.length && items[0].status === 'succeeded';
  }, () => `no automatic promotion to Test succeeded: ${JSON.stringify(items)}`, env.T.deploy);
  s.automatic = items[0];
}

async function loginAs(env, open, user, label = user) {
  const page = await open(label);
  await env.login(page, user, USERS[user] ? USERS[user].password : env.adminPassword);
  return page;
}

async function noScriptRan(page) {
  const title = await page.title();
  if (title.includes('pwned')) throw new Error('a script in the notes ran');
}

export async function releaseNotesScenario(env, open) {
  const page = await loginAs(env, open, 'rel-dep');
  await page.goto(`${env.base()}/#/apps/${APP}`);
  await page.getByRole('link', { name: 'New release' }).click();
  await page.getByRole('heading', { name: `New release of ${APP}` }).waitFor();
  await page.getByLabel('Release number').fill('2.0');
  await page.getByLabel('Notes (Markdown)').fill(HOSTILE);
  // A link that is not http(s) is refused before anything is sent.
  await page.getByLabel('Links', { exact: true }).fill('REL-7 https://tracker.example/REL-7\nftp://files.example/x');
  await page.getByRole('button', { name: 'Create release' }).click();
  await env.waitText(page, '.form-error', 'Link on line 2 must end with an http:// or https:// address');
  await page.locator('#release-preview strong', { hasText: 'fast checkout' }).waitFor();
  await page.screenshot({ path: join(env.shotDir, 'release-new.png'), fullPage: true });
  await page.getByLabel('Links', { exact: true }).fill('REL-7 https://tracker.example/REL-7\nhttps://git.example/shop/commit/0a1b2c3');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.getByRole('heading', { name: `${APP} 2.0`, level: 1 }).waitFor();
  const notes = page.locator('section.notes');
  await notes.getByRole('heading', { name: 'Release 2.0' }).waitFor();
  if ((await notes.locator('em').first().textContent()) !== 'gift cards') throw new Error('emphasis is not rendered');
  if ((await notes.locator('code').first().textContent()) !== 'checkout.js') throw new Error('code is not rendered');
  if ((await notes.locator('ul li').count()) < 2) throw new Error('the list is not rendered');
  // The hostile parts are text: no element, no script, no javascript: or data: link.
  if (await notes.locator('img, script').count()) throw new Error('markup from the notes reached the DOM');
  const hrefs = await notes.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  if (hrefs.some((x) => !/^https?:\/\//.test(x))) throw new Error(`a link that is not http(s): ${hrefs}`);
  for (const want of ['https://tracker.example/REL-7', 'https://git.example/shop/commit/0a1b2c3']) {
    if (!hrefs.includes(want)) throw new Error(`link ${want} missing: ${hrefs}`);
  }
  const text = await notes.textContent();
  for (const want of ['<img src=x onerror=', '<script>', '[click me](javascript:']) {
    if (!text.includes(want)) throw new Error(`"${want}" is not shown as text: ${text}`);
  }
  await notes.getByRole('link', { name: 'REL-7' }).waitFor();
  await noScriptRan(page);
  await page.screenshot({ path: join(env.shotDir, 'release-notes.png'), fullPage: true });
}

export async function buildUploadScenario(env, open) {
  const page = await loginAs(env, open, 'rel-dep');
  await page.goto(`${env.base()}/#/apps/${APP}/releases/2.0`);
  await page.getByRole('link', { name: 'New build' }).click();
  await page.getByLabel('Notes (Markdown)').fill('Built from **main**.');
  await page.getByLabel('Links', { exact: true }).fill('https://ci.example/runs/42');
  await page.getByRole('button', { name: 'Create build' }).click();
  await page.getByRole('heading', { name: `${APP} 2.0 build 1`, level: 1 }).waitFor();
  await page.locator('section.notes strong', { hasText: 'main' }).waitFor();
  // Drag and drop a tar.gz of 3 files on the zone.
  const bytes = tarOf(join(env.tempDir, 'rel-b2'), { 'index.html': '<h1>rel 2</h1>\n', 'css/a.css': 'a{}\n', 'js/app.js': '1;\n' });
  const sha = createHash('sha256').update(bytes).digest('hex');
  const transfer = await page.evaluateHandle((data) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(data)], 'web.tar.gz', { type: 'application/gzip' }));
    return dt;
  }, [...bytes]);
  await page.locator('#drop-zone').dispatchEvent('dragover', { dataTransfer: transfer });
  await page.locator('#drop-zone').dispatchEvent('drop', { dataTransfer: transfer });
  const item = page.locator('.upload[data-artifact="web"]');
  await env.waitText(page, '.upload[data-artifact="web"] .upload-result', sha);
  const result = await item.locator('.upload-result').textContent();
  if (!result.includes('3 files')) throw new Error(`the upload result does not say 3 files: ${result}`);
  const [value, max] = await item.locator('progress').evaluate((p) => [p.value, p.max]);
  if (value !== max) throw new Error(`the progress bar stops at ${value} of ${max}`);
  await page.locator('#artifacts').getByRole('rowheader', { name: 'web' }).waitFor();
  const stored = await env.api('GET', `/applications/${APP}/releases/2.0/builds/1`);
  if (stored.artifacts[0].sha256 !== sha || stored.artifacts[0].file_count !== 3) throw new Error(`stored: ${JSON.stringify(stored.artifacts)}`);
  // Another archive under the same name is refused in words, in place.
  const other = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['not the same bytes'], 'web.zip'));
    return dt;
  });
  await page.locator('#drop-zone').dispatchEvent('drop', { dataTransfer: other });
  await page.locator('.upload.failed [role=alert]').waitFor();
  await page.screenshot({ path: join(env.shotDir, 'build-upload.png'), fullPage: true });
}

export async function historyScenario(env, s, open) {
  const page = await loginAs(env, open, 'rel-dep');
  await page.goto(`${env.base()}/#/deployments`);
  await page.getByLabel('Application').fill(APP.toUpperCase());
  await page.getByLabel('User').fill('Automation');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/application=RELAPP&user=Automation/);
  const rows = page.locator('table.deployments tbody tr');
  await rows.first().waitFor();
  if ((await rows.count()) !== 1) throw new Error(`${await rows.count()} rows for the automation's deployments of ${APP}`);
  const row = rows.first();
  await row.getByRole('link', { name: `#${s.automatic.id}` }).waitFor();
  if ((await row.locator('td').nth(6).textContent()) !== 'automation') throw new Error(`By: ${await row.locator('td').nth(6).textContent()}`);
  if (/\bnull\b|undefined/.test(await page.locator('main').textContent())) throw new Error('"null" or "undefined" shows on the page');
  const duration = await row.locator('td.num').textContent();
  if (!/\d+ s|min/.test(duration)) throw new Error(`duration column shows "${duration}"`);
  // Kept in the URL: a reload shows the same filters and rows.
  await page.reload();
  await page.locator('table.deployments tbody tr').first().waitFor();
  if ((await page.getByLabel('User').inputValue()) !== 'Automation') throw new Error('the user filter is lost on reload');
  const href = await page.locator('#deployments-csv').getAttribute('href');
  if (!href.includes('format=csv') || !href.includes('application=RELAPP') || !href.includes('user=Automation')) throw new Error(`CSV link: ${href}`);
  const csv = await page.request.get(env.base() + href);
  const body = await csv.text();
  if (!csv.ok() || !body.startsWith('id,application,') || !body.includes(`${s.automatic.id},${APP},1.0,1,Test,promote,succeeded,automation,rel-test`)) {
    throw new Error(`CSV export: ${csv.status()} ${body.slice(0, 400)}`);
  }
  await page.screenshot({ path: join(env.shotDir, 'deployments-history.png'), fullPage: true });
  // A date range: today includes them, a day long ago nothing.
  await page.goto(`${env.base()}/#/deployments?application=${APP}&from=2001-01-01&to=2001-01-02`);
  await page.getByText('No deployments match.').waitFor();
  // One target's history.
  await page.goto(`${env.base()}/#/deployments?application=${APP}`);
  await page.locator('table.deployments').getByRole('link', { name: 'rel-test' }).first().click();
  await page.getByRole('heading', { name: 'Target rel-test', level: 1 }).waitFor();
  await page.locator('table.deployments tbody tr').first().getByRole('link', { name: `#${s.automatic.id}` }).waitFor();
  if ((await page.locator('table.deployments tbody tr').count()) !== 1) throw new Error('the target page lists other targets\' deployments');
  await page.screenshot({ path: join(env.shotDir, 'target-history.png'), fullPage: true });
  // The build page's history says "automation" too.
  await page.goto(`${env.base()}/#/apps/${APP}/releases/1.0/builds/1`);
  await page.getByRole('heading', { name: 'Deployment history' }).waitFor();
  await page.locator('tr', { has: page.getByRole('link', { name: `#${s.automatic.id}` }) }).getByRole('cell', { name: 'automation' }).waitFor();
}

export async function approvalNoticeScenario(env, s, open) {
  const page = await loginAs(env, open, 'rel-rm');
  await page.goto(`${env.base()}/#/apps/${APP}`);
  await page.getByRole('button', { name: 'Promote 1.0 build 1 to Live' }).first().click();
  const dialog = page.locator('dialog[open]');
  // The stage's approval gate will hold it: the button says so.
  await dialog.getByRole('button', { name: 'Request promotion' }).click();
  await page.waitForURL(/#\/deployments\/\d+$/);
  const id = Number(/#\/deployments\/(\d+)/.exec(page.url())[1]);
  await env.waitText(page, '#deployment-notice', `Deployment #${id} requested; waiting for 1 approval from release-manager.`);
  const all = await page.locator('main').textContent();
  if (all.includes('started.')) throw new Error('the page says the waiting deployment started');
  await page.screenshot({ path: join(env.shotDir, 'deployment-requested.png'), fullPage: true });
  await env.api('POST', `/deployments/${id}/approve`, { comment: 'ok' }, env.adminToken);
  await env.waitStatus(id, 'succeeded');
  // The notice described the wait: it goes once the deployment moved on.
  await env.waitUntil(async () => !(await page.locator('#deployment-notice').isVisible()),
    'the "waiting" notice outlives the wait');
}

export async function notFoundScenario(env, open) {
  const page = await loginAs(env, open, 'rel-dep');
  await page.goto(`${env.base()}/#/deployments/999999`);
  await page.locator('main [role=alert]').waitFor();
  if (await page.locator('#deployment-log').count()) throw new Error('an empty log box shows under the 404');
  if ((await page.locator('main').textContent()).includes('connecting…')) throw new Error('"connecting…" under the 404');
  await page.goto(`${env.base()}/#/apps/nope`);
  await page.locator('main [role=alert]').waitFor();
  if ((await page.locator('main').textContent()).includes('Loading…')) throw new Error('"Loading…" beside the 404');
  await page.screenshot({ path: join(env.shotDir, 'app-not-found.png') });
}

export async function scheduledScenario(env, s, open) {
  const at = new Date(Date.now() + 3600 * 1000);
  const d = await env.api('POST', `/applications/${APP}/releases/1.0/builds/1/deploy`, { stage: 'Build', at: at.toISOString() }, s.depToken);
  const page = await open('rel-dep', undefined, { timezoneId: 'Europe/Berlin' });
  await env.login(page, 'rel-dep', USERS['rel-dep'].password);
  await page.goto(`${env.base()}/#/scheduled`);
  const rowOf = () => page.locator('tr', { has: page.getByRole('link', { name: `#${d.id}`, exact: true }) });
  const row = rowOf();
  await row.waitFor();
  const input = page.locator(`#move-${d.id}`);
  const local = (date) => page.evaluate((iso) => {
    const x = new Date(iso);
    const q = (n) => String(n).padStart(2, '0');
    return `${x.getFullYear()}-${q(x.getMonth() + 1)}-${q(x.getDate())}T${q(x.getHours())}:${q(x.getMinutes())}`;
  }, date.toISOString());
  // A good time: the row shows it at once, although focus was in the table.
  const later = new Date(Date.now() + 2 * 3600 * 1000);
  later.setSeconds(0, 0);
  await input.fill(await local(later));
  await row.getByRole('button', { name: 'Move' }).click();
  const utc = later.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  await env.waitText(page, `tr:has(a[href="#/deployments/${d.id}"]) td:nth-child(3)`, utc, 3000);
  await env.waitText(page, '#scheduled-status', `Deployment #${d.id} moved to`);
  await page.screenshot({ path: join(env.shotDir, 'scheduled-moved.png'), fullPage: true });
  // Empty, past and far-off times are refused in words before anything is sent.
  await input.fill('');
  await row.getByRole('button', { name: 'Move' }).click();
  await env.waitText(page, 'body', 'Choose a date and a time first.', 3000);
  const past = new Date(Date.now() - 5 * 60 * 1000);
  await input.fill(await local(past));
  await row.getByRole('button', { name: 'Move' }).click();
  await env.waitText(page, 'body', `The time is in the past: ${(await local(past)).slice(11, 16)}`, 3000);
  await input.fill(await local(new Date(Date.now() + 400 * 86400000)));
  await row.getByRole('button', { name: 'Move' }).click();
  await env.waitText(page, 'body', 'at most 366 days ahead', 3000);
  if ((await page.locator('body').textContent()).includes('Invalid time value')) throw new Error('a JavaScript exception text is shown');
  const unmoved = await env.api('GET', `/deployments/${d.id}`);
  if (Math.abs(new Date(unmoved.scheduled_at) - later) > 1500) throw new Error(`moved by a refused time: ${unmoved.scheduled_at}`);
  // Cancel asks for a reason; "Keep it" keeps it.
  await row.getByRole('button', { name: 'Cancel' }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.getByRole('button', { name: 'Keep it' }).click();
  if ((await env.api('GET', `/deployments/${d.id}`)).status !== 'scheduled') throw new Error('"Keep it" cancelled the deployment');
  await row.getByRole('button', { name: 'Cancel' }).click();
  await dialog.getByRole('button', { name: 'Cancel deployment' }).click();
  await dialog.getByText('Give a reason first.').waitFor();
  await dialog.getByLabel('Reason').fill('release moved to next week');
  await page.screenshot({ path: join(env.shotDir, 'scheduled-cancel-reason.png') });
  await dialog.getByRole('button', { name: 'Cancel deployment' }).click();
  await env.waitText(page, '#scheduled-status', `Deployment #${d.id} cancelled: release moved to next week`);
  // Redrawn: the row is gone at once, so it cannot be cancelled twice.
  if (await rowOf().count()) throw new Error('the cancelled deployment is still listed');
  const gone = await env.api('GET', `/deployments/${d.id}`);
  if (gone.status !== 'cancelled') throw new Error(`status ${gone.status}`);
  if (!JSON.stringify(gone.audit || []).includes('release moved to next week')) throw new Error(`the reason is not in the audit: ${JSON.stringify(gone.audit)}`);
}

// Viewers are offered no New release, New build or upload; the pages fit a phone.
export async function viewerAndPhoneScenario(env, open) {
  const viewer = await loginAs(env, open, 'rel-view');
  await viewer.goto(`${env.base()}/#/apps/${APP}`);
  await viewer.locator('table.matrix').waitFor();
  await viewer.goto(`${env.base()}/#/apps/${APP}/releases/2.0`);
  await viewer.locator('section.notes').waitFor();
  await viewer.goto(`${env.base()}/#/apps/${APP}/releases/2.0/builds/1`);
  await viewer.locator('#artifacts').waitFor();
  for (const what of ['New release', 'New build']) {
    if (await viewer.getByRole('link', { name: what }).count()) throw new Error(`a viewer is offered ${what}`);
  }
  if (await viewer.locator('#drop-zone').count()) throw new Error('a viewer is offered the upload');
  const phone = await open('rel-dep-phone', env.PHONE);
  await env.login(phone, 'rel-dep', USERS['rel-dep'].password);
  for (const [path, shot] of [[`/apps/${APP}/releases/2.0`, 'release-phone.png'], [`/apps/${APP}/releases/2.0/builds/1`, 'build-phone.png'],
    [`/deployments?application=${APP}`, 'deployments-history-phone.png'], [`/apps/${APP}/new-release`, 'release-new-phone.png']]) {
    await phone.goto(`${env.base()}/#${path}`);
    await phone.locator('main h1').waitFor();
    await phone.locator('main h2, main form').first().waitFor();
    await phone.screenshot({ path: join(env.shotDir, shot), fullPage: true });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`#${path} is ${overflow}px wider than the phone screen`);
  }
}

export function registerReleaseScenarios(step, env) {
  const s = {};
  const opener = (scenario) => (label, viewport, extra) => scenario.page(label, viewport, extra);
  const add = (name, fn) => step(`releases: ${name}`, (scenario) => fn(opener(scenario)));
  add('an application of its own with build 1 deployed and promoted by the automation', async () => setUp(env, s));
  add('a release with Markdown notes and links; a hostile note stays text', (open) => releaseNotesScenario(env, open));
  add('a build with notes; an artifact dropped on the page shows progress, sha256 and file count', (open) => buildUploadScenario(env, open));
  add('deployments history: filters in the URL without regard to case, duration, CSV, a target\'s page', (open) => historyScenario(env, s, open));
  add('a request waiting for approval says so, and the notice goes once it moved on', (open) => approvalNoticeScenario(env, s, open));
  add('a missing deployment or application shows only the error', (open) => notFoundScenario(env, open));
  add('scheduled: times checked in words, Move and Cancel (with a reason) redraw the list', (open) => scheduledScenario(env, s, open));
  add('a viewer is offered no New release, New build or upload; the pages fit a phone screen', (open) => viewerAndPhoneScenario(env, open));
}

export const register = registerReleaseScenarios;
