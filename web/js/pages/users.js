// Users (#/users, admins): the list with role and state, creating a user;
// one user (#/users/{user}): role, disable / enable, password reset, API
// tokens (created with a lifetime, the secret shown once; revoked) and the
// user's grants per environment.
import { get, post, patch, del, put, enc } from '../api.js';
import { h, clear, hashFor, timeEl, relTimeEl, errorBox, loading, table, flash, dl, act, field } from '../dom.js';
import { session } from '../session.js';
import { openDetail } from './detail.js';

const ROLES = ['viewer', 'deployer', 'release-manager', 'admin'];
const PERMISSIONS = [['redeploy', 'Re-deploy and roll back on protected stages']];
// [seconds or '', label]
const LIFETIMES = [['2592000', '30 days'], ['7776000', '90 days'], ['31536000', '1 year'], ['', 'never expires']];

function roleSelect(id, value) {
  return h('select', { id }, ROLES.map((r) => h('option', { value: r, selected: r === value }, r)));
}

function stateBadge(u) {
  return h('span', { class: `badge ${u.disabled ? 'st-failed' : 'st-succeeded'}` }, u.disabled ? 'disabled' : 'enabled');
}

export async function renderUsers(main) {
  main.append(h('h1', null, 'Users'),
    h('p', { class: 'muted' }, 'Who may sign in, with which role; each user\'s API tokens and grants are on their page.'));
  const name = h('input', { id: 'nu-name', autocomplete: 'off', required: true });
  const role = roleSelect('nu-role', 'viewer');
  const password = h('input', { id: 'nu-password', type: 'password', autocomplete: 'new-password', 'aria-describedby': 'nu-password-hint' });
  const create = h('button', { type: 'submit' }, 'Create user');
  const out = h('div', { role: 'status' });
  const form = h('form', { class: 'card user-form', 'aria-label': 'Create a user' },
    field('nu-name', 'User name', name), field('nu-role', 'Role', role),
    field('nu-password', 'Password', password, 'at least 8 characters; leave empty for an API-only user'), create);
  const body = h('div', null, loading());
  main.append(h('h2', null, 'New user'), form, out, h('h2', null, 'All users'), body);

  const load = async () => {
    let users;
    try {
      users = (await get('/users?limit=1000')).items || [];
    } catch (e) {
      clear(body).append(errorBox(e));
      return;
    }
    clear(body).append(table(['User', 'Role', 'State', 'Password', 'Created'], users.map((u) => h('tr', { 'data-user': u.name },
      h('th', { scope: 'row' }, h('a', { href: hashFor('users', u.name) }, u.name)),
      h('td', null, u.role), h('td', null, stateBadge(u)),
      h('td', null, u.has_password ? 'yes' : h('span', { class: 'muted' }, 'API only')),
      h('td', null, timeEl(u.created_at)))), { id: 'users-table' }));
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), role: role.value };
    if (password.value) body.password = password.value;
    const created = await act(create, out, () => post('/users', body), (r) => `User ${r.name} created (${r.role}).`);
    if (created) {
      name.value = '';
      password.value = '';
      await load();
    }
  });
  await load();
}

export async function renderUser(main, ctx) {
  const name = ctx.params.user;
  let user = await openDetail(main, { href: '#/users', title: 'Users' }, name, `/users/${enc(name)}`);
  if (!user) return;
  const summary = h('div');
  const drawSummary = () => clear(summary).append(dl([
    ['Role', user.role], ['State', stateBadge(user)],
    ['Password', user.has_password ? 'set' : 'none (API only)'], ['Created', timeEl(user.created_at)]]));
  drawSummary();
  const tokens = h('section', { class: 'card tokens', 'aria-labelledby': 'tokens-h' });
  const grants = h('section', { class: 'card', 'aria-labelledby': 'grants-h' });
  main.append(summary, h('div', { class: 'user-sections' }, accountSection(user, (u) => { user = u; drawSummary(); }), grants), tokens);
  await Promise.all([drawTokens(tokens, name), drawGrants(grants, name)]);
}

// Role, disable / enable, password reset.
function accountSection(user, changed) {
  const out = h('div', { role: 'status' });
  const role = roleSelect('u-role', user.role);
  const saveRole = h('button', { type: 'button', class: 'secondary' }, 'Change role');
  const toggle = h('button', { type: 'button', class: user.disabled ? 'secondary' : 'danger', id: 'u-toggle' }, user.disabled ? 'Enable user' : 'Disable user');
  const password = h('input', { id: 'u-password', type: 'password', autocomplete: 'new-password', 'aria-describedby': 'u-password-hint' });
  const reset = h('button', { type: 'button', class: 'secondary' }, 'Reset password');
  const self = session() && session().user === user.name;
  const apply = async (button, body, done) => {
    const r = await act(button, out, () => patch(`/users/${enc(user.name)}`, body), done);
    if (!r) return;
    changed(r);
    toggle.textContent = r.disabled ? 'Enable user' : 'Disable user';
    toggle.className = r.disabled ? 'secondary' : 'danger';
  };
  saveRole.addEventListener('click', () => apply(saveRole, { role: role.value }, (r) => `${r.name} is now ${r.role}.`));
  toggle.addEventListener('click', () => {
    const disable = toggle.textContent === 'Disable user';
    if (disable && !confirm(`Disable ${user.name}? Their sessions and API tokens stop working at once.`)) return;
    apply(toggle, { disabled: disable }, (r) => (r.disabled ? `${r.name} is disabled: sessions and tokens are refused.` : `${r.name} is enabled again.`));
  });
  reset.addEventListener('click', async () => {
    await apply(reset, { password: password.value }, (r) => `The password of ${r.name} was reset.`);
    password.value = '';
  });
  return h('section', { class: 'card', 'aria-labelledby': 'account-h' }, h('h2', { id: 'account-h' }, 'Account'),
    h('div', { class: 'user-form' }, field('u-role', 'Role', role), saveRole),
    h('div', { class: 'user-form' }, field('u-password', 'New password', password, 'at least 8 characters'), reset),
    h('div', { class: 'actions-bar' }, toggle, self ? h('span', { class: 'small muted' }, 'This is you.') : null),
    out);
}

async function drawTokens(section, user) {
  const list = h('div', null, loading());
  const out = h('div', { role: 'status', id: 'token-result' });
  const name = h('input', { id: 't-name', value: 'api', maxlength: 100 });
  const lifetime = h('select', { id: 't-lifetime' }, LIFETIMES.map(([v, l]) => h('option', { value: v, selected: v === '7776000' }, l)));
  const create = h('button', { type: 'submit' }, 'Create token');
  const form = h('form', { class: 'user-form', 'aria-label': 'Create an API token' },
    field('t-name', 'Token name', name), field('t-lifetime', 'Expires', lifetime), create);
  clear(section).append(h('h2', { id: 'tokens-h' }, 'API tokens'), list, form, out);

  const load = async () => {
    let items;
    try {
      items = (await get(`/users/${enc(user)}/tokens`)).items || [];
    } catch (e) {
      clear(list).append(errorBox(e));
      return;
    }
    if (!items.length) { clear(list).append(h('p', { class: 'muted' }, 'No API tokens.')); return; }
    clear(list).append(table(['Name', 'Created', 'Last used', 'Expires', ''], items.map((t) => {
      const revoke = h('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke token ${t.name} (#${t.id})` }, 'Revoke');
      revoke.addEventListener('click', async () => {
        if (!confirm(`Revoke the token "${t.name}" of ${user}? Anything using it is refused from now on.`)) return;
        if (await act(revoke, out, () => del(`/users/${enc(user)}/tokens/${enc(t.id)}`), `Token "${t.name}" revoked.`)) await load();
      });
      return h('tr', { 'data-token': t.id },
        h('th', { scope: 'row' }, t.name, ' ', h('span', { class: 'small muted' }, `#${t.id}`)),
        h('td', { class: 'nowrap' }, timeEl(t.created_at)),
        h('td', { class: 'nowrap' }, t.last_used_at ? relTimeEl(t.last_used_at) : h('span', { class: 'muted' }, 'never')),
        h('td', { class: 'nowrap' }, t.expires_at ? [t.expired ? h('span', { class: 'badge st-failed' }, 'expired') : null, ' ', timeEl(t.expires_at)] : h('span', { class: 'muted' }, 'never')),
        h('td', null, revoke));
    }), { id: 'tokens-table', class: 'compact' }));
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim() };
    if (lifetime.value) body.expires_in_seconds = Number(lifetime.value);
    const r = await act(create, out, () => post(`/users/${enc(user)}/tokens`, body));
    if (!r) return;
    // The secret exists only in this answer: shown once, never again.
    out.append(h('div', { class: 'secret-once', id: 'token-secret' },
      h('strong', null, `Token "${r.name}" created. Copy it now: it is not shown again.`),
      h('code', null, r.token),
      h('button', { type: 'button', class: 'secondary small', onclick: (e) => copy(r.token, e.currentTarget) }, 'Copy')));
    await load();
  });
  await load();
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Select the token and copy it';
  }
}

// One checkbox per environment and permission; each change is a PUT or DELETE.
async function drawGrants(section, user) {
  const out = h('div', { role: 'status' });
  clear(section).append(h('h2', { id: 'grants-h' }, 'Grants'), loading());
  let envs;
  let held;
  try {
    envs = (await get('/environments?limit=1000')).items || [];
    const lists = await Promise.all(envs.map((e) => get(`/environments/${enc(e.name)}/grants`)));
    held = new Set(lists.flatMap((l) => (l.items || []).filter((g) => g.user === user).map((g) => `${g.environment}|${g.permission}`)));
  } catch (e) {
    clear(section).append(h('h2', { id: 'grants-h' }, 'Grants'), errorBox(e));
    return;
  }
  const intro = h('p', { class: 'small muted' }, 'Beside the role, per environment: ', PERMISSIONS.map(([p, what]) => `${p} — ${what}`).join('; '), '.');
  const items = envs.flatMap((env) => PERMISSIONS.map(([perm]) => {
    const id = `g-${env.name}-${perm}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const box = h('input', { type: 'checkbox', id, checked: held.has(`${env.name}|${perm}`) });
    box.addEventListener('change', async () => {
      const path = `/environments/${enc(env.name)}/grants/${enc(user)}/${enc(perm)}`;
      const want = box.checked;
      box.disabled = true;
      clear(out);
      try {
        if (want) await put(path); else await del(path);
        flash(`${user} ${want ? 'now holds' : 'no longer holds'} ${perm} on ${env.name}.`, 'ok');
      } catch (e) {
        box.checked = !want;
        out.append(errorBox(e));
      } finally {
        box.disabled = false;
      }
    });
    return h('li', { class: 'checkbox' }, box, h('label', { for: id }, `${perm} on ${env.name}`));
  }));
  clear(section).append(h('h2', { id: 'grants-h' }, 'Grants'), intro,
    items.length ? h('ul', { class: 'grant-list' }, items) : h('p', { class: 'muted' }, 'No environments yet.'), out);
}
