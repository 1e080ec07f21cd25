// An editable list of variables (name, value, sensitive) for the
// configuration pages. A stored sensitive value is never shown: its field is
// empty with "stored; type to replace", and an untouched one is sent back as
// the mask "******", which the server answers by keeping the stored value.
import { h, append, clear } from '../dom.js';

export const MASK = '******';
let rowSeq = 0;

// `vars`: the API's {Name: {value, sensitive}}. `label` names the scope for
// screen readers ("environment Production"). Read-only without `editable`.
// Returns {el, value(), validate()}; value() is the request's `variables`.
export function variablesEditor(vars, { label, editable = true } = {}) {
  const rows = [];
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted small' }, 'No variables.');
  const el = h('div', { class: 'vars-editor' });

  const wrap = h('div', { class: 'table-wrap' });
  function refreshEmpty() {
    empty.hidden = rows.length > 0;
    wrap.hidden = rows.length === 0;
  }

  function addRow(name = '', v = { value: '', sensitive: false }, stored = false) {
    const id = `var-${++rowSeq}`;
    const storedSecret = stored && v.sensitive;
    const nameInput = h('input', { id: `${id}-name`, class: 'var-name', value: name, autocomplete: 'off', spellcheck: 'false', 'aria-label': `Variable name (${label})`, readonly: !editable });
    const valueInput = h('input', {
      id: `${id}-value`, class: 'var-value', autocomplete: 'off', spellcheck: 'false',
      type: v.sensitive ? 'password' : 'text',
      value: storedSecret ? '' : v.value,
      placeholder: storedSecret ? 'stored; type to replace' : '',
      'aria-label': `Value of ${name || 'new variable'} (${label})`, readonly: !editable,
    });
    const sensitive = h('input', { type: 'checkbox', id: `${id}-sensitive`, class: 'var-sensitive', checked: v.sensitive, disabled: !editable });
    sensitive.addEventListener('change', () => {
      valueInput.type = sensitive.checked ? 'password' : 'text';
    });
    const row = { name: nameInput, value: valueInput, sensitive, storedSecret };
    const remove = editable ? h('button', {
      type: 'button', class: 'secondary small', 'aria-label': `Remove variable ${name || ''}`.trim(),
      onclick: () => {
        rows.splice(rows.indexOf(row), 1);
        tr.remove();
        refreshEmpty();
      },
    }, 'Remove') : null;
    const tr = h('tr', null,
      h('td', null, nameInput),
      h('td', null, valueInput),
      h('td', { class: 'var-flag' }, h('label', { class: 'checkbox' }, sensitive, ' sensitive')),
      h('td', null, remove));
    rows.push(row);
    tbody.append(tr);
    refreshEmpty();
    return row;
  }

  for (const [name, v] of Object.entries(vars || {})) addRow(name, v, true);
  el.append(append(wrap, [
    h('table', { class: 'compact vars-table', 'aria-label': `Variables of ${label}` },
      h('thead', null, h('tr', null, ['Name', 'Value', 'Sensitive', ''].map((x) => h('th', { scope: 'col' }, x)))),
      tbody)]), empty);
  if (editable) {
    el.append(h('button', {
      type: 'button', class: 'secondary small add-var',
      onclick: () => addRow().name.focus(),
    }, 'Add variable'));
  }
  refreshEmpty();

  // The request's `variables`, or throws an Error naming the first problem.
  function value() {
    const out = {};
    for (const r of rows) {
      const name = r.name.value.trim();
      if (!name && !r.value.value) continue;  // an empty new row
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new Error(`Variable name "${name}" is invalid: letters, digits and _, not starting with a digit.`);
      if (name in out) throw new Error(`Variable ${name} is given twice.`);
      const keep = r.storedSecret && r.value.value === '';
      if (keep && !r.sensitive.checked)
        throw new Error(`Variable ${name}: enter a value to make it not sensitive (its stored value is never shown).`);
      out[name] = { value: keep ? MASK : r.value.value, sensitive: r.sensitive.checked };
    }
    return out;
  }
  return { el, value, clear: () => clear(tbody) };
}
