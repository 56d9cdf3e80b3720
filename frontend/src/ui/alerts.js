// The live alert list: newest first, a new one marked for a moment (no pop-up, no sound);
// clicking one flies the globe to its place and highlights its key's hits. An event rule's
// alerts (one per source) share one row, at its newest. Only DOM; texts set with textContent.

import { isEventAlert } from '../data/analytics.js';

const WORDS = {
  heavy_hitter: 'heavy hitter',
  outlier: 'outlier',
  suspicious_share: 'suspicious share',
  rate_jump: 'rate jump',
  new_key: 'new in volume',
  event: 'event',
};

/** What a row says: rule, what it is about, its value, and its state. */
export function describeAlert(a) {
  const type = a.type ?? a.rule;
  const words = WORDS[type] ?? type;
  // A rule named after its type says it once; another says its own name.
  const rule = a.rule && a.rule !== type ? a.rule.replaceAll('_', ' ') : words;
  const what = a.key ? `${a.kind} ${a.key}` : 'all traffic';
  const state = a.state === 'resolved' ? 'resolved' : 'firing';
  let value;
  if (type === 'event') value = `${a.count ?? 1} matching`;
  else if (type === 'rate_jump') value = `${Number(a.peak).toFixed(1)}× the baseline at peak`;
  else value = `${(a.peak * 100).toFixed(1)}% at peak`;
  const severity = a.severity === 'critical' ? ' · critical' : '';
  return { title: `${rule}: ${what}`, detail: `${value} · ${state}${severity}` };
}

/**
 * The rows of the list from `alerts` (newest first): each windowed alert on its own, the
 * alerts of one event rule together at the place of its newest. A row is `{ alert }` (the
 * newest), `ids`, and how many of them are `firing`.
 */
export function alertRows(alerts) {
  const rows = [];
  const byRule = new Map();
  for (const a of alerts) {
    const firing = a.state === 'resolved' ? 0 : 1;
    const row = isEventAlert(a) ? byRule.get(a.rule) : undefined;
    if (row) {
      row.ids.push(a.id);
      row.firing += firing;
      continue;
    }
    const added = { alert: a, ids: [a.id], firing };
    if (isEventAlert(a)) byRule.set(a.rule, added);
    rows.push(added);
  }
  return rows;
}

/** What a row of several alerts of one event rule says, from its newest alert's words. */
function describeRow(row) {
  const words = describeAlert(row.alert);
  const more = row.ids.length - 1;
  if (more === 0) return words;
  return {
    title: `${words.title} and ${more} more`,
    detail: `${row.ids.length} alerts, ${row.firing} firing · newest: ${words.detail}`,
  };
}

export function createAlertList(list, { onAlertClick }, doc = document) {
  return {
    /** Renders `alerts` (newest first); those in `fresh` (ids) are marked new. */
    render(alerts, fresh = new Set()) {
      list.replaceChildren();
      for (const row of alertRows(alerts)) {
        const a = row.alert;
        const li = doc.createElement('li');
        li.className = [row.firing > 0 ? 'firing' : 'resolved', row.ids.some((id) => fresh.has(id)) ? 'new' : ''].join(' ').trim();
        const button = doc.createElement('button');
        button.type = 'button';
        const { title, detail } = describeRow(row);
        const t = doc.createElement('span');
        t.textContent = title;
        const d = doc.createElement('span');
        d.className = 'muted';
        d.textContent = detail;
        button.append(t, d);
        // An alert with a place or a key can be shown on the globe.
        button.disabled = !a.place && !a.key && a.type !== 'suspicious_share';
        if (!button.disabled) button.addEventListener('click', () => onAlertClick(a));
        li.append(button);
        list.append(li);
      }
      list.hidden = alerts.length === 0;
    },
  };
}
