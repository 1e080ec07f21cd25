// The head of a page showing one record of a list (a user, a webhook): crumbs
// back to the list, the record's name as the title, then the record itself.
import { get } from '../api.js';
import { h, errorBox } from '../dom.js';

// Appends the crumbs and title to `main` and reads `path`; when that fails,
// shows the error under them and returns null.
export async function openDetail(main, list, name, path) {
  main.append(h('p', { class: 'crumbs' }, h('a', { href: list.href }, list.title), ' / ', name), h('h1', null, name));
  try {
    return await get(path);
  } catch (e) {
    main.append(errorBox(e));
    return null;
  }
}
