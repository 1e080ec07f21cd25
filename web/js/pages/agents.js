// Agents: status, last seen, approval of pending agents.
import { get, post, enc } from '../api.js';
import { h, clear, timeEl, relTime, statusBadge, errorBox, loading, flash, table } from '../dom.js';

export async function renderAgents(main) {
  main.append(h('h1', null, 'Agents'));
  const body = h('div', null, loading());
  main.append(body);
  const load = async () => {
    let r;
    try {
      r = await get('/agents?limit=1000');
    } catch (e) {
      clear(body);
      if (e.status === 404) body.append(h('p', { class: 'warn', role: 'status' }, 'This server does not offer the agents API yet (GET /api/v1/agents answered 404).'));
      else body.append(errorBox(e));
      return;
    }
    const items = r.items || [];
    if (!items.length) { clear(body).append(h('p', { class: 'muted' }, 'No agents have connected yet.')); return; }
    clear(body).append(table(['Agent', 'Connection', 'Approval', 'Last seen', 'Address', 'Version', 'Targets', ''], items.map((a) => {
      const pending = a.approved === false || a.status === 'pending';
      const lastSeen = a.last_seen || null;
      return h('tr', null,
        h('th', { scope: 'row' }, a.name, a.key_fingerprint ? h('div', { class: 'small muted hash', title: 'key fingerprint' }, a.key_fingerprint) : null),
        h('td', null, statusBadge(a.online ? 'online' : 'offline')),
        h('td', null, statusBadge(pending ? 'pending' : 'approved')),
        h('td', null, timeEl(lastSeen), lastSeen ? h('span', { class: 'small muted' }, ` (${relTime(lastSeen)})`) : null),
        h('td', null, a.address || ''),
        h('td', null, a.version || ''),
        h('td', null, (a.targets || []).join(', ')),
        h('td', null, pending ? h('button', { type: 'button', class: 'small', 'aria-label': `Approve agent ${a.name}`, onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await post(`/agents/${enc(a.name)}/approve`, {});
            flash(`Agent ${a.name} approved.`, 'ok');
            load();
          } catch (e) {
            flash(e.message);
            ev.target.disabled = false;
          }
        } }, 'Approve') : null));
    })));
  };
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
