// The logged-in user: {user, role, csrf_token}. Roles are ordered.
import { get, post, del, setCsrfToken } from './api.js';

const ORDER = ['viewer', 'deployer', 'release-manager', 'admin'];
let current = null;

export function session() {
  return current;
}

export function hasRole(role) {
  return !!current && ORDER.indexOf(current.role) >= ORDER.indexOf(role);
}

export async function loadSession() {
  try {
    current = await get('/session', { quiet401: true });
    setCsrfToken(current.csrf_token || null);
  } catch (e) {
    if (e.status !== 401) throw e;
    current = null;
  }
  return current;
}

export async function login(user, password) {
  current = await post('/session', { user, password });
  setCsrfToken(current.csrf_token);
  return current;
}

export async function logout() {
  try {
    await del('/session');
  } finally {
    current = null;
    setCsrfToken(null);
  }
}

export function forget() {
  current = null;
  setCsrfToken(null);
}
