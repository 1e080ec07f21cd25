// The pages suite: every page of the UI, on the demo's data, checked by
// axe-core (no serious or critical violation) in the light and the dark
// theme at desktop width, and at phone width (390 px) in both themes without
// horizontal scrolling; a screenshot of each under pages/.
import { join } from 'node:path';
import { axeCheck } from './people.mjs';

// [hash, the page's h1 (a regular expression), screenshot name]
const PAGES = [
  ['#/', /Applications/, 'dashboard'],
  ['#/apps/shop', /shop/, 'board'],
  ['#/apps/shop/spec', /shop/, 'spec-editor'],
  ['#/new-application', /application/i, 'new-application'],
  ['#/apps/shop/new-release', /release/i, 'new-release'],
  ['#/apps/shop/releases/1.0.0', /shop 1\.0\.0/, 'release'],
  ['#/apps/shop/releases/1.0.0/new-build', /build/i, 'new-build'],
  ['#/apps/shop/releases/1.0.0/builds/2', /build 2/, 'build'],
  ['#/apps/shop/releases/1.0.0/builds/2/artifacts/web', /Artifact web/, 'manifest'],
  ['#/deployments', /Deployments/, 'deployments'],
  ['#/deployments/1', /#1|Deployment/, 'deployment'],
  ['#/deployments/target/prod-web', /prod-web/, 'target-history'],
  ['#/scheduled', /Scheduled/, 'scheduled'],
  ['#/approvals', /Approvals/, 'approvals'],
  ['#/rollback-records', /Rollback logs/, 'rollback-logs'],
  ['#/agents', /Agents/, 'agents'],
  ['#/config', /Configuration/, 'config'],
  ['#/insights', /Insights/, 'insights'],
  ['#/users', /Users/, 'users'],
  ['#/users/rita', /rita/, 'user'],
  ['#/audit', /Audit log/, 'audit'],
  ['#/api', /API reference/, 'api-reference'],
];

// Waits until the page has drawn what it loads (its "Loading…" lines gone).
async function settled(page) {
  await page.locator('main p[role=status]', { hasText: 'Loading…' }).first()
    .waitFor({ state: 'detached', timeout: 15000 });
}

export function register(step, env) {
  step('every page passes axe-core in light and dark', async (scenario) => {
    const failures = [];
    for (const theme of ['light', 'dark']) {
      const page = await scenario.page(`admin-${theme}`, undefined, { colorScheme: theme });
      await env.login(page, 'admin', env.adminPassword);
      for (const [hash, heading, name] of PAGES) {
        await page.goto(env.base() + '/' + hash);
        await page.getByRole('heading', { name: heading, level: 1 }).first().waitFor();
        await settled(page);
        await page.screenshot({ path: join(env.shotDir, `${name}${theme === 'dark' ? '-dark' : ''}.png`), fullPage: true });
        await axeCheck(page, `${hash} (${theme})`).catch((e) => failures.push(e.message));
      }
    }
    if (failures.length) throw new Error(failures.join('\n'));
  });

  step('the stylesheet applies whole at desktop width (no rule lost to an unclosed block)', async (scenario) => {
    const page = await scenario.page('admin-css');
    await env.login(page, 'admin', env.adminPassword);
    await page.goto(env.base() + '/#/apps/shop');
    await page.locator('.pipeline').waitFor();
    // The stylesheet's last rule set (the status icons) and the board's pipeline strip.
    const got = await page.evaluate(() => ({
      pipeline: getComputedStyle(document.querySelector('.pipeline')).display,
      icon: getComputedStyle(document.querySelector('.badge[data-status]'), '::before').content,
    }));
    if (got.pipeline !== 'flex') throw new Error(`the pipeline strip is display: ${got.pipeline}, not flex`);
    if (!got.icon || got.icon === 'none') throw new Error('status badges have no icon');
  });

  step('every page fits a phone screen in light and dark', async (scenario) => {
    const failures = [];
    for (const theme of ['light', 'dark']) {
      const page = await scenario.page(`phone-${theme}`, env.PHONE, { colorScheme: theme, isMobile: true, hasTouch: true });
      await env.login(page, 'admin', env.adminPassword);
      for (const [hash, heading, name] of PAGES) {
        await page.goto(env.base() + '/' + hash);
        await page.getByRole('heading', { name: heading, level: 1 }).first().waitFor();
        await settled(page);
        await page.screenshot({ path: join(env.shotDir, `${name}-phone${theme === 'dark' ? '-dark' : ''}.png`), fullPage: true });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 2) failures.push(`${hash} (${theme}) is ${overflow}px wider than the phone screen`);
      }
    }
    if (failures.length) throw new Error(failures.join('\n'));
  });
}
