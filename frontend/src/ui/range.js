// The range bar over the activity timeline: presets (last 5 minutes, hour, day, all of the
// data), the Live control, what is shown (live or which past window), the replay controls
// (speed, play/pause, stop) and the export links of the selected window. Only DOM: each
// control reports through a callback; `render` paints the state it is given.

import { REPLAY_SPEEDS } from '../data/past.js';

const PRESET_LABELS = [
  ['5m', '5 min'],
  ['1h', 'hour'],
  ['1d', 'day'],
  ['all', 'all'],
];

/**
 * @param {HTMLElement} container
 * @param {HTMLElement|null} subtitle the activity card's subtitle (says what the bars cover)
 * @param {{preset: (name: string) => void, live: () => void, play: () => void,
 *          stop: () => void, speed: (n: number) => void}} on
 * @param {Document} [doc]
 */
export function createRangeBar(container, subtitle, on, doc = document) {
  const make = (tag, props = {}, attrs = {}) => {
    const el = doc.createElement(tag);
    Object.assign(el, props);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  };
  const live = make('button', { type: 'button', textContent: 'Live' }, { 'data-testid': 'live', 'aria-pressed': 'true', class: 'live' });
  live.addEventListener('click', () => on.live());
  const presets = make('span', {}, { class: 'seg presets', role: 'group', 'aria-label': 'Show a past window' });
  for (const [name, label] of PRESET_LABELS) {
    const b = make('button', { type: 'button', textContent: label }, { 'data-preset': name, 'aria-pressed': 'false', title: name === 'all' ? 'all stored data' : `the last ${label} of data` });
    b.addEventListener('click', () => on.preset(name));
    presets.appendChild(b);
  }
  const state = make('span', { textContent: 'live' }, { 'data-testid': 'range-state', class: 'range-state', role: 'status' });
  const speed = make('select', {}, { 'data-testid': 'replay-speed', 'aria-label': 'Replay speed' });
  for (const n of REPLAY_SPEEDS) speed.appendChild(make('option', { value: String(n), textContent: `×${n}` }));
  speed.value = '60';
  speed.addEventListener('change', () => on.speed(Number(speed.value)));
  const play = make('button', { type: 'button', textContent: '▶ Replay' }, { 'data-testid': 'replay-play' });
  play.addEventListener('click', () => on.play());
  const stop = make('button', { type: 'button', textContent: '■ Stop' }, { 'data-testid': 'replay-stop' });
  stop.addEventListener('click', () => on.stop());
  const csv = make('a', { textContent: 'CSV' }, { 'data-testid': 'export-csv', download: 'history.csv', title: 'Export the window as CSV' });
  const jsonl = make('a', { textContent: 'JSON lines' }, { 'data-testid': 'export-jsonl', download: 'history.jsonl', title: 'Export the window as JSON lines' });
  // Hidden until a past window is shown (a page starts live, before any render).
  const replayBox = make('span', { hidden: true }, { class: 'replay', 'aria-label': 'Replay the window' });
  replayBox.append(speed, play, stop);
  const exportBox = make('span', { hidden: true }, { class: 'export' });
  exportBox.append('export ', csv, ' ', jsonl);
  container.append(live, presets, state, replayBox, exportBox);

  return {
    /** The replay speed chosen. */
    speed: () => Number(speed.value),
    /**
     * @param {{mode: 'live'|'past', preset?: string|null, text: string,
     *          replay?: 'off'|'playing'|'paused'|'done', csv?: string, jsonl?: string}} s
     */
    render(s) {
      const past = s.mode === 'past';
      live.setAttribute('aria-pressed', String(!past));
      live.textContent = past ? '← Live' : 'Live';
      if (subtitle) subtitle.textContent = past ? '· selected window · events per bar' : '· last 10 min of data · events/s';
      for (const b of presets.children) b.setAttribute('aria-pressed', String(past && b.getAttribute('data-preset') === s.preset));
      state.textContent = s.text;
      replayBox.hidden = !past;
      exportBox.hidden = !past;
      const replay = s.replay ?? 'off';
      play.textContent = replay === 'playing' ? '❚❚ Pause' : replay === 'paused' ? '▶ Resume' : replay === 'done' ? '▶ Again' : '▶ Replay';
      stop.disabled = replay === 'off';
      if (past) {
        csv.href = s.csv;
        jsonl.href = s.jsonl;
      }
    },
  };
}
