// The Import control beside the export links (admins only: data-role="admin", shown by
// showRole): a file picker, the upload's progress, then what the server made of the file.
// Only DOM: the chosen file is reported through a callback; text from the server is set
// with textContent.

/**
 * @param {HTMLElement} container
 * @param {{file: (file: Blob) => void}} on
 * @param {Document} [doc]
 */
export function createImport(container, on, doc = document) {
  const make = (tag, props = {}, attrs = {}) => {
    const el = doc.createElement(tag);
    Object.assign(el, props);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  };
  const box = make('span', { hidden: true }, { class: 'import', 'data-role': 'admin' });
  const input = make('input', { type: 'file', hidden: true }, { accept: '.csv,text/csv', 'data-testid': 'import-file' });
  const button = make('button', { type: 'button', textContent: 'Import CSV…' }, { 'data-testid': 'import', title: 'Import a CSV file into the history (rows already stored are skipped)' });
  const progress = make('progress', { max: 1, value: 0, hidden: true }, { 'data-testid': 'import-progress' });
  const state = make('span', {}, { 'data-testid': 'import-state', role: 'status' });
  const errors = make('ul', { hidden: true }, { 'data-testid': 'import-errors', class: 'import-errors' });
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) on.file(file);
    input.value = '';
  });
  box.append(input, button, progress, state, errors);
  container.append(box);

  return {
    /** An upload started: the button waits, the bar shows the bytes sent. */
    start(name) {
      button.disabled = true;
      progress.hidden = false;
      progress.value = 0;
      state.textContent = `uploading ${name}…`;
      errors.hidden = true;
      errors.replaceChildren();
    },
    progress(loaded, total) {
      progress.value = total > 0 ? loaded / total : 0;
      if (total > 0 && loaded >= total) state.textContent = 'sent; the server is storing it…';
    },
    /** The answer, as describeImport (data/upload.js) says it. */
    done({ ok, text, errors: lines, more }) {
      button.disabled = false;
      progress.hidden = true;
      state.textContent = text;
      box.setAttribute('data-outcome', ok ? 'ok' : 'failed');
      errors.replaceChildren();
      for (const line of lines) errors.append(make('li', { textContent: line }));
      if (more > 0) errors.append(make('li', { textContent: `… and ${more.toLocaleString('en-US')} more` }));
      errors.hidden = errors.children.length === 0;
    },
  };
}
