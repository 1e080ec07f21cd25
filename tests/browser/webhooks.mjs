// Browser scenarios of the Webhooks page (#/webhooks): a refused URL shows
// the server's reason, creating a webhook, the secret shown masked and kept,
// a test delivery and redelivering it. The server runs without
// --webhook-allow-private and the webhook is disabled: nothing is sent
// anywhere (its deliveries fail with "the webhook is disabled").
import { join } from 'node:path';
import { axeCheck } from './people.mjs';

async function shot(env, page, name) {
  await page.screenshot({ path: join(env.shotDir, name), fullPage: true });
}

async function webhooksScenario(env, open) {
  const page = await open('admin');
  await env.login(page, 'admin', env.adminPassword);
  await page.goto(env.base() + '/#/webhooks');
  await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
  await page.getByText('No webhooks yet.').waitFor();

  await page.getByLabel('Name').fill('chat');
  await page.getByLabel('URL').fill('http://127.0.0.1:9/hook');
  await page.getByLabel('Secret').fill('browser-secret-0123456789');
  await page.getByRole('button', { name: 'Create webhook' }).click();
  await page.getByText('a loopback address').waitFor();
  await shot(env, page, 'webhooks-refused.png');

  // A public address, never contacted: the webhook is disabled.
  await page.getByLabel('URL').fill('http://8.8.8.8/hook');
  await page.getByLabel('Enabled').uncheck();
  await page.getByLabel('agent.offline').check();
  await page.getByRole('button', { name: 'Create webhook' }).click();
  await page.getByText('Webhook chat saved.').waitFor();
  await page.locator('#webhooks-table tr[data-webhook="chat"]').waitFor();
  await shot(env, page, 'webhooks.png');
  await axeCheck(page, '#/webhooks');

  await page.getByRole('link', { name: 'chat', exact: true }).click();
  await page.getByRole('heading', { name: 'chat', level: 1 }).waitFor();
  const secret = page.getByLabel('Secret');
  await env.waitUntil(async () => (await secret.inputValue()) === '******', async () => `the secret field shows ${await secret.inputValue()}`);
  await page.getByLabel('Format').selectOption('slack');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  const stored = await env.api('GET', '/webhooks/chat');
  if (stored.format !== 'slack' || stored.secret !== '******') throw new Error(`stored: ${JSON.stringify(stored)}`);

  await page.getByRole('button', { name: 'Send test' }).click();
  await page.getByText(/Test delivery \d+ queued\./).waitFor();
  const rows = page.locator('#deliveries-table tbody tr');
  await env.waitUntil(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    return (await page.locator('#deliveries-table', { hasText: 'the webhook is disabled' }).count()) === 1;
  }, async () => `deliveries: ${await rows.allInnerTexts()}`);
  await page.getByRole('button', { name: /^Redeliver / }).first().click();
  await page.getByText(/Queued again as delivery \d+\./).waitFor();
  await env.waitUntil(async () => (await rows.count()) === 2, async () => `${await rows.count()} deliveries, not 2`);
  await shot(env, page, 'webhook.png');
  await axeCheck(page, '#/webhooks/chat');

  // Both pages fit a phone screen (the tables scroll inside their frame).
  const phone = await open('admin-phone', env.PHONE);
  await env.login(phone, 'admin', env.adminPassword);
  for (const [hash, heading, name] of [['#/webhooks', 'Webhooks', 'webhooks-phone.png'], ['#/webhooks/chat', 'chat', 'webhook-phone.png']]) {
    await phone.goto(env.base() + '/' + hash);
    await phone.getByRole('heading', { name: heading, level: 1 }).waitFor();
    await phone.locator('main table').first().waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`${hash} is ${overflow} px wider than a phone screen`);
    await shot(env, phone, name);
  }
}

export function register(step, env) {
  step('webhooks: refused URL, create, masked secret kept, test delivery and redeliver',
    (scenario) => webhooksScenario(env, (label, viewport, extra) => scenario.page(`webhooks-${label}`, viewport, extra)));
}
