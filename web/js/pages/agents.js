// Agents: status, last seen, approval of pending agents.
import { get, post, enc } from '../api.js';
import { h, clear, timeEl, relTime, statusBadge, errorBox, loading, flash, table } from '../dom.js';
import { hasRole } from '../session.js';

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
    clear(body).append(table(['Agent', 'Status', 'Last seen', 'Address', 'Version', ''], items.map((a) => {
      const pending = a.status === 'pending' || a.approved === false;
      return h('tr', null,
        h('th', { scope: 'row' }, a.name),
        h('td', null, statusBadge(a.status || (a.connected ? 'connected' : 'offline'))),
        h('td', null, timeEl(a.last_seen || a.last_seen_at), a.last_seen ? h('span', { class: 'small muted' }, ` (${relTime(a.last_seen)})`) : null),
        h('td', null, a.address || a.remote_addr || ''),
        h('td', null, a.version || ''),
        h('td', null, pending && hasRole('admin') ? h('button', { type: 'button', class: 'small', 'aria-label': `Approve agent ${a.name}`, onclick: async () => {
          try {
            await post(`/agents/${enc(a.name)}/approve`, {});
            flash(`Agent ${a.name} approved.`, 'ok');
            load();
          } catch (e) { flash(e.message); }
        } }, 'Approve') : null));
    })));
  };
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
