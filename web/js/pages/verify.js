// "Verify files" on a target card: asks the server to have the target's agent
// re-hash every file under `current` against the manifest of the build it
// runs (POST /targets/{target}/validate) and shows the answer inline.
//
// The board redraws itself every few seconds, so results live in a Map the
// board keeps (target -> {key, pending?, report?, error?, at}); a result is
// shown only while the target still runs the build it was taken for.
import { post, enc } from '../api.js';
import { h, append, clear, timeEl } from '../dom.js';

const MAX_LISTED = 50;

function idFor(target) {
  return 'verify-' + target.replace(/[^A-Za-z0-9_-]/g, '_');
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function problemItem(kind, path, problem) {
  return h('li', { class: `verify-${kind}` },
    h('span', { class: 'verify-kind' }, kind), ' ', h('code', { class: 'verify-path' }, path),
    problem ? [': ', problem] : null);
}

function resultView(entry) {
  if (entry.pending) return h('p', { class: 'muted small' }, 'Checking every file…');
  if (entry.error) {
    return h('p', { class: 'verify-error small' }, 'Could not verify: ', entry.error.message || String(entry.error));
  }
  const r = entry.report;
  const label = `${r.release} build ${r.build}`;
  const checked = entry.at ? [' · ', timeEl(entry.at)] : null;
  if (r.ok) {
    return h('p', { class: 'verify-ok small' },
      `${plural(r.files_checked, 'file matches', 'files match')} build ${label}`, checked);
  }
  const problems = [
    ...(r.missing || []).map((p) => ['missing', p, '']),
    ...(r.changed || []).map((c) => ['changed', c.path, c.problem]),
    ...(r.extra || []).map((p) => ['extra', p, '']),
  ];
  const shown = problems.slice(0, MAX_LISTED);
  return h('div', { class: 'verify-bad small' },
    h('p', null, h('strong', null, plural(problems.length, 'problem', 'problems')),
      ` against build ${label}: ${r.missing.length} missing, ${r.changed.length} changed, ${r.extra.length} extra`, checked),
    h('ul', { class: 'verify-problems' }, shown.map(([kind, path, problem]) => problemItem(kind, path, problem))),
    problems.length > shown.length
      ? h('p', { class: 'muted' }, `and ${problems.length - shown.length} more (reprise validate ${r.target} lists them all)`)
      : null);
}

// The button and the place for its result, for one target card. `key` names
// the build the target runs now.
export function verifyControls(target, key, results) {
  const id = idFor(target);
  const out = h('div', { class: 'verify-result', id: `${id}-result`, role: 'status', 'aria-live': 'polite' });
  const button = h('button', {
    type: 'button', class: 'small secondary', id,
    'aria-label': `Verify files on ${target}`, 'aria-controls': `${id}-result`,
  }, 'Verify files');

  // The board may have been redrawn meanwhile: fill what is on the page now.
  function show(entry) {
    const el = out.isConnected ? out : document.getElementById(`${id}-result`) || out;
    const btn = button.isConnected ? button : document.getElementById(id) || button;
    el.setAttribute('aria-busy', entry && entry.pending ? 'true' : 'false');
    btn.setAttribute('aria-disabled', entry && entry.pending ? 'true' : 'false');
    btn.textContent = entry && entry.pending ? 'Verifying…' : 'Verify files';
    clear(el);
    if (entry) append(el, [resultView(entry)]);
  }

  button.addEventListener('click', async () => {
    const now = results.get(target);
    if (now && now.pending) return;  // one check at a time; the button keeps its focus
    results.set(target, { key, pending: true });
    show(results.get(target));
    let entry;
    try {
      entry = { key, report: await post(`/targets/${enc(target)}/validate`, {}), at: new Date().toISOString() };
    } catch (e) {
      entry = { key, error: e };
    }
    results.set(target, entry);
    show(entry);
  });

  const saved = results.get(target);
  if (saved && saved.key === key) show(saved);
  else if (saved) results.delete(target);
  return h('div', { class: 'verify' }, button, out);
}
