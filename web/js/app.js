// Entry point: session, navigation bar, hash routes and the page lifecycle.
import { setUnauthenticatedHandler, get } from './api.js';
import { h, clear, errorBox, flash, clearStaleFlash } from './dom.js';
import { route, current, go } from './router.js';
import { session, loadSession, logout, forget, hasRole } from './session.js';
import { renderLogin } from './pages/login.js';
import { renderDashboard } from './pages/dashboard.js';
import { renderBoard } from './pages/board.js';
import { renderRelease } from './pages/release.js';
import { renderBuild, renderManifest } from './pages/build.js';
import { renderDeployment } from './pages/deployment.js';
import { renderDeployments, renderScheduled, renderTargetHistory } from './pages/deployments.js';
import { renderNewRelease, renderNewBuild } from './pages/releases.js';
import { renderApprovals } from './pages/approvals.js';
import { renderAgents } from './pages/agents.js';
import { renderRollbackRecord } from './pages/rollback_record.js';
import { renderRollbackLogs } from './pages/rollback_logs.js';
import { renderUsers, renderUser } from './pages/users.js';
import { renderAudit } from './pages/audit.js';
import { renderConfig } from './pages/config.js';
import { renderSpecEditor, renderNewApplication } from './pages/spec_editor.js';
import { renderInsights } from './pages/insights.js';
import { renderWebhooks, renderWebhook } from './pages/webhooks.js';
import { renderApiReference } from './pages/api_reference.js';

route('/login', renderLogin);
route('/', renderDashboard);
route('/apps/{app}', renderBoard);
route('/apps/{app}/new-release', renderNewRelease);
route('/apps/{app}/releases/{rel}', renderRelease);
route('/apps/{app}/releases/{rel}/new-build', renderNewBuild);
route('/apps/{app}/releases/{rel}/builds/{n}', renderBuild);
route('/apps/{app}/releases/{rel}/builds/{n}/artifacts/{name}', renderManifest);
route('/deployments', renderDeployments);
route('/deployments/target/{target}', renderTargetHistory);
route('/deployments/{id}', renderDeployment);
route('/scheduled', renderScheduled);
route('/approvals', renderApprovals);
route('/agents', renderAgents);
route('/rollback-records', renderRollbackLogs);
route('/rollback-records/{rid}', renderRollbackRecord);
route('/users', renderUsers);
route('/users/{user}', renderUser);
route('/audit', renderAudit);
route('/config', renderConfig);
route('/apps/{app}/spec', renderSpecEditor);
route('/new-application', renderNewApplication);
route('/insights', renderInsights);
route('/webhooks', renderWebhooks);
route('/webhooks/{name}', renderWebhook);
route('/api', renderApiReference);

const main = document.getElementById('main');
let cleanup = null;
let returnTo = null;

const NAV = [
  ['#/', 'Applications'],
  ['#/deployments', 'Deployments'],
  ['#/scheduled', 'Scheduled'],
  ['#/approvals', 'Approvals'],
  ['#/rollback-records', 'Rollback logs'],
  ['#/agents', 'Agents'],
  ['#/users', 'Users', 'admin'],
  ['#/audit', 'Audit log', 'admin'],
  ['#/webhooks', 'Webhooks', 'admin'],
  ['#/config', 'Configuration'],
  ['#/insights', 'Insights'],
  ['#/api', 'API'],
];

function renderChrome() {
  const s = session();
  const bar = document.getElementById('topbar');
  bar.hidden = !s;
  const nav = clear(document.getElementById('nav'));
  const who = clear(document.getElementById('who'));
  if (!s) return;
  const here = location.hash || '#/';
  nav.append(h('ul', null, NAV.filter(([, , role]) => !role || hasRole(role)).map(([href, text]) => {
    const active = href === '#/' ? here === '#/' || here.startsWith('#/apps') : here.startsWith(href);
    return h('li', null, h('a', { href, 'aria-current': active ? 'page' : null },
      text, href === '#/approvals' ? approvalsBadge() : null));
  })));
  who.append(
    themeToggle(),
    h('span', { class: 'user', title: 'Signed in' }, s.user, ' ', h('span', { class: 'role' }, s.role)),
    h('button', { type: 'button', class: 'secondary small', onclick: onLogout }, 'Log out'));
}

// "Dark mode" toggle (web/js/theme.js keeps the choice).
function themeToggle() {
  const theme = window.repriseTheme;
  if (!theme) return null;
  const button = h('button', { type: 'button', class: 'secondary small theme-toggle', id: 'theme-toggle',
    'aria-pressed': theme.current() === 'dark' ? 'true' : 'false' }, 'Dark mode');
  button.addEventListener('click', () => button.setAttribute('aria-pressed', theme.toggle() === 'dark' ? 'true' : 'false'));
  return button;
}

// The number of deployments waiting for my approval, on the "Approvals" link;
// refreshed on every navigation and every 30 s.
let approvalsCount = 0;
function approvalsBadge() {
  if (!approvalsCount) return null;
  return [h('span', { class: 'nav-badge', id: 'approvals-badge', 'aria-hidden': 'true' }, String(approvalsCount)),
    h('span', { class: 'sr-only' }, ` (${approvalsCount} waiting for your approval)`)];
}

async function refreshApprovalsBadge() {
  if (!session()) return;
  let count = approvalsCount;
  try {
    count = (await get('/me/approvals', { quiet401: true })).count || 0;
  } catch {
    return;  // the badge is a hint: keep the last count
  }
  if (count !== approvalsCount) {
    approvalsCount = count;
    renderChrome();
  }
}
setInterval(refreshApprovalsBadge, 30000);
window.addEventListener('reprise:approvals-changed', refreshApprovalsBadge);

async function onLogout() {
  try {
    await logout();
  } catch {
    forget();
  }
  go('#/login');
}

async function navigate() {
  if (cleanup) {
    try { cleanup(); } catch { /* page already gone */ }
    cleanup = null;
  }
  const match = current();
  if (!session() && (!match || match.path !== '/login')) {
    returnTo = location.hash && location.hash !== '#/login' ? location.hash : null;
    go('#/login');
    return;
  }
  renderChrome();
  refreshApprovalsBadge();
  clearStaleFlash();
  clear(main);
  if (!match) {
    main.append(h('h1', null, 'Not found'), h('p', null, 'There is no page at ', h('code', null, location.hash), '.'));
    return;
  }
  const ctx = {
    params: match.params,
    query: match.query,
    afterLogin: () => {
      const target = returnTo || '#/';
      returnTo = null;
      go(target);
    },
  };
  try {
    const result = await match.render(main, ctx);
    if (typeof result === 'function') cleanup = result;
  } catch (e) {
    if (e.status === 401) return;
    main.append(errorBox(e));
  }
  // Move focus to the new page's heading for keyboard and screen reader users.
  const heading = main.querySelector('h1');
  if (heading && document.activeElement === document.body) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

setUnauthenticatedHandler(() => {
  forget();
  if (location.hash !== '#/login') {
    returnTo = location.hash;
    flash('Your session has ended. Please log in again.');
    go('#/login');
  }
});

window.addEventListener('hashchange', navigate);

(async () => {
  try {
    await loadSession();
  } catch (e) {
    main.append(errorBox(e));
    return;
  }
  navigate();
})();
