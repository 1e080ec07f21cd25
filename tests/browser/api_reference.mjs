// The API reference page (#/api): drawn from GET /api/v1/openapi.json, grouped
// by tag, each operation with its method, path and role; the filter box
// narrows the list; it fits a phone screen. Needs no data of its own.
import { join } from 'node:path';

async function openReference(env, page) {
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(env.base() + '/#/api');
  await page.getByRole('heading', { name: 'API reference', level: 1 }).waitFor();
  await page.locator('.api-op').first().waitFor();
}

const visibleOps = (page) => page.locator('.api-op:visible').count();

export function register(step, env) {
  step('the reference lists every operation of the document, grouped by tag', async (scenario) => {
    const page = await scenario.page('admin');
    await openReference(env, page);
    const doc = await (await fetch(env.base() + '/api/v1/openapi.json')).json();
    let operations = 0;
    for (const item of Object.values(doc.paths)) operations += Object.keys(item).length;
    const shown = await page.locator('.api-op').count();
    if (shown !== operations) throw new Error(`the page shows ${shown} operations; the document has ${operations}`);
    for (const tag of ['Deployments', 'Builds', 'Agents', 'Session']) {
      await page.locator(`.api-group[data-tag="${tag}"] h2`, { hasText: tag }).waitFor();
    }
    // The deploy operation: method badge, path, role, body fields once opened.
    const deploy = page.locator('.api-op', { hasText: '/builds/{n}/deploy' });
    await deploy.locator('.api-method', { hasText: 'POST' }).waitFor();
    await deploy.locator('.api-role', { hasText: 'deployer' }).waitFor();
    await deploy.locator('summary').click();
    await deploy.locator('.api-fields code', { hasText: 'acknowledge_irreversible' }).waitFor();
    await deploy.locator('.api-fields code', { hasText: 'variables.value' }).waitFor();
    await page.screenshot({ path: join(env.shotDir, 'reference.png'), fullPage: false });
  });

  step('the filter box narrows the operations and says how many are left', async (scenario) => {
    const page = await scenario.page('admin-filter');
    await openReference(env, page);
    const all = await visibleOps(page);
    await page.getByLabel('Filter').fill('rollback-records execute');
    await env.waitUntil(async () => (await visibleOps(page)) === 1, 'one operation left after filtering');
    await page.locator('.api-op:visible .api-path', { hasText: '/rollback-records/{rid}/execute' }).waitFor();
    await env.waitText(page, '#api-count', '1 operation');
    if (await page.locator('.api-group[data-tag="Users"]').isVisible()) throw new Error('the Users group is still shown');
    await page.getByLabel('Filter').fill('');
    await env.waitUntil(async () => (await visibleOps(page)) === all, 'every operation back after clearing');
  });

  step('the reference fits a phone screen', async (scenario) => {
    const page = await scenario.page('phone', env.PHONE, { isMobile: true, hasTouch: true });
    await openReference(env, page);
    const op = page.locator('.api-op', { hasText: 'Create a user' });
    await op.locator('summary').click();
    await op.locator('.api-fields').waitFor();
    await op.scrollIntoViewIfNeeded();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`the page scrolls sideways by ${overflow}px at phone width`);
    await page.screenshot({ path: join(env.shotDir, 'reference-phone.png'), fullPage: false });
  });
}
