// Configuration: global variables (the outermost scope of every deployment),
// environments with their variables, targets (environment, agent, path,
// variables) and a link to create an application. Everyone may read;
// admins edit (the API's roles: PUT /variables, /environments/{env},
// /targets/{target} need admin).
import { get, request, enc } from '../api.js';
import { h, append, clear, loading, relTimeEl } from '../dom.js';
import { hasRole } from '../session.js';
import { variablesEditor } from './variables_editor.js';

export async function renderConfig(main) {
  const admin = hasRole('admin');
  append(main, [h('div', { class: 'page-head' }, h('h1', null, 'Configuration')),
    h('p', { class: 'muted' },
      'Variables resolve most specific first: deployment, build, release, application, target, environment, global. ',
      admin ? null : 'Only admins can change the configuration.'),
    hasRole('release-manager') ? h('p', null, h('a', { href: '#/new-application', class: 'button' }, 'New application')) : null]);
  const globals = h('section', { class: 'card config-section', 'aria-labelledby': 'cfg-globals' }, loading());
  const envs = h('section', { class: 'card config-section', 'aria-labelledby': 'cfg-envs' }, loading());
  const targets = h('section', { class: 'card config-section', 'aria-labelledby': 'cfg-targets' }, loading());
  main.append(globals, envs, targets);
  const reload = async () => {
    const [g, e, t, a] = await Promise.all([
      get('/variables'), get('/environments?limit=1000'), get('/targets?limit=1000'),
      get('/agents?limit=1000').catch(() => ({ items: [] }))]);
    renderGlobals(clear(globals), g, admin);
    renderEnvironments(clear(envs), e.items || [], admin, reload);
    renderTargets(clear(targets), t.items || [], (e.items || []).map((x) => x.name),
      (a.items || []).map((x) => x.name), admin, reload);
  };
  await reload();
}

// A save button with its status line (role=status): one place for the answer.
function saveRow(text, onSave) {
  const status = h('p', { class: 'save-status', role: 'status' });
  const button = h('button', { type: 'button', class: 'primary' }, text);
  button.addEventListener('click', async () => {
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    clear(status).className = 'save-status';
    try {
      const message = await onSave();
      status.classList.add('ok');
      status.textContent = message;
    } catch (e) {
      status.classList.add('error-text');
      status.textContent = e.message || String(e);
    } finally {
      button.removeAttribute('aria-disabled');
    }
  });
  return h('div', { class: 'actions save-row' }, button, status);
}

function renderGlobals(section, g, admin) {
  const editor = variablesEditor(g.variables, { label: 'global scope', editable: admin });
  append(section, [h('h2', { id: 'cfg-globals' }, 'Global variables'),
    h('p', { class: 'muted small' }, 'Every deployment sees these; any other scope overrides them.',
      g.updated_at ? [' Last changed by ', g.updated_by, ' ', relTimeEl(g.updated_at), '.'] : null),
    editor.el,
    admin ? saveRow('Save global variables', async () => {
      await request('PUT', '/variables', { variables: editor.value() });
      return 'Global variables saved.';
    }) : null]);
}

function renderEnvironments(section, list, admin, reload) {
  section.append(h('h2', { id: 'cfg-envs' }, 'Environments'));
  if (!list.length) section.append(h('p', { class: 'muted' }, 'No environments yet.'));
  for (const env of list) {
    const editor = variablesEditor(env.variables, { label: `environment ${env.name}`, editable: admin });
    section.append(h('details', { class: 'config-item', 'data-environment': env.name },
      h('summary', null, h('strong', null, env.name), ' ',
        h('span', { class: 'muted small' }, plural(Object.keys(env.variables || {}).length, 'variable'))),
      editor.el,
      admin ? saveRow(`Save ${env.name}`, async () => {
        await request('PUT', `/environments/${enc(env.name)}`, { variables: editor.value() });
        return `Environment ${env.name} saved.`;
      }) : null));
  }
  if (!admin) return;
  const name = h('input', { id: 'new-env-name', autocomplete: 'off', spellcheck: 'false', required: true });
  section.append(h('div', { class: 'new-item' },
    h('h3', null, 'New environment'),
    h('div', { class: 'field inline' }, h('label', { for: 'new-env-name' }, 'Name'), name),
    saveRow('Create environment', async () => {
      const n = name.value.trim();
      if (!n) throw new Error('Give the environment a name.');
      await request('PUT', `/environments/${enc(n)}`, { variables: {} });
      await reload();
      return `Environment ${n} created.`;
    })));
}

function renderTargets(section, list, envNames, agentNames, admin, reload) {
  section.append(h('h2', { id: 'cfg-targets' }, 'Targets'),
    h('p', { class: 'muted small' }, 'A target is an agent and a directory on its machine, in one environment.'));
  if (!list.length) section.append(h('p', { class: 'muted' }, 'No targets yet.'));
  for (const t of list) section.append(targetForm(t, envNames, agentNames, admin, reload));
  if (admin) section.append(targetForm(null, envNames, agentNames, admin, reload));
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

let formSeq = 0;

function targetForm(t, envNames, agentNames, admin, reload) {
  const id = `tg-${++formSeq}`;
  const creating = !t;
  const name = creating ? h('input', { id: `${id}-name`, autocomplete: 'off', spellcheck: 'false' }) : null;
  const env = h('select', { id: `${id}-env`, disabled: !admin },
    envNames.map((n) => h('option', { value: n, selected: t && t.environment === n }, n)));
  const listId = `${id}-agents`;
  const agent = h('input', { id: `${id}-agent`, value: t ? t.agent : '', list: listId, autocomplete: 'off', readonly: !admin });
  const path = h('input', { id: `${id}-path`, value: t ? t.path : '', autocomplete: 'off', spellcheck: 'false', readonly: !admin, placeholder: '/srv/app' });
  const editor = variablesEditor(t ? t.variables : {}, { label: `target ${t ? t.name : 'new'}`, editable: admin });
  const fields = h('div', { class: 'target-fields' },
    creating ? h('div', { class: 'field' }, h('label', { for: `${id}-name` }, 'Name'), name) : null,
    h('div', { class: 'field' }, h('label', { for: `${id}-env` }, 'Environment'), env),
    h('div', { class: 'field' }, h('label', { for: `${id}-agent` }, 'Agent'), agent,
      h('datalist', { id: listId }, agentNames.map((n) => h('option', { value: n })))),
    h('div', { class: 'field' }, h('label', { for: `${id}-path` }, 'Path'), path));
  const save = admin ? saveRow(creating ? 'Create target' : `Save ${t.name}`, async () => {
    const targetName = creating ? name.value.trim() : t.name;
    if (!targetName) throw new Error('Give the target a name.');
    if (!agent.value.trim()) throw new Error('Name the agent that serves this target.');
    if (!path.value.startsWith('/')) throw new Error('The path must be absolute (start with /).');
    await request('PUT', `/targets/${enc(targetName)}`, {
      environment: env.value, agent: agent.value.trim(), path: path.value, variables: editor.value(),
    });
    if (creating) await reload();
    return `Target ${targetName} saved.`;
  }) : null;
  if (creating) {
    return h('div', { class: 'new-item' }, h('h3', null, 'New target'), fields,
      h('h4', null, 'Variables'), editor.el, save);
  }
  return h('details', { class: 'config-item', 'data-target': t.name },
    h('summary', null, h('strong', null, t.name), ' ',
      h('span', { class: 'muted small' }, `${t.environment} · agent ${t.agent} · ${t.path}`)),
    fields, h('h4', null, 'Variables'), editor.el, save);
}
