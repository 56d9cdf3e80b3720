// Importing a CSV file into the server's history (POST /api/import, an admin's): the upload
// with progress (XMLHttpRequest: fetch reports no upload progress) and what its answer says.
// No DOM here; the Import control (ui/import.js) shows what these return.

/** Most rejected rows the page lists (the server lists up to 100, counts them all). */
export const LISTED_ERRORS = 10;

/**
 * Uploads `file` as the body of POST /api/import. Resolves to {status, body} (status 0 and
 * body null when the request failed before an answer, e.g. the connection broke).
 * @param {Blob} file
 * @param {{progress?: (loaded: number, total: number) => void}} [on]
 * @param {typeof XMLHttpRequest} [Xhr] injected by tests
 */
export function uploadCsv(file, on = {}, Xhr = globalThis.XMLHttpRequest) {
  return new Promise((resolve) => {
    const xhr = new Xhr();
    xhr.open('POST', '/api/import');
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'text/csv');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) on.progress?.(e.loaded, e.total);
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.onabort = xhr.onerror;
    xhr.send(file);
  });
}

const count = (n) => Number(n ?? 0).toLocaleString('en-US');

/**
 * What an import's answer says, for the page: `ok` (the file was read to its end), a one-line
 * `text`, and the first rejected rows as `line N: reason` (`more` counts those not listed).
 * @param {number} status
 * @param {object|null} body
 */
export function describeImport(status, body) {
  const report = status === 200 ? body : body?.report;
  const lines = [];
  let text;
  if (report) {
    text = `imported ${count(report.accepted)} of ${count(report.rows)} rows · ${count(report.duplicates)} already stored · ${count(report.rejected)} rejected`;
    if (status !== 200) text = `${body?.message ?? `HTTP ${status}`} — ${text}`;
    for (const e of (report.errors ?? []).slice(0, LISTED_ERRORS)) lines.push(`line ${e.line}: ${e.reason}`);
  } else if (status === 0) {
    text = 'import failed: no answer from the server';
  } else {
    text = `import refused: ${body?.message ?? `HTTP ${status}`}`;
  }
  const more = report ? Math.max(0, Number(report.rejected ?? 0) - lines.length) : 0;
  return { ok: status === 200, text, errors: lines, more };
}
