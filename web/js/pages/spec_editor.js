// The application spec editor (#/apps/{app}/spec) and "New application"
// (#/new-application): the YAML with line numbers; "Review changes" shows a
// line diff against the stored spec; saving sends the text as it is
// (PUT /applications/{app}, application/yaml) and an error the server names
// at "spec:line:column" is shown at that line. Sensitive values arrive as
// "******"; sent back unchanged, the server keeps the stored ones.
import { ApiError, get, enc } from '../api.js';
import { h, clear, hashFor, loading, errorBox } from '../dom.js';
import { go } from '../router.js';
import { session, hasRole } from '../session.js';
import { lineDiff } from './line_diff.js';

const TEMPLATE = `description: ""
variables: {}
pipeline:
  - stage: Integration
    environment: Integration
    targets: [int-web]
    plan: deploy
plans:
  deploy: |
    - deploy-artifact: { artifact: web }
`;

export async function renderSpecEditor(main, ctx) {
  const appName = ctx.params.app;
  main.append(h('div', { class: 'page-head' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/' }, 'Applications'), ' / ', h('a', { href: hashFor('apps', appName) }, appName), ' / '),
    h('h1', null, `Spec of ${appName}`)));
  const body = h('div', null, loading());
  main.append(body);
  let app;
  try {
    app = await get(`/applications/${enc(appName)}`);
  } catch (e) {
    clear(body).append(errorBox(e));
    return;
  }
  clear(body).append(h('p', { class: 'muted' }, `Stored: spec version ${app.spec_version}`,
    app.updated_by ? `, by ${app.updated_by}` : '', '. Sensitive values show as ****** and are kept when left so.'));
  body.append(editorPanel({
    stored: app.spec_text || '',
    name: () => appName,
    onSaved: (saved) => `Saved spec version ${saved.spec_version}.`,
  }));
}

export async function renderNewApplication(main) {
  main.append(h('div', { class: 'page-head' },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Applications'), ' / '),
    h('h1', null, 'New application')));
  if (!hasRole('release-manager')) {
    main.append(h('p', { class: 'warn' }, 'Creating an application needs the release-manager role.'));
    return;
  }
  const nameInput = h('input', { id: 'new-app-name', autocomplete: 'off', spellcheck: 'false', required: true });
  main.append(h('div', { class: 'field' }, h('label', { for: 'new-app-name' }, 'Name'), nameInput),
    h('p', { class: 'muted small' }, 'Every stage\'s environment and targets must exist (see Configuration).'),
    editorPanel({
      stored: '',
      initial: TEMPLATE,
      name: () => {
        const n = nameInput.value.trim();
        if (!n) {
          nameInput.focus();
          throw new Error('Give the application a name.');
        }
        return n;
      },
      onSaved: (saved) => {
        go(hashFor('apps', saved.name));
        return `Created ${saved.name}.`;
      },
    }));
}

// Sends the spec text as YAML; the API's error as an ApiError.
async function putSpec(name, text) {
  const s = session();
  const res = await fetch(`/api/v1/applications/${enc(name)}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/yaml', Accept: 'application/json', 'X-CSRF-Token': (s && s.csrf_token) || '' },
    body: text,
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || 'http_error', err.message || `${res.status} ${res.statusText}`);
  }
  return data;
}

// Where a spec error points: "spec:12:5: …" (a plan written as text adds
// "plan 'x' line 2 column 7", counted from the line after its "|").
export function errorPosition(message, text) {
  const m = /^spec:(\d+):(\d+):\s*/.exec(message || '');
  if (!m) return null;
  let line = Number(m[1]);
  let column = Number(m[2]);
  const inner = /plan '[^']*' line (\d+) column (\d+)/.exec(message);
  const lines = text.split('\n');
  if (inner && /[|>][-+0-9]*\s*$/.test(lines[line - 1] || '')) {
    const indent = (lines[line] || '').match(/^\s*/)[0].length;
    line += Number(inner[1]);
    column = indent + Number(inner[2]);
  }
  return { line, column, text: message.slice(m[0].length) };
}

function editorPanel({ stored, initial, name, onSaved }) {
  const editable = hasRole('release-manager');
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const area = h('textarea', {
    id: 'spec-text', class: 'spec-text', spellcheck: 'false', autocomplete: 'off', wrap: 'off',
    'aria-label': 'Application spec (YAML)', 'aria-describedby': 'spec-error', readonly: !editable,
  });
  area.value = initial !== undefined ? initial : stored;
  const errorEl = h('div', { id: 'spec-error', class: 'spec-error', role: 'alert', hidden: true });
  const diffEl = h('div', { class: 'spec-diff', hidden: true, 'aria-live': 'polite' });
  const status = h('p', { class: 'save-status', role: 'status' });
  let errorLine = 0;

  function drawGutter() {
    const n = area.value.split('\n').length;
    clear(gutter);
    for (let i = 1; i <= n; i++) {
      gutter.append(h('span', { class: i === errorLine ? 'ln ln-error' : 'ln', 'data-line': i }, String(i)));
    }
    gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener('input', () => {
    diffEl.hidden = true;
    saveButton.hidden = true;
    drawGutter();
  });
  area.addEventListener('scroll', () => { gutter.scrollTop = area.scrollTop; });

  function showError(e) {
    const pos = errorPosition(e.message, area.value);
    errorLine = pos ? pos.line : 0;
    clear(errorEl).hidden = false;
    errorEl.append(h('strong', null, pos ? `Line ${pos.line}, column ${pos.column}: ` : 'Not saved: '), pos ? pos.text : e.message);
    drawGutter();
    if (pos) {
      const lines = area.value.split('\n');
      const offset = lines.slice(0, pos.line - 1).reduce((a, l) => a + l.length + 1, 0) + Math.max(0, pos.column - 1);
      area.focus();
      area.setSelectionRange(offset, offset);
      const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
      area.scrollTop = Math.max(0, (pos.line - 3) * lineHeight);
    }
  }

  const reviewButton = h('button', { type: 'button', class: 'primary', hidden: !editable }, 'Review changes');
  const saveButton = h('button', { type: 'button', class: 'primary', hidden: true }, 'Save');
  reviewButton.addEventListener('click', () => {
    const rows = lineDiff(stored, area.value);
    const added = rows.filter((r) => r.op === '+').length;
    const removed = rows.filter((r) => r.op === '-').length;
    clear(diffEl).hidden = false;
    diffEl.append(h('h2', null, 'Changes'),
      h('p', { class: 'diff-summary' }, added || removed ? `${added} added, ${removed} removed` : 'No changes against the stored spec.'),
      diffTable(rows));
    saveButton.hidden = false;
    saveButton.focus();
  });
  saveButton.addEventListener('click', async () => {
    if (saveButton.getAttribute('aria-disabled') === 'true') return;
    saveButton.setAttribute('aria-disabled', 'true');
    errorEl.hidden = true;
    errorLine = 0;
    status.textContent = 'Saving…';
    try {
      const saved = await putSpec(name(), area.value);
      stored = area.value;
      drawGutter();
      diffEl.hidden = true;
      saveButton.hidden = true;
      status.textContent = onSaved(saved);
    } catch (e) {
      status.textContent = '';
      showError(e);
    } finally {
      saveButton.removeAttribute('aria-disabled');
    }
  });
  drawGutter();
  return h('div', { class: 'spec-editor' },
    h('div', { class: 'code-editor' }, gutter, area), errorEl,
    h('div', { class: 'actions' }, reviewButton, saveButton, status),
    diffEl);
}

// Changed lines with two lines of context around them; long unchanged runs folded.
function diffTable(rows) {
  const keep = rows.map((r, i) => r.op !== ' ' || rows.slice(Math.max(0, i - 2), i + 3).some((x) => x.op !== ' '));
  const out = [];
  let folded = 0;
  rows.forEach((r, i) => {
    if (!keep[i]) { folded++; return; }
    if (folded) out.push(h('tr', { class: 'diff-fold' }, h('td', { colspan: 3 }, `… ${folded} unchanged lines`)));
    folded = 0;
    const cls = r.op === '+' ? 'diff-add' : r.op === '-' ? 'diff-del' : 'diff-ctx';
    out.push(h('tr', { class: cls },
      h('td', { class: 'num' }, r.op === '+' ? '' : String(r.a)),
      h('td', { class: 'num' }, r.op === '-' ? '' : String(r.b)),
      h('td', null, h('code', null, `${r.op} ${r.text}`))));
  });
  if (folded) out.push(h('tr', { class: 'diff-fold' }, h('td', { colspan: 3 }, `… ${folded} unchanged lines`)));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'compact diff', 'aria-label': 'Line changes' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Stored'), h('th', { scope: 'col' }, 'New'), h('th', { scope: 'col' }, 'Line'))),
    h('tbody', null, out)));
}
