// Creating releases and builds with notes (Markdown, previewed as it will be
// shown) and links (issue keys, commit URLs), and showing them.
import { post, enc } from '../api.js';
import { h, clear, hashFor, errorBox } from '../dom.js';
import { go } from '../router.js';
import { renderMarkdown, linksList, safeUrl } from '../markdown.js';

// Notes and links of a release or build, rendered; null when it has none.
export function notesSection(item) {
  const hasNotes = item.notes && item.notes.trim();
  const links = linksList(item.links);
  if (!hasNotes && !links) return null;
  return h('section', { class: 'notes', 'aria-labelledby': 'notes-h' },
    h('h2', { id: 'notes-h' }, 'Notes'),
    hasNotes ? renderMarkdown(item.notes) : null,
    links ? [h('h3', null, 'Links'), links] : null);
}

// "SHOP-12 https://tracker/SHOP-12" or a bare URL, one a line, as the API's
// links; {problem} naming the line when one is not an http(s) URL.
export function parseLinks(text) {
  const links = [];
  const lines = String(text || '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const parts = line.split(/\s+/);
    const url = parts.pop();
    if (!safeUrl(url)) return { problem: `Link on line ${i + 1} must end with an http:// or https:// address (got "${url}").` };
    links.push({ title: parts.join(' '), url });
  }
  return { links };
}

// The notes and links fields with a live preview of the notes.
function notesFields(prefix) {
  const notes = h('textarea', { id: `${prefix}-notes`, rows: 8, maxlength: 65536, 'aria-describedby': `${prefix}-notes-help` });
  const links = h('textarea', { id: `${prefix}-links`, rows: 3, 'aria-describedby': `${prefix}-links-help`, placeholder: 'SHOP-12 https://tracker.example/browse/SHOP-12' });
  const preview = h('div', { class: 'notes-preview', 'aria-live': 'polite', id: `${prefix}-preview` });
  const draw = () => {
    clear(preview).append(notes.value.trim() ? renderMarkdown(notes.value) : h('p', { class: 'muted' }, 'The preview of the notes shows here.'));
  };
  notes.addEventListener('input', draw);
  draw();
  const el = [
    h('div', { class: 'field' }, h('label', { for: `${prefix}-notes` }, 'Notes (Markdown)'), notes,
      h('p', { id: `${prefix}-notes-help`, class: 'small muted' }, 'Headings (#), lists (- or 1.), *emphasis*, **strong**, `code`, [links](https://…). HTML is shown as text.')),
    h('div', { class: 'notes-preview-wrap' }, h('h3', null, 'Preview'), preview),
    h('div', { class: 'field' }, h('label', { for: `${prefix}-links` }, 'Links'), links,
      h('p', { id: `${prefix}-links-help`, class: 'small muted' }, 'One a line: an issue key or title, then its http(s) address; or just the address.')),
  ];
  return { el, notes, links };
}

function crumbs(...parts) {
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Applications'), ' / ', parts.map((p) => [p, ' / ']));
}

// Shared submit: validates the links, posts, shows the API's refusal in place.
function formWith(fields, extra, submitLabel, send) {
  const err = h('div', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h('form', { class: 'stacked notes-form', novalidate: true }, extra, fields.el, err, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear(err);
    const parsed = parseLinks(fields.links.value);
    if (parsed.problem) {
      err.append(errorBox({ message: parsed.problem }));
      fields.links.focus();
      return;
    }
    submit.disabled = true;
    try {
      await send({ notes: fields.notes.value, links: parsed.links });
    } catch (e) {
      err.append(errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function renderNewRelease(main, ctx) {
  const { app } = ctx.params;
  main.append(crumbs(h('a', { href: hashFor('apps', app) }, app)), h('h1', null, `New release of ${app}`));
  const number = h('input', { id: 'release-number', required: true, placeholder: '1.2.0', autocomplete: 'off', 'aria-describedby': 'release-number-help' });
  const fields = notesFields('release');
  main.append(formWith(fields, h('div', { class: 'field' }, h('label', { for: 'release-number' }, 'Release number'), number,
    h('p', { id: 'release-number-help', class: 'small muted' }, 'Dotted numbers such as 1.2.0. The release keeps the application\'s pipeline and plans as they are now.')),
  'Create release', async (body) => {
    const rel = await post(`/applications/${enc(app)}/releases`, { number: number.value.trim(), ...body });
    go(hashFor('apps', app, 'releases', rel.number));
  }));
}

export async function renderNewBuild(main, ctx) {
  const { app, rel } = ctx.params;
  main.append(crumbs(h('a', { href: hashFor('apps', app) }, app), h('a', { href: hashFor('apps', app, 'releases', rel) }, rel)),
    h('h1', null, `New build of ${app} ${rel}`));
  const fields = notesFields('build');
  main.append(formWith(fields, h('p', { class: 'muted' }, 'The build gets the next number of the release; upload its artifacts on the next page.'),
    'Create build', async (body) => {
      const b = await post(`/applications/${enc(app)}/releases/${enc(rel)}/builds`, body);
      go(hashFor('apps', app, 'releases', rel, 'builds', b.number));
    }));
}
