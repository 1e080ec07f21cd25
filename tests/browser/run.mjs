// Runs one suite of web UI scenarios in headless Chromium (playwright-core)
// against a real reprise-server of its own (see harness.mjs).
// Usage: node run.mjs SUITE REPRISE_SERVER SCREENSHOT_DIR [CHROMIUM]
// Screenshots land in SCREENSHOT_DIR/SUITE. Exits non-zero when any scenario
// of the suite failed.
import { runSuite } from './harness.mjs';

// Suite name -> module exporting register(step, env). One ctest entry each.
const SUITES = {
  core: './core.mjs',
  scheduling: './scheduling.mjs',
  operations: './operations.mjs',
  'rollback-records': './rollback_records.mjs',
  people: './people.mjs',
  webhooks: './webhooks.mjs',
  config: './config.mjs',
  insights: './insights.mjs',
  releases: './releases.mjs',
  pages: './pages.mjs',
  'api-reference': './api_reference.mjs',
};

const [suite, serverBin, shotRoot, chromiumPath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!SUITES[suite] || !serverBin || !shotRoot) {
  console.error(`usage: node run.mjs SUITE REPRISE_SERVER SCREENSHOT_DIR [CHROMIUM]; suites: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
const { register } = await import(SUITES[suite]);
await runSuite(suite, register, { serverBin, shotRoot, chromiumPath });
