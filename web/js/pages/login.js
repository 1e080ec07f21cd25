// Login: user name and password; the server sets an HttpOnly session cookie.
import { h, errorBox, clear } from '../dom.js';
import { login, session } from '../session.js';

export function renderLogin(main, ctx) {
  if (session()) {
    ctx.afterLogin();
    return;
  }
  document.getElementById('topbar').hidden = true;
  const error = h('div', { id: 'login-error', 'aria-live': 'assertive' });
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Reprise'),
    h('p', { class: 'muted' }, 'Release orchestration. Log in to deploy, promote and re-deploy.'),
    h('label', { for: 'login-user' }, 'User name'), user,
    h('label', { for: 'login-password' }, 'Password'), password,
    error, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(error);
    submit.disabled = true;
    try {
      await login(user.value.trim(), password.value);
      password.value = '';
      ctx.afterLogin();
    } catch (e) {
      error.append(errorBox(e));
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(h('div', { class: 'login-wrap' }, form));
  user.focus();
}
