// The operations suite: applications of their own (a plan with manual
// steps, a live log through a relay the test can cut) and the agents page,
// with a new agent enrolling and being approved.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ADMIN_TOKEN, T, USERS, agentPort, api, base, children, dataDir, login, serverBinary, serverLog, shotDir,
  startRelay, temp, waitStatus, waitText, waitUntil,
} from './harness.mjs';

export function register(step) {
  step('agents page: the local agent is listed online and approved', async (scenario) => {
    const admin = await scenario.login('admin');
    await admin.goto(base + '/#/agents');
    await admin.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
    const row = admin.locator('tr', { has: admin.getByRole('rowheader', { name: /local/ }) });
    await row.waitFor();
    const text = await row.textContent();
    if (!text.includes('online') || !text.includes('approved')) throw new Error(`agent row: ${text}`);
  });

  step('a plan paused at a manual step is continued from the approvals inbox by a deployer', async (scenario) => {
    // A target of its own: int-web belongs to shop.
    await api('PUT', '/targets/checks-web', { environment: 'Integration', agent: 'local', path: join(dataDir, 'targets', 'checks-web') });
    await api('PUT', '/applications/checks', {
      description: 'a plan with a manual step',
      pipeline: [{ stage: 'Checks', environment: 'Integration', targets: ['checks-web'], plan: 'checked' }],
      plans: { checked: '- manual: { message: "Check the smoke tests", role: deployer }\n- log: "checked"\n' },
    });
    await api('POST', '/applications/checks/releases', { number: '1.0' });
    await api('POST', '/applications/checks/releases/1.0/builds', {});
    const d = await api('POST', '/applications/checks/releases/1.0/builds/1/deploy', { stage: 'Checks' });
    await waitUntil(async () => (await api('GET', `/deployments/${d.id}`)).manual,
      `deployment #${d.id} never paused at the manual step`);
    const dave = await scenario.page('dave');
    await login(dave, 'dave', USERS.dave.password);
    await dave.goto(base + '/#/approvals');
    await dave.getByText('Manual step: Check the smoke tests').waitFor();
    await dave.getByRole('button', { name: `Continue deployment #${d.id}` }).click();
    await waitStatus(d.id, 'succeeded', T.short);
    await dave.goto(base + `/#/deployments/${d.id}`);
    await waitText(dave, '#deployment-log', 'checked');
    await dave.goto(base + '/#/deployments');
    await dave.getByLabel('Status').selectOption('succeeded');
    await dave.getByRole('button', { name: 'Filter' }).click();
    await dave.getByRole('link', { name: `#${d.id}`, exact: true }).waitFor();
  });

  step('live log: lines arrive over server-sent events, a dropped stream reconnects without repeating lines; progress bars; secrets masked', async (scenario) => {
    const SECRET = 'sup3r-s3cret-api-key-value';
    await api('PUT', '/targets/live-web', { environment: 'Integration', agent: 'local', path: join(dataDir, 'targets', 'live-web') });
    await api('PUT', '/applications/live', {
      description: 'a plan that pauses after deploying',
      variables: { ApiKey: { value: SECRET, sensitive: true } },
      pipeline: [{ stage: 'Live', environment: 'Integration', targets: ['live-web'], plan: 'paused' }],
      plans: { paused: '- log: "before the pause, key $ApiKey"\n- deploy-artifact: { artifact: web }\n'
        + '- manual: { message: "Hold the line", role: deployer }\n- log: "after the pause"\n'
        + '- manual: { message: "Second hold", role: deployer }\n- log: "the end"\n' },
    });
    await api('POST', '/applications/live/releases', { number: '1.0' });
    await api('POST', '/applications/live/releases/1.0/builds', {});
    // The demo's build 2 artifact, uploaded again under this build: the same bytes share one blob.
    const bytes = Buffer.from(await (await fetch(base + '/api/v1/applications/shop/releases/1.0.0/builds/2/artifacts/web',
      { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).arrayBuffer());
    const put = await fetch(base + '/api/v1/applications/live/releases/1.0/builds/1/artifacts/web',
      { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: bytes });
    if (!put.ok) throw new Error(`artifact upload answered ${put.status}: ${await put.text()}`);
    const manifest = await api('GET', '/applications/live/releases/1.0/builds/1/artifacts/web/manifest');
    const files = manifest.manifest.file_count;
    if (!(files > 0)) throw new Error(`the manifest counts no files: ${JSON.stringify(manifest).slice(0, 500)}`);

    const d = await api('POST', '/applications/live/releases/1.0/builds/1/deploy', { stage: 'Live' });
    // This page reaches the server through a TCP relay, so the test can cut its connections.
    const relay = await startRelay();
    const page = await scenario.page('live');
    const streams = [];
    page.on('request', (r) => { if (r.resourceType() === 'eventsource' && r.url().includes(`/deployments/${d.id}/log`)) streams.push(r); });
    try {
      await login(page, 'dave', USERS.dave.password, relay.base);
      await page.goto(relay.base + `/#/deployments/${d.id}`);
      await waitText(page, '#deployment-log', 'before the pause');
      await waitText(page, '#deployment-status', 'running');
      await page.locator('#deployment-log', { hasText: 'Hold the line' }).waitFor();
      await waitText(page, '#log-state', 'live');
      if (streams.length < 1) throw new Error('the deployment page did not open an event stream for the log');
      if ((await page.locator('#deployment-log').textContent()).includes('after the pause')) throw new Error('the log ran ahead of the manual step');

      // Per-target progress while the plan waits: every file of the artifact extracted.
      const bar = page.getByLabel('live-web files extracted');
      await bar.waitFor();
      const [value, max] = [Number(await bar.getAttribute('value')), Number(await bar.getAttribute('max'))];
      if (!(max === files && value === max)) {
        const t = (await api('GET', `/deployments/${d.id}`)).targets;
        throw new Error(`progress shows ${value} of ${max} files, the artifact has ${files}; targets: ${JSON.stringify(t)}`);
      }
      await page.screenshot({ path: join(shotDir, 'deployment-progress.png'), fullPage: true });

      // Sensitive values never reach the page.
      const html = await page.content();
      if (html.includes(SECRET)) throw new Error('the secret appears in the deployment page');
      await waitText(page, '#deployment-log', 'key ******');

      // Cut the open stream's connection; while it is down the plan goes on.
      // The browser reconnects with Last-Event-ID and shows only what is new.
      relay.cut();
      await api('POST', `/deployments/${d.id}/continue`, {});
      await waitUntil(() => streams.length >= 2,
        () => `the log stream did not reconnect (${streams.length} stream requests)`);
      // It resumes after the last line it has: Last-Event-ID once a line came over the stream, else ?after=.
      const headers = await streams[1].allHeaders();
      const after = Number(new URL(streams[1].url()).searchParams.get('after'));
      if (!(Number(headers['last-event-id']) > 0 || after > 0))
        throw new Error(`the reconnect does not say where to resume: ${streams[1].url()} ${JSON.stringify(headers)}`);
      // The plan is paused again: what was logged while the stream was down arrives over the new stream.
      await waitText(page, '#deployment-log', 'Second hold', T.deploy);
      await waitText(page, '#log-state', 'live');
      await api('POST', `/deployments/${d.id}/continue`, {});
      await waitText(page, '#deployment-log', 'the end', T.deploy);
      await waitText(page, '#deployment-status', 'succeeded', T.deploy);
      const texts = await page.locator('#deployment-log .line').allTextContents();
      for (const needle of ['before the pause', 'after the pause', 'the end', 'a deployer to continue: Hold the line',
        'a deployer to continue: Second hold']) {
        const n = texts.filter((t) => t.includes(needle)).length;
        if (n !== 1) throw new Error(`"${needle}" shows ${n} times in the log after the reconnect:\n${texts.join("\n")}`);
      }
      // The context shows the sensitive variable masked.
      const ctx = await api('GET', `/deployments/${d.id}`);
      if (JSON.stringify(ctx).includes(SECRET)) throw new Error('the deployment JSON carries the secret');
    } finally {
      relay.close();
    }
  });

  step('agents page: a new agent enrolls as pending and an admin approves it', async (scenario) => {
    const admin = await scenario.login('admin');
    const fp = /certificate sha256 ([0-9a-fA-F:]+)/.exec(serverLog);
    if (!fp) throw new Error(`the server did not print its certificate fingerprint:\n${serverLog}`);
    const { token } = await api('POST', '/agents/enrollment-tokens', {});
    const agentBin = join(dirname(serverBinary), 'reprise-agent');
    const root = join(temp, 'ext-agent');
    mkdirSync(root, { recursive: true });
    const agent = spawn(agentBin, ['--server', `127.0.0.1:${agentPort}`, '--name', 'ext-01', '--root', root,
      '--fingerprint', fp[1], '--heartbeat-ms', '500', '--quiet'], {
      env: { ...process.env, REPRISE_ENROLL_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(agent);
    let agentLog = '';
    agent.stdout.on('data', (x) => { agentLog += x; });
    agent.stderr.on('data', (x) => { agentLog += x; });
    // The admin opens the page once the agent has asked to join (the page
    // also refreshes by itself, every 5 s).
    await waitUntil(async () => (await api('GET', '/agents?limit=1000')).items.some((a) => a.name === 'ext-01'),
      () => `agent ext-01 never asked to join:\n${agentLog}`);
    await admin.goto(base + '/#/agents');
    const approve = admin.getByRole('button', { name: 'Approve agent ext-01' });
    await approve.waitFor({ timeout: T.short }).catch((e) => { throw new Error(`${e.message}\nagent output: ${agentLog}`); });
    await admin.screenshot({ path: join(shotDir, 'agents-pending.png'), fullPage: true });
    await approve.click();
    await admin.getByText('Agent ext-01 approved.').waitFor();
    const row = admin.locator('tr', { has: admin.getByRole('rowheader', { name: /ext-01/ }) });
    let text = '';
    await waitUntil(async () => {
      text = await row.textContent();
      return text.includes('approved') && text.includes('online');
    }, () => `agent row after approval: ${text}`);
    const listed = (await api('GET', '/agents?limit=1000')).items.find((a) => a.name === 'ext-01');
    if (!listed || listed.status !== 'online') throw new Error(`GET /agents lists ext-01 as ${JSON.stringify(listed)}`);
  });
}
