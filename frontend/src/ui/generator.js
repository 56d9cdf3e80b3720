// The generator card: whether the built-in generator runs and how (for everyone who may
// watch), and for an admin start/stop, rate, suspicious %, protocol mix and a burst button
// (data-role="admin" in index.html; login.js shows it by role). Errors are shown as the
// server words them, the field it names marked. Only DOM; text from the server is set with
// textContent.

import { describeGenerator, fieldOf, formatTable } from '../data/generator.js';

const SETTINGS = ['rate', 'suspicious_percent', 'protocols'];
const BURST = ['network', 'share_percent', 'secs'];

/** What the card says when a request fails: a refusal in the page's words, else the server's. */
export function describeFailure(result) {
  if (result.status === 401) return 'not logged in as an admin (the session may have ended): log in again to steer the generator';
  if (result.status === 403) return 'only an admin can steer the generator';
  return result.message;
}

export function createGeneratorCard(root, { onToggle, onApply, onBurst }, doc = document) {
  const $ = (sel) => root.querySelector(sel);
  const el = {
    state: $('[data-testid="generator-state"]'),
    status: $('[data-testid="generator-status"]'),
    toggle: $('[data-testid="generator-toggle"]'),
    form: $('#generator-form'),
    burst: $('[data-testid="generator-burst"]'),
    error: $('#generator-error'),
  };
  const input = (name) => root.querySelector(`[name="${name}"]`);
  let running = false;
  let shown = null;

  const values = (names) => Object.fromEntries(names.map((n) => [n, input(n).value]));

  /** Shows the generator's state; the settings fields follow unless the user is typing. */
  function render(view) {
    if (!view) return;
    running = view.running;
    el.state.textContent = running ? 'running' : 'stopped';
    el.state.setAttribute('data-running', String(running));
    el.status.textContent = describeGenerator(view);
    el.toggle.textContent = running ? 'Stop' : 'Start';
    el.burst.disabled = !running;
    const c = view.config;
    const fields = { rate: String(c.rate), suspicious_percent: String(+(c.suspicious_share * 100).toFixed(4)), protocols: formatTable(c.protocols) };
    const typing = SETTINGS.some((n) => input(n) === doc.activeElement);
    if (!typing && JSON.stringify(fields) !== JSON.stringify(shown)) {
      shown = fields;
      for (const n of SETTINGS) input(n).value = fields[n];
    }
  }

  /** Shows the outcome of a request: the server's message, the field it names marked. */
  function showResult(result) {
    for (const n of [...SETTINGS, ...BURST]) input(n).removeAttribute('aria-invalid');
    el.error.hidden = result.ok;
    el.error.textContent = result.ok ? '' : describeFailure(result);
    const name = fieldOf(result.field);
    if (!result.ok && result.field && input(name)) input(name).setAttribute('aria-invalid', 'true');
    if (result.ok) render(result.view);
  }

  el.toggle.addEventListener('click', () => onToggle(running));
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    onApply(values(SETTINGS));
  });
  el.burst.addEventListener('click', () => onBurst(values(BURST)));
  return { render, showResult };
}
