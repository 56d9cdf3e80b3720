import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDocument } from './fakedom.js';
import { createRangeBar } from '../src/ui/range.js';

function bar() {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const subtitle = doc.createElement('span');
  const calls = [];
  const on = {};
  for (const name of ['preset', 'live', 'play', 'stop', 'speed']) on[name] = (...args) => calls.push([name, ...args]);
  const ui = createRangeBar(root, subtitle, on, doc);
  const $ = (sel) => root.querySelector(sel);
  return { ui, root, subtitle, calls, $ };
}

test('a new bar, before any render, is live: replay and export hidden', () => {
  const { $ } = bar();
  assert.equal($('[data-testid="export-csv"]').parent.hidden, true);
  assert.equal($('[data-testid="replay-play"]').parent.hidden, true);
});

test('live: Live is pressed, no preset, replay and export hidden', () => {
  const { ui, subtitle, $ } = bar();
  ui.render({ mode: 'live', text: 'live' });
  assert.equal($('[data-testid="live"]').getAttribute('aria-pressed'), 'true');
  assert.equal($('[data-preset="5m"]').getAttribute('aria-pressed'), 'false');
  assert.equal($('[data-testid="range-state"]').textContent, 'live');
  assert.equal($('[data-testid="export-csv"]').parent.hidden, true);
  assert.equal($('[data-testid="replay-play"]').parent.hidden, true);
  assert.match(subtitle.textContent, /last 10 min/);
});

test('a past window: its preset pressed, Live offered, export links set, replay state shown', () => {
  const { ui, subtitle, $ } = bar();
  ui.render({ mode: 'past', preset: '1h', text: 'past: x', replay: 'playing', csv: '/a.csv', jsonl: '/a.jsonl' });
  assert.equal($('[data-testid="live"]').getAttribute('aria-pressed'), 'false');
  assert.equal($('[data-testid="live"]').textContent, '← Live');
  assert.equal($('[data-preset="1h"]').getAttribute('aria-pressed'), 'true');
  assert.equal($('[data-preset="5m"]').getAttribute('aria-pressed'), 'false');
  assert.equal($('[data-testid="export-csv"]').href, '/a.csv');
  assert.equal($('[data-testid="export-jsonl"]').href, '/a.jsonl');
  assert.equal($('[data-testid="export-csv"]').parent.hidden, false);
  assert.equal($('[data-testid="replay-play"]').textContent, '❚❚ Pause');
  assert.equal($('[data-testid="replay-stop"]').disabled, false);
  assert.match(subtitle.textContent, /selected window/);
  ui.render({ mode: 'past', preset: null, text: 'past: y', replay: 'paused', csv: '', jsonl: '' });
  assert.equal($('[data-testid="replay-play"]').textContent, '▶ Resume');
  ui.render({ mode: 'past', preset: null, text: 'past: y', replay: 'done', csv: '', jsonl: '' });
  assert.equal($('[data-testid="replay-play"]').textContent, '▶ Again');
  assert.equal($('[data-testid="replay-stop"]').disabled, false);
  ui.render({ mode: 'past', preset: null, text: 'past: y', replay: 'off', csv: '', jsonl: '' });
  assert.equal($('[data-testid="replay-play"]').textContent, '▶ Replay');
  assert.equal($('[data-testid="replay-stop"]').disabled, true);
});

test('the controls report presets, live, replay and speed', () => {
  const { ui, calls, $ } = bar();
  $('[data-preset="1d"]').dispatch('click');
  $('[data-testid="live"]').dispatch('click');
  $('[data-testid="replay-play"]').dispatch('click');
  $('[data-testid="replay-stop"]').dispatch('click');
  const speed = $('[data-testid="replay-speed"]');
  assert.equal(ui.speed(), 60, 'x60 by default');
  speed.value = '600';
  speed.dispatch('change');
  assert.deepEqual(calls, [['preset', '1d'], ['live'], ['play'], ['stop'], ['speed', 600]]);
  assert.equal(ui.speed(), 600);
});
