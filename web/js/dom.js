// DOM helpers: elements are built with textContent only, so values from the
// API can never become markup. Formatting of times, sizes and statuses.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function hashFor(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

// "2026-11-23 19:05:00" in the browser's zone, with a title giving UTC.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function fmtUtc(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: fmtUtc(iso) }, fmtTime(iso));
}

// "3 min ago", with the local and UTC times as its title.
export function relTimeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: `${fmtTime(iso)} (${fmtUtc(iso)})` }, relTime(iso));
}

export function relTime(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const abs = Math.abs(s);
  const unit = abs < 60 ? [abs, 's'] : abs < 3600 ? [Math.round(abs / 60), 'min'] :
    abs < 86400 ? [Math.round(abs / 3600), 'h'] : [Math.round(abs / 86400), 'd'];
  return s >= 0 ? `${unit[0]} ${unit[1]} ago` : `in ${unit[0]} ${unit[1]}`;
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || isNaN(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// When a scheduled deployment runs (the API's scheduled_at).
export function whenOf(d) {
  return d.scheduled_at || d.at || null;
}

export const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'interrupted', 'expired', 'rejected']);

export function statusBadge(status) {
  const s = status || 'unknown';
  return h('span', { class: `badge st-${s.replace(/[^a-z-]/g, '')}`, 'data-status': s }, s);
}

export function kindBadge(kind) {
  if (!kind) return null;
  return h('span', { class: `badge kind-${kind.replace(/[^a-z-]/g, '')}` }, kind);
}

export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' },
    h('strong', null, err.status ? `Error ${err.status}` : 'Error'), ' ',
    err.code && err.code !== 'http_error' ? h('code', null, err.code) : null, ' ',
    err.message || String(err));
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'muted', role: 'status' }, text);
}

export function buildLabel(release, build) {
  return `${release} build ${build}`;
}

// A small definition list from [label, value] pairs.
export function dl(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows)));
}

// A message at the top of the page (role=alert); clears itself after a while.
export function flash(message, kind = 'error') {
  const el = document.getElementById('flash');
  if (!el) return;
  el.textContent = message;
  el.className = `flash ${kind}`;
  el.hidden = !message;
  el.dataset.shownAt = String(Date.now());
  if (message) setTimeout(() => { if (el.textContent === message) el.hidden = true; }, 8000);
}

// Hides a message shown more than a moment ago (called on navigation).
export function clearStaleFlash() {
  const el = document.getElementById('flash');
  if (el && !el.hidden && Date.now() - Number(el.dataset.shownAt || 0) > 1500) el.hidden = true;
}

// A labelled form field, with an optional hint under it.
export function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input,
    hint ? h('span', { class: 'small muted', id: `${id}-hint` }, hint) : null);
}

// Runs `fn` with `button` busy; shows the error in `out` (role=status), or `done`.
export async function act(button, out, fn, done) {
  button.setAttribute('aria-disabled', 'true');
  clear(out);
  try {
    const r = await fn();
    if (done) out.append(h('p', { class: 'verify-ok' }, typeof done === 'function' ? done(r) : done));
    return r;
  } catch (e) {
    out.append(errorBox(e));
    return null;
  } finally {
    button.removeAttribute('aria-disabled');
  }
}
