// Release notes in Markdown, rendered into DOM nodes: every piece of text
// reaches the page through text nodes, never as markup, so a note cannot
// inject HTML. Supported: headings, bullet and numbered lists, paragraphs,
// block quotes, fenced code, `code`, *emphasis*, **strong**, [links](url) and
// bare URLs; links only to http(s) (anything else stays plain text).
import { h } from './dom.js';

// The URL when it is an absolute http(s) URL, else null.
export function safeUrl(text) {
  try {
    const u = new URL(String(text));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export function externalLink(url, text) {
  const href = safeUrl(url);
  if (!href) return document.createTextNode(text);
  return h('a', { href, rel: 'noopener noreferrer nofollow', referrerpolicy: 'no-referrer' }, text);
}

const INLINE = new RegExp([
  '(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)',      // 1,2 code
  '\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*',          // 3 strong
  '__(?=\\S)([\\s\\S]*?\\S)__',                  // 4 strong
  '\\*(?=[^\\s*])([^*]*?[^\\s*])?\\*',           // 5 emphasis
  '\\b_(?=[^\\s_])([^_]*?[^\\s_])?_\\b',         // 6 emphasis
  '\\[([^\\]\\n]+)\\]\\(([^)\\s]+)\\)',           // 7,8 link
  '(https?:\\/\\/[^\\s<>()]*[^\\s<>().,;:!?\'"])', // 9 bare URL
].join('|'), 'g');

// Inline Markdown of one block of text as a list of nodes.
export function inline(text, depth = 0) {
  const out = [];
  let last = 0;
  const source = String(text);
  const re = new RegExp(INLINE.source, 'g');
  for (let m = re.exec(source); m; m = re.exec(source)) {
    if (m.index > last) out.push(source.slice(last, m.index));
    const [whole, , code, strong1, strong2, em1, em2, label, url, bare] = m;
    const inner = (s) => (depth < 4 ? inline(s, depth + 1) : [s]);
    if (code !== undefined) out.push(h('code', null, code));
    else if (strong1 !== undefined || strong2 !== undefined) out.push(h('strong', null, inner(strong1 ?? strong2)));
    else if (em1 !== undefined || em2 !== undefined) out.push(h('em', null, inner(em1 ?? em2)));
    else if (label !== undefined) out.push(safeUrl(url) ? externalLink(url, label) : whole);
    else if (bare !== undefined) out.push(externalLink(bare, bare));
    else out.push(whole);
    last = m.index + whole.length;
  }
  if (last < source.length) out.push(source.slice(last));
  return out;
}

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const FENCE = /^\s{0,3}(```|~~~)/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;

// The whole note as an element (class "markdown"). Headings start at h3 so
// they sit under the page's own h1 and h2.
export function renderMarkdown(text) {
  const root = h('div', { class: 'markdown' });
  const lines = String(text || '').replace(/\r\n?/g, '\n').split('\n');
  let para = [];
  let list = null;  // { el, type }
  const flush = () => {
    if (para.length) root.append(h('p', null, inline(para.join(' '))));
    para = [];
  };
  const endList = () => { list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (FENCE.test(line)) {
      flush(); endList();
      const fence = FENCE.exec(line)[1];
      const body = [];
      for (i++; i < lines.length && !lines[i].trimStart().startsWith(fence); i++) body.push(lines[i]);
      root.append(h('pre', { class: 'code' }, h('code', null, body.join('\n'))));
    } else if (!line.trim()) {
      flush(); endList();
    } else if ((m = HEADING.exec(line))) {
      flush(); endList();
      root.append(h(`h${Math.min(6, m[1].length + 2)}`, null, inline(m[2])));
    } else if ((m = BULLET.exec(line)) || (m = NUMBERED.exec(line))) {
      flush();
      const type = m.length === 3 ? 'ol' : 'ul';
      if (!list || list.type !== type) {
        list = { type, el: h(type, type === 'ol' && m[1] !== '1' ? { start: Number(m[1]) } : null) };
        root.append(list.el);
      }
      list.el.append(h('li', null, inline(m[m.length - 1])));
    } else if ((m = QUOTE.exec(line))) {
      flush(); endList();
      const quoted = [m[1]];
      while (i + 1 < lines.length && QUOTE.test(lines[i + 1])) quoted.push(QUOTE.exec(lines[++i])[1]);
      root.append(h('blockquote', null, h('p', null, inline(quoted.join(' ')))));
    } else if (list && /^\s{2,}\S/.test(line)) {
      list.el.lastChild.append(' ', ...inline(line.trim()));
    } else {
      endList();
      para.push(line.trim());
    }
  }
  flush();
  return root;
}

// Links of a release or build ({title, url}) as a list; null when none.
export function linksList(links) {
  if (!links || !links.length) return null;
  return h('ul', { class: 'links-list' }, links.map((l) =>
    h('li', null, externalLink(l.url, l.title || l.url), l.title ? h('span', { class: 'small muted' }, ' ', l.url) : null)));
}
