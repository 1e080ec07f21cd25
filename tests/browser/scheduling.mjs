// The scheduling suite: the demo application "shop" brought through the API
// to where the core suite leaves it (build 2 through every stage, build 1
// re-deployed to Production), then scheduling a re-deploy and seeing it fire,
// moving and cancelling from the Scheduled list, the deploy dialog from the
// keyboard, a rejection in the approvals inbox and a viewer's refusal.
import { join } from 'node:path';
import {
  T, USERS, api, base, login, shotDir, tokenFor, waitStatus, waitText, waitUntil,
} from './harness.mjs';
import {
  approvedAndDone, depIdFromUrl, openBoard, openBoardDialog, settleAutoPromotion, succeededOn,
} from './core.mjs';

export function register(step) {
  step('setup: build 2 through every stage, build 1 back on Production (through the API)', async () => {
    const stages = ['Integration', 'Testing', 'Production'];
    for (let i = 0; i < stages.length; i++) {
      if (!(await succeededOn(2, stages[i]))) {
        const d = await api('POST', '/applications/shop/releases/1.0.0/builds/2/deploy', { stage: stages[i] });
        await approvedAndDone(d.id);
      }
      await settleAutoPromotion(2, stages[i + 1]);
    }
    const back = await api('POST', '/applications/shop/releases/1.0.0/builds/1/deploy',
      { stage: 'Production', acknowledge_irreversible: true });
    await approvedAndDone(back.id);
  });

  step('schedule a re-deploy 3 s ahead and see it fire', async (scenario) => {
    const admin = await scenario.login('admin');
    const dialog = await openBoardDialog(admin, 'Re-Deploy 1.0.0 build 1 to Testing');
    await dialog.getByLabel('At a date and time').check();
    const when = await admin.evaluate(() => {
      const d = new Date(Date.now() + 3000);
      const p = (n) => String(n).padStart(2, '0');
      const s = d.getSeconds() ? `:${p(d.getSeconds())}` : '';  // Chromium drops ":00"
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}${s}`;
    });
    await dialog.locator('input[type=datetime-local]').fill(when);
    const utc = await dialog.locator('output.utc').textContent();
    if (!utc.includes('UTC') || !utc.includes('Europe/Berlin')) throw new Error(`no UTC/zone hint beside the time: ${utc}`);
    const wanted = new Date(await admin.evaluate((v) => new Date(v).toISOString(), when));
    // Build 2's migration ran on Testing too: acknowledge it.
    await dialog.locator('.preview[aria-busy="false"]').waitFor();
    const ack = dialog.getByLabel('I understand these cannot be undone by the rollback');
    if (await ack.count()) await ack.check();
    await dialog.getByRole('button', { name: 'Schedule Re-Deploy' }).click();
    await admin.waitForURL(/#\/deployments\/\d+$/);
    const id = depIdFromUrl(admin);
    const before = await api('GET', `/deployments/${id}`);
    // Fired immediately it would already be queued or running: it must wait for its time.
    if (before.status !== 'scheduled' && new Date() < wanted) throw new Error(`deployment #${id} is ${before.status} before its time`);
    if (!before.scheduled_at || Math.abs(new Date(before.scheduled_at) - wanted) > 1000)
      throw new Error(`scheduled_at is ${before.scheduled_at}, the dialog asked for ${wanted.toISOString()}`);
    await waitText(admin, '#deployment-status', 'succeeded', 60000);
    const after = await api('GET', `/deployments/${id}`);
    if (new Date(after.started_at) < new Date(after.scheduled_at))
      throw new Error(`deployment #${id} started at ${after.started_at}, before its time ${after.scheduled_at}`);
    const fired = await api('GET', `/deployments?application=shop&stage=Testing&limit=1000`);
    const same = fired.items.filter((d) => d.id === id);
    if (same.length !== 1) throw new Error(`deployment #${id} is listed ${same.length} times`);
  });

  step('scheduled list: move and cancel a scheduled deployment', async (scenario) => {
    const admin = await scenario.login('admin');
    const at = new Date(Date.now() + 3600 * 1000).toISOString();
    const d = await api('POST', '/applications/shop/releases/1.0.0/builds/2/deploy', { stage: 'Testing', at });
    await admin.goto(base + '/#/scheduled');
    await admin.getByRole('link', { name: `#${d.id}` }).waitFor();
    await admin.screenshot({ path: join(shotDir, 'scheduled.png') });
    const later = new Date(Date.now() + 7200 * 1000);
    // The input is in the browser's zone (Europe/Berlin here).
    const local = await admin.evaluate((iso) => {
      const x = new Date(iso);
      const q = (n) => String(n).padStart(2, '0');
      const s = x.getSeconds() ? `:${q(x.getSeconds())}` : '';
      return `${x.getFullYear()}-${q(x.getMonth() + 1)}-${q(x.getDate())}T${q(x.getHours())}:${q(x.getMinutes())}${s}`;
    }, later.toISOString());
    await admin.locator(`#move-${d.id}`).fill(local);
    await admin.locator('tr', { has: admin.getByRole('link', { name: `#${d.id}` }) }).getByRole('button', { name: 'Move' }).click();
    let now = {};
    await waitUntil(async () => {
      now = await api('GET', `/deployments/${d.id}`);
      return Math.abs(new Date(now.scheduled_at) - later) < 2000;
    }, () => `not moved: scheduled_at=${now.scheduled_at}, wanted ${later.toISOString()}`);
    await admin.locator('tr', { has: admin.getByRole('link', { name: `#${d.id}` }) }).getByRole('button', { name: 'Cancel' }).click();
    await admin.getByLabel('Reason').fill('not needed any more');
    await admin.locator('dialog[open]').getByRole('button', { name: 'Cancel deployment' }).click();
    await waitStatus(d.id, 'cancelled', T.short);
  });

  step('keyboard: the dialog opens from a focused button, keeps focus inside, Escape closes it and focus returns', async (scenario) => {
    const admin = await scenario.login('admin');
    await openBoard(admin);
    const button = admin.getByRole('button', { name: 'Re-Deploy 1.0.0 build 2 to Production' }).first();
    await button.focus();
    await admin.keyboard.press('Enter');
    await admin.locator('dialog[open]').waitFor();
    for (let i = 0; i < 12; i++) {
      await admin.keyboard.press('Tab');
      const inside = await admin.evaluate(() => !!document.activeElement.closest('dialog[open]'));
      if (!inside) throw new Error(`Tab ${i + 1} left the open dialog`);
    }
    await admin.keyboard.press('Escape');
    await admin.locator('dialog').waitFor({ state: 'detached' });
    const back = await admin.evaluate(() => document.activeElement.getAttribute('aria-label'));
    if (back !== 'Re-Deploy 1.0.0 build 2 to Production') throw new Error(`focus went to ${back}, not back to the button`);
  });

  step('approvals inbox: a release manager rejects a waiting deployment with a comment', async (scenario) => {
    const rita = await scenario.login('rita');
    const d = await api('POST', '/applications/shop/releases/1.0.0/builds/2/deploy', { stage: 'Production', comment: 'to be rejected' });
    await waitStatus(d.id, 'waiting', T.short);
    await rita.goto(base + '/#/approvals');
    const button = rita.getByRole('button', { name: `Reject deployment #${d.id}` });
    await button.waitFor();
    await rita.locator(`#c-${d.id}`).fill('not during the sale');
    await button.click();
    await rita.getByText(`Deployment #${d.id}: rejection recorded.`).waitFor();
    await waitStatus(d.id, 'cancelled', T.short);
    const after = await api('GET', `/deployments/${d.id}`);
    if (!(after.approvals || []).some((a) => a.user === 'rita' && a.decision === 'rejected' && a.comment === 'not during the sale'))
      throw new Error(`the rejection and its comment are not recorded: ${JSON.stringify(after.approvals)}`);
  });

  step('a viewer trying to deploy sees a clear refusal', async (scenario) => {
    const vic = await scenario.page('vic');
    await login(vic, 'vic', USERS.vic.password);
    await openBoard(vic);
    if (await vic.getByRole('button', { name: 'Verify files on prod-web' }).count())
      throw new Error('a viewer is offered "Verify files", which needs deployer');
    if (await vic.getByRole('button', { name: 'Test connection to the targets of Production' }).count())
      throw new Error('a viewer is offered "Test connection", which needs deployer');
    await vic.getByRole('button', { name: 'Re-Deploy 1.0.0 build 2 to Testing' }).first().click();
    const dialog = vic.locator('dialog[open]');
    await dialog.waitFor();
    await dialog.locator('.preview[aria-busy="false"]').waitFor();
    if (!(await dialog.getByRole('button', { name: /now$/ }).isDisabled())) throw new Error('a viewer may confirm a re-deploy');
    const text = await dialog.locator('.refusal').textContent();
    if (!/deployer/.test(text)) throw new Error(`the refusal does not say which role is needed: ${text}`);
    await vic.screenshot({ path: join(shotDir, 'viewer-refused.png') });
  });
}
