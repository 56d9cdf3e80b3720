import { test } from 'node:test';
import assert from 'node:assert/strict';

import { showRole } from '../src/ui/login.js';
import { fakeDocument, h } from './fakedom.js';

/** A page with an admin-only form and a note for everyone else, both hidden at first. */
function page(doc) {
  const form = h(doc, 'form', { 'data-role': 'admin' });
  const note = h(doc, 'p', { 'data-role': 'not-admin' });
  const other = h(doc, 'p');
  form.hidden = note.hidden = true;
  return { root: h(doc, 'main', {}, h(doc, 'section', {}, note, form), other), form, note, other };
}

test('an admin sees the admin-only controls and not the note', () => {
  const { root, form, note, other } = page(fakeDocument());
  showRole(root, 'admin');
  assert.equal(form.hidden, false);
  assert.equal(note.hidden, true);
  assert.equal(other.hidden, false);
});

test('a viewer, an open page (no role) and a signed-out page see the note, not the controls', () => {
  for (const role of ['viewer', null, undefined]) {
    const { root, form, note } = page(fakeDocument());
    showRole(root, 'admin');
    showRole(root, role);
    assert.equal(form.hidden, true, `${role}: form hidden`);
    assert.equal(note.hidden, false, `${role}: note shown`);
  }
});
