// API reference (#/api): the server's OpenAPI document (GET /api/v1/openapi.json,
// generated from its route table) rendered for people: operations grouped by
// tag, each with its method, path, minimum role, parameters and body fields;
// a filter box narrows them by path, summary or tag as one types.
import { h, clear, errorBox, loading } from '../dom.js';

async function fetchDocument() {
  const res = await fetch('/api/v1/openapi.json', { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) throw new Error(`the API description did not load (${res.status})`);
  return res.json();
}

function typeOf(schema) {
  if (!schema) return '';
  if (schema.type === 'array') return `array of ${typeOf(schema.items) || 'any'}`;
  if (schema.type === 'object' && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    return 'map of objects';
  }
  return schema.type || 'any';
}

// The fields of a JSON body (nested members indented under their field).
function fieldRows(schema, prefix = '') {
  const required = new Set(schema.required || []);
  const rows = [];
  for (const [name, field] of Object.entries(schema.properties || {})) {
    rows.push(h('tr', null,
      h('td', null, h('code', null, prefix + name)),
      h('td', null, typeOf(field)),
      h('td', null, required.has(name) ? 'required' : ''),
      h('td', null, field.description || '')));
    const inner = field.type === 'array' ? field.items
      : field.additionalProperties && typeof field.additionalProperties === 'object' ? field.additionalProperties : field;
    if (inner && inner !== schema && inner.properties) rows.push(...fieldRows(inner, `${prefix}${name}.`));
  }
  return rows;
}

function fieldTable(caption, rows) {
  if (!rows.length) return null;
  return h('table', { class: 'api-fields' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, ['Name', 'Type', 'Required', 'Description'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, rows));
}

function parameterRows(op) {
  return (op.parameters || []).map((p) => h('tr', null,
    h('td', null, h('code', null, p.name)),
    h('td', null, `${p.in} · ${typeOf(p.schema)}`),
    h('td', null, p.required ? 'required' : ''),
    h('td', null, p.description || '')));
}

function bodyView(op) {
  const content = op.requestBody && op.requestBody.content;
  if (!content) return null;
  if (content['application/octet-stream']) return h('p', { class: 'small' }, 'Body: raw bytes (application/octet-stream), streamed.');
  const schema = content['application/json'].schema;
  const rows = fieldRows(schema);
  if (!rows.length) {
    return h('p', { class: 'small' }, schema.additionalProperties === false
      ? 'Body: none (an empty body or {}).' : 'Body: a JSON object (see the description).');
  }
  return fieldTable(`JSON body${op.requestBody.required ? '' : ' (may be empty)'}`, rows);
}

function operationView(path, method, op) {
  const success = Object.entries(op.responses || {}).find(([code]) => code.startsWith('2'));
  const role = op['x-reprise-role'];
  return h('details', { class: 'api-op', 'data-search': `${method} ${path} ${op.summary} ${op.tags[0]}`.toLowerCase() },
    h('summary', null,
      h('span', { class: `api-method api-${method}` }, method.toUpperCase()), ' ',
      h('code', { class: 'api-path' }, path), ' ',
      h('span', { class: 'api-summary' }, op.summary), ' ',
      h('span', { class: 'badge api-role' }, role === 'public' ? 'public' : role)),
    h('div', { class: 'api-op-body' },
      h('p', { class: 'small api-description' }, op.description),
      fieldTable('Parameters', parameterRows(op)),
      bodyView(op),
      success ? h('p', { class: 'small' }, h('strong', null, `${success[0]}: `), success[1].description) : null,
      h('p', { class: 'small muted' }, 'Errors answer ', h('code', null, '{"error": {"code", "message"}}'), '.')));
}

function groups(doc) {
  const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = op.tags[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op));
    }
  }
  return [...byTag.entries()].filter(([, ops]) => ops.length);
}

export async function renderApiReference(main) {
  main.append(h('h1', null, 'API reference'),
    h('p', { class: 'muted' }, 'Every route of this server, from its OpenAPI 3.1 description (',
      h('a', { href: '/api/v1/openapi.json', id: 'api-openapi-link' }, 'openapi.json'),
      '). API clients send ', h('code', null, 'Authorization: Bearer <token>'), '.'));
  const filter = h('input', { id: 'api-filter', type: 'search', placeholder: 'Filter by path, summary or tag', autocomplete: 'off' });
  const count = h('p', { class: 'small muted', id: 'api-count', role: 'status', 'aria-live': 'polite' });
  const body = h('div', { id: 'api-groups' }, loading());
  main.append(h('div', { class: 'field api-filter' }, h('label', { for: 'api-filter' }, 'Filter'), filter), count, body);
  let doc;
  try {
    doc = await fetchDocument();
  } catch (e) {
    clear(body).append(errorBox(e));
    return;
  }
  clear(body).append(...groups(doc).map(([tag, ops]) =>
    h('section', { class: 'api-group', 'data-tag': tag }, h('h2', null, tag), ...ops)));
  const apply = () => {
    const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const section of body.querySelectorAll('.api-group')) {
      let any = false;
      for (const op of section.querySelectorAll('.api-op')) {
        const match = words.every((w) => op.dataset.search.includes(w));
        op.hidden = !match;
        any = any || match;
        shown += match ? 1 : 0;
      }
      section.hidden = !any;
    }
    count.textContent = `${shown} operation${shown === 1 ? '' : 's'} (API version ${doc.info.version})`;
  };
  filter.addEventListener('input', apply);
  apply();
}
