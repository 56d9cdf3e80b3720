// The analytics panel: heavy hitters, top k and outliers of the chosen key kind, the window
// and thresholds they were computed with, and a form that changes T, k, H and X through the
// settings API (its validation errors shown as the server words them; a refusal, when the
// session is over or is not an admin's, said as such). The form is an admin's: login.js shows
// it by role (data-role in index.html). Only DOM; every text from the data is set with
// textContent.

import { formatCount } from './format.js';

const FIELDS = ['window_secs', 'top_k', 'heavy_hitter_percent', 'outlier_stddevs'];

/** One line about the window: T, k, H, X, its events, and whether the results are exact. */
export function describeWindow(r) {
  if (!r) return 'no data yet';
  const t = r.thresholds;
  const exact = r.exact ? 'exact' : `summary: counts up to ${formatCount(r.error_bound.count)} low`;
  const share = `${(r.suspicious_share * 100).toFixed(1)}% suspicious`;
  return `last ${t.window_secs} s · k ${t.top_k} · H ${t.heavy_hitter_percent}% · X ${t.outlier_stddevs}σ · ${formatCount(r.total.count)} events, ${share} · ${exact}`;
}

/** What the form says when a PUT fails: a refusal in the page's words, else the server's. */
export function describeFailure(result) {
  if (result.status === 401) return 'not logged in as an admin (the session may have ended): log in again to change these';
  if (result.status === 403) return 'only an admin can change these settings';
  return result.message;
}

/** A list entry's text: key, events, share of the window. */
export function describeKey(e) {
  return [e.key, `${formatCount(e.count)} · ${(e.share * 100).toFixed(1)}%`];
}

export function createAnalyticsPanel(root, { onApply, onKeyClick }, doc = document) {
  const $ = (sel) => root.querySelector(sel);
  const el = {
    kind: $('#analytics-kind'),
    window: $('#analytics-window'),
    heavy: $('[data-testid="heavy-hitters"]'),
    top: $('[data-testid="top-k"]'),
    outliers: $('[data-testid="outliers"]'),
    form: $('#analytics-form'),
    error: $('#analytics-error'),
  };
  const inputs = Object.fromEntries(FIELDS.map((f) => [f, el.form.querySelector(`[name="${f}"]`)]));
  let shownThresholds = null;
  let last = null;

  function fillList(list, entries) {
    list.replaceChildren();
    for (const e of entries) {
      const li = doc.createElement('li');
      const button = doc.createElement('button');
      button.type = 'button';
      const [name, figures] = describeKey(e);
      const a = doc.createElement('span');
      a.textContent = name;
      const b = doc.createElement('span');
      b.className = 'muted';
      b.textContent = figures;
      button.append(a, b);
      button.disabled = !e.place;
      if (e.place) button.addEventListener('click', () => onKeyClick(e.place));
      li.append(button);
      list.append(li);
    }
    if (entries.length === 0) {
      const li = doc.createElement('li');
      li.className = 'muted';
      li.textContent = 'none';
      list.append(li);
    }
  }

  function render(report) {
    last = report;
    const r = report?.kinds?.[el.kind.value] ?? null;
    el.window.textContent = describeWindow(r);
    fillList(el.heavy, r?.heavy_hitters ?? []);
    fillList(el.top, r?.top_by_count ?? []);
    fillList(el.outliers, r?.outliers ?? []);
    // The form shows the settings in force, unless the user is typing in it.
    const t = r?.thresholds;
    const typing = FIELDS.some((f) => inputs[f] === doc.activeElement);
    if (t && !typing && JSON.stringify(t) !== JSON.stringify(shownThresholds)) {
      shownThresholds = t;
      for (const f of FIELDS) inputs[f].value = String(t[f]);
    }
  }

  /** Shows the result of a PUT: the server's message, the named field marked. */
  function showResult(result) {
    for (const f of FIELDS) inputs[f].removeAttribute('aria-invalid');
    el.error.hidden = result.ok;
    el.error.textContent = result.ok ? '' : describeFailure(result);
    const name = result.field?.split('.').pop();
    if (!result.ok && inputs[name]) inputs[name].setAttribute('aria-invalid', 'true');
  }

  el.kind.addEventListener('change', () => {
    shownThresholds = null;
    render(last);
  });
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = Object.fromEntries(FIELDS.map((f) => [f, inputs[f].value]));
    onApply(el.kind.value, values);
  });
  return { render, showResult };
}
