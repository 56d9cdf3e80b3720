import { test } from 'node:test';
import assert from 'node:assert/strict';

import { access, setupToken } from '../src/data/session.js';

test('a 401 from /api/me asks for a login, or for the first admin while there is none', () => {
  assert.deepEqual(access({ status: 401, body: { message: 'not logged in' } }), { view: 'login' });
  const setup = { status: 401, body: { message: 'no admin yet: create one with the setup token' } };
  assert.deepEqual(access(setup), { view: 'setup' });
});

test('a 200 from /api/me lets the page in with the role it says', () => {
  assert.deepEqual(access({ status: 200, body: { user: 'val', role: 'viewer', open: false } }), {
    view: 'in',
    user: 'val',
    role: 'viewer',
    open: false,
  });
  assert.deepEqual(access({ status: 200, body: { user: null, role: null, open: true } }), {
    view: 'in',
    user: null,
    role: null,
    open: true,
  });
});

test('the setup token is read from the link the server prints', () => {
  assert.equal(setupToken('#setup=AbC_-9'), 'AbC_-9');
  assert.equal(setupToken('#x=1&setup=tok'), 'tok');
  assert.equal(setupToken('#setup=<script>'), '');
  assert.equal(setupToken(''), '');
});
