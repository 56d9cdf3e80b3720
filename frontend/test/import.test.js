import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDocument } from './fakedom.js';
import { createImport } from '../src/ui/import.js';
import { uploadCsv, describeImport, LISTED_ERRORS } from '../src/data/upload.js';
import { showRole } from '../src/ui/login.js';

function control() {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const files = [];
  const ui = createImport(root, { file: (f) => files.push(f) }, doc);
  const $ = (sel) => root.querySelector(sel);
  return { ui, root, files, $ };
}

/** An XMLHttpRequest that records what is sent and answers when told. */
function fakeXhr() {
  const made = [];
  class Xhr {
    constructor() {
      this.upload = {};
      this.headers = {};
      made.push(this);
    }
    open(method, url) {
      Object.assign(this, { method, url });
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send(body) {
      this.body = body;
    }
    answer(status, text) {
      Object.assign(this, { status, responseText: text });
      this.onload();
    }
  }
  return { Xhr, made };
}

test('the control is an admin\'s: hidden until showRole says admin', () => {
  const { root, $ } = control();
  const box = $('[data-testid="import"]').parent;
  assert.equal(box.hidden, true);
  showRole(root, 'viewer');
  assert.equal(box.hidden, true);
  showRole(root, 'admin');
  assert.equal(box.hidden, false);
});

test('the button opens the picker and a chosen file is reported once', () => {
  const { files, $ } = control();
  const input = $('[data-testid="import-file"]');
  let opened = 0;
  input.click = () => (opened += 1);
  $('[data-testid="import"]').dispatch('click');
  assert.equal(opened, 1);
  const file = { name: 'a.csv' };
  input.files = [file];
  input.dispatch('change');
  input.files = [];
  input.dispatch('change');
  assert.deepEqual(files, [file]);
});

test('an upload shows its progress, then the report with the first line errors', () => {
  const { ui, $ } = control();
  ui.start('a.csv');
  assert.equal($('[data-testid="import"]').disabled, true);
  assert.equal($('[data-testid="import-progress"]').hidden, false);
  ui.progress(25, 100);
  assert.equal($('[data-testid="import-progress"]').value, 0.25);
  ui.progress(100, 100);
  assert.match($('[data-testid="import-state"]').textContent, /storing/);
  const report = { rows: 5, accepted: 2, duplicates: 1, rejected: 2, errors: [{ line: 4, reason: 'timestamp: bad' }, { line: 6, reason: 'ip: bad' }] };
  ui.done(describeImport(200, report));
  assert.equal($('[data-testid="import"]').disabled, false);
  assert.equal($('[data-testid="import-progress"]').hidden, true);
  assert.equal($('[data-testid="import-state"]').textContent, 'imported 2 of 5 rows · 1 already stored · 2 rejected');
  const errors = $('[data-testid="import-errors"]');
  assert.equal(errors.hidden, false);
  assert.deepEqual(errors.children.map((li) => li.textContent), ['line 4: timestamp: bad', 'line 6: ip: bad']);
  assert.equal(errors.parent.getAttribute('data-outcome'), 'ok');
  ui.start('b.csv');
  assert.equal(errors.hidden, true, 'a new upload clears the old errors');
});

test('the page lists the first errors and counts the rest', () => {
  const errors = Array.from({ length: 100 }, (_, i) => ({ line: i + 2, reason: 'x' }));
  const said = describeImport(200, { rows: 150, accepted: 0, duplicates: 0, rejected: 150, errors });
  assert.equal(said.errors.length, LISTED_ERRORS);
  assert.equal(said.errors[0], 'line 2: x');
  assert.equal(said.more, 150 - LISTED_ERRORS);
  const { ui, $ } = control();
  ui.done(said);
  const items = $('[data-testid="import-errors"]').children;
  assert.equal(items.length, LISTED_ERRORS + 1);
  assert.equal(items[LISTED_ERRORS].textContent, `… and ${150 - LISTED_ERRORS} more`);
});

test('refusals and cut uploads say why, with what was imported before the cut', () => {
  assert.deepEqual(describeImport(409, { error: 'conflict', message: 'an import is already running' }), {
    ok: false,
    text: 'import refused: an import is already running',
    errors: [],
    more: 0,
  });
  const cut = describeImport(413, { error: 'too_large', message: 'too big', report: { rows: 3, accepted: 3, duplicates: 0, rejected: 0, errors: [] } });
  assert.equal(cut.ok, false);
  assert.equal(cut.text, 'too big — imported 3 of 3 rows · 0 already stored · 0 rejected');
  assert.equal(describeImport(0, null).text, 'import failed: no answer from the server');
});

test('the upload posts the file as text/csv with the session and reports progress and the answer', async () => {
  const { Xhr, made } = fakeXhr();
  const seen = [];
  const file = { name: 'a.csv' };
  const answer = uploadCsv(file, { progress: (l, t) => seen.push([l, t]) }, Xhr);
  const xhr = made[0];
  assert.deepEqual([xhr.method, xhr.url, xhr.body, xhr.withCredentials], ['POST', '/api/import', file, true]);
  assert.equal(xhr.headers['content-type'], 'text/csv');
  xhr.upload.onprogress({ lengthComputable: true, loaded: 10, total: 40 });
  xhr.upload.onprogress({ lengthComputable: false, loaded: 20, total: 0 });
  xhr.answer(200, '{"rows":1,"accepted":1}');
  assert.deepEqual(await answer, { status: 200, body: { rows: 1, accepted: 1 } });
  assert.deepEqual(seen, [[10, 40]]);
  const broken = uploadCsv(file, {}, Xhr);
  made[1].onerror();
  assert.deepEqual(await broken, { status: 0, body: null });
});
