// Agents: status, version, last seen, the targets each one serves, approval
// of pending agents, and (admins) enrollment: a token shown once with the
// exact `reprise-agent` command line to paste on the target machine.
import { get, post, enc } from '../api.js';
import { h, append, clear, timeEl, relTime, statusBadge, errorBox, loading, flash, table } from '../dom.js';
import { hasRole } from '../session.js';
import { BUSY_MS, IDLE_MS, repeat } from '../poll.js';

export async function renderAgents(main) {
  main.append(h('h1', null, 'Agents'));
  const admin = hasRole('admin');
  // Agents on their way in (a token made here, one waiting for approval) are
  // looked for often; otherwise the list changes seldom.
  let tokenMade = false;
  let pendingSeen = false;
  let poll = null;
  if (admin) main.append(enrollmentPanel(() => { tokenMade = true; if (poll) poll.now(); }));
  const body = h('div', null, loading());
  main.append(h('h2', null, 'Connected and known agents'), body);
  const load = async () => {
    let r;
    try {
      r = await get('/agents?limit=1000');
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    const items = r.items || [];
    pendingSeen = items.some((a) => a.approved === false || a.status === 'pending');
    if (!items.length) { clear(body).append(h('p', { class: 'muted' }, 'No agents have connected yet.')); return; }
    clear(body).append(table(['Agent', 'Connection', 'Approval', 'Last seen', 'Address', 'Version', 'Targets', ''], items.map((a) => {
      const pending = a.approved === false || a.status === 'pending';
      const lastSeen = a.last_seen || null;
      const targets = a.targets || [];
      return h('tr', { 'data-agent': a.name },
        h('th', { scope: 'row' }, a.name, a.key_fingerprint ? h('div', { class: 'small muted hash', title: 'key fingerprint' }, a.key_fingerprint) : null),
        h('td', null, statusBadge(a.online ? 'online' : 'offline')),
        h('td', null, statusBadge(pending ? 'pending' : 'approved')),
        h('td', null, timeEl(lastSeen), lastSeen ? h('span', { class: 'small muted' }, ` (${relTime(lastSeen)})`) : null),
        h('td', null, a.address || ''),
        h('td', null, a.version || ''),
        h('td', { class: 'agent-targets' }, targets.length
          ? targets.map((t, i) => [i ? ', ' : '', h('a', { href: '#/config' }, t)])
          : h('span', { class: 'muted' }, 'none')),
        h('td', null, pending && admin ? h('button', { type: 'button', class: 'small', 'aria-label': `Approve agent ${a.name}`, onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await post(`/agents/${enc(a.name)}/approve`, {});
            flash(`Agent ${a.name} approved.`, 'ok');
            if (poll) poll.now(); else load();
          } catch (e) {
            flash(e.message);
            ev.target.disabled = false;
          }
        } }, 'Approve') : null));
    })));
  };
  await load();
  poll = repeat(load, () => (tokenMade || pendingSeen ? BUSY_MS : IDLE_MS));
  return poll.stop;
}

// Single-quotes a value for a POSIX shell when it needs it.
export function shellQuote(s) {
  return /^[A-Za-z0-9_./:@=,+-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`;
}

export function agentCommand({ address, name, root, token, fingerprint, tls }) {
  const parts = ['reprise-agent', '--server', address, '--name', name, '--root', root, '--enroll-token', token];
  if (tls && fingerprint) parts.push('--fingerprint', fingerprint);
  if (!tls) parts.push('--plain');
  return parts.map((p, i) => (i === 0 || p.startsWith('--') ? p : shellQuote(p))).join(' ');
}

function enrollmentPanel(onToken) {
  const section = h('section', { class: 'card enroll', 'aria-labelledby': 'enroll-h' });
  const name = h('input', { id: 'enroll-name', value: 'web-01', autocomplete: 'off', spellcheck: 'false' });
  const root = h('input', { id: 'enroll-root', value: '/srv/app', autocomplete: 'off', spellcheck: 'false' });
  const hours = h('input', { id: 'enroll-hours', type: 'number', min: '1', max: '720', value: '24' });
  const pre = h('input', { id: 'enroll-pre', type: 'checkbox' });
  const result = h('div', { class: 'enroll-result', role: 'status' });
  const button = h('button', { type: 'button', class: 'primary' }, 'Create enrollment token');
  button.addEventListener('click', async () => {
    if (button.getAttribute('aria-disabled') === 'true') return;
    clear(result);
    const n = name.value.trim();
    const ttl = Number(hours.value);
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/.test(n)) { result.append(h('p', { class: 'error-text' }, 'The agent name is letters, digits, ".", "_" and "-".')); return; }
    if (!root.value.startsWith('/')) { result.append(h('p', { class: 'error-text' }, 'The root must be an absolute directory (start with /).')); return; }
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 720) { result.append(h('p', { class: 'error-text' }, 'Valid for 1 to 720 hours.')); return; }
    button.setAttribute('aria-disabled', 'true');
    try {
      const info = await get('/agents/enrollment-info');
      const created = await post('/agents/enrollment-tokens', { pre_approved: pre.checked, expires_in_seconds: ttl * 3600 });
      const address = info.address || `${location.hostname}:${info.port}`;
      const command = agentCommand({ address, name: n, root: root.value, token: created.token, fingerprint: info.fingerprint, tls: info.tls });
      const cmd = h('pre', { class: 'code enroll-command', tabindex: '0', 'aria-label': 'Command line for the target machine' }, command);
      append(result, [
        h('p', { class: 'warn' }, 'Shown once: copy it now. The server keeps only its hash.'),
        h('p', null, `Run on the target machine (the token enrolls agents for ${ttl} h${pre.checked ? ', approved at once' : '; approve them below'}):`),
        cmd,
        h('button', { type: 'button', class: 'secondary small', onclick: () => copy(command, cmd) }, 'Copy'),
        !info.listening ? h('p', { class: 'error-text' }, 'This server does not listen for agents (--agent-port -1).') : null,
        info.tls ? h('p', { class: 'small muted' }, 'Server certificate fingerprint: ', h('code', { class: 'hash' }, info.fingerprint))
          : h('p', { class: 'small muted' }, 'Plain TCP: only for a server on loopback.'),
        h('p', { class: 'small muted' }, 'To keep the token out of ps, set REPRISE_ENROLL_TOKEN instead of --enroll-token.')]);
      onToken();
    } catch (e) {
      result.append(errorBox(e));
    } finally {
      button.removeAttribute('aria-disabled');
    }
  });
  section.append(h('h2', { id: 'enroll-h' }, 'Enroll an agent'),
    h('div', { class: 'enroll-fields' },
      h('div', { class: 'field' }, h('label', { for: 'enroll-name' }, 'Agent name'), name),
      h('div', { class: 'field' }, h('label', { for: 'enroll-root' }, 'Root directory on its machine'), root),
      h('div', { class: 'field' }, h('label', { for: 'enroll-hours' }, 'Token valid for (hours)'), hours),
      h('div', { class: 'checkbox' }, pre, h('label', { for: 'enroll-pre' }, 'Approve agents it enrolls at once'))),
    h('div', { class: 'actions' }, button), result);
  return section;
}

async function copy(text, el) {
  try {
    await navigator.clipboard.writeText(text);
    flash('Copied.', 'ok');
  } catch {
    // No clipboard (plain http): select the text for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    flash('Selected: press Ctrl+C to copy.', 'ok');
  }
}
