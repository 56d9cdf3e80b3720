// The live alert list: newest first, a new one marked for a moment (no pop-up, no sound);
// clicking one flies the globe to its place and highlights its key's hits. Only DOM; texts
// set with textContent.

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

export function createAlertList(list, { onAlertClick }, doc = document) {
  return {
    /** Renders `alerts` (newest first); those in `fresh` (ids) are marked new. */
    render(alerts, fresh = new Set()) {
      list.replaceChildren();
      for (const a of alerts) {
        const li = doc.createElement('li');
        li.className = [a.state === 'resolved' ? 'resolved' : 'firing', fresh.has(a.id) ? 'new' : ''].join(' ').trim();
        const button = doc.createElement('button');
        button.type = 'button';
        const { title, detail } = describeAlert(a);
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
