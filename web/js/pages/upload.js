// Uploading artifacts to a build: drop archives on the zone (or choose them),
// each is sent with XMLHttpRequest so its progress shows as it goes; when
// stored, the server's sha256, size and file count are shown.
import { ApiError, buildPath, currentCsrfToken, enc } from '../api.js';
import { h, clear, fmtBytes } from '../dom.js';

// "site-1.2.tar.gz" -> "site-1.2": an artifact name the API accepts.
export function artifactNameOf(fileName) {
  const base = String(fileName).replace(/\.(tar\.gz|tgz|tar|zip)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '');
  return base.slice(0, 64) || 'artifact';
}

function send(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', '/api/v1' + path);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const token = currentCsrfToken();
    if (token) xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300 && data) { resolve(data); return; }
      const err = data && data.error ? data.error : {};
      reject(new ApiError(xhr.status, err.code || 'http_error', err.message || `the upload answered ${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'The upload was interrupted: the server could not be reached.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.')));
    xhr.send(file);
  });
}

// The upload area of a build page; `onStored` runs after each stored artifact.
export function uploadArea({ app, rel, n, onStored }) {
  const input = h('input', { type: 'file', id: 'upload-file', multiple: true, accept: '.tar,.tar.gz,.tgz,.zip,application/gzip,application/x-tar,application/zip' });
  const list = h('ul', { class: 'uploads', id: 'uploads', 'aria-live': 'polite' });
  const zone = h('div', { class: 'drop-zone', id: 'drop-zone' },
    h('p', null, h('strong', null, 'Drop archives here'), ' (tar, tar.gz or zip), or ',
      h('label', { for: 'upload-file', class: 'file-label' }, 'choose files'), input),
    h('p', { class: 'small muted' }, 'Each file becomes an artifact named after it (site-1.2.tar.gz → site-1.2). An artifact is immutable: the same name takes only the identical bytes again.'));
  let queue = Promise.resolve();

  const start = (file) => {
    const name = artifactNameOf(file.name);
    const bar = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Upload of ${name}` });
    const text = h('span', { class: 'small' }, `waiting · ${fmtBytes(file.size)}`);
    const result = h('div', { class: 'small upload-result' });
    const item = h('li', { class: 'card upload', 'data-artifact': name }, h('strong', null, name), ' ', h('span', { class: 'small muted' }, file.name), h('div', { class: 'bar' }, bar, text), result);
    list.append(item);
    queue = queue.then(async () => {
      try {
        const stored = await send(`${buildPath(app, rel, n)}/artifacts/${enc(name)}`, file, (done, total) => {
          bar.max = total || 1;
          bar.value = done;
          text.textContent = `${Math.floor((100 * done) / (total || 1))}% · ${fmtBytes(done)} of ${fmtBytes(total)}`;
        });
        bar.value = bar.max;
        text.textContent = `stored · ${fmtBytes(stored.size)}`;
        item.classList.add('ok');
        clear(result).append(
          stored.created === false ? (stored.restored ? 'Restored (the identical bytes were uploaded again). ' : 'Already stored (identical bytes). ') : 'Stored. ',
          `${stored.file_count} files · SHA-256 `, h('code', { class: 'hash' }, stored.sha256));
        if (onStored) onStored(stored);
      } catch (e) {
        item.classList.add('failed');
        text.textContent = 'failed';
        clear(result).append(h('span', { class: 'error-text', role: 'alert' }, e.message));
      }
    });
  };
  const takeFiles = (files) => { for (const f of files) start(f); };
  input.addEventListener('change', () => { takeFiles(input.files); input.value = ''; });
  zone.addEventListener('dragover', (ev) => { ev.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    takeFiles((ev.dataTransfer && ev.dataTransfer.files) || []);
  });
  return h('section', { class: 'upload-area', 'aria-labelledby': 'upload-h' }, h('h3', { id: 'upload-h' }, 'Upload archives'), zone, list);
}
