// The live alert list: newest first, a new one marked for a moment (no pop-up, no sound);
// clicking one with a place flies the globe there. Only DOM; texts set with textContent.

/** What a row says: rule, what it is about, its value, and its state. */
export function describeAlert(a) {
  const rule = { heavy_hitter: 'heavy hitter', outlier: 'outlier', suspicious_share: 'suspicious share' }[a.rule] ?? a.rule;
  const what = a.key ? `${a.kind} ${a.key}` : 'all traffic';
  const state = a.state === 'resolved' ? 'resolved' : 'firing';
  return { title: `${rule}: ${what}`, detail: `${(a.peak * 100).toFixed(1)}% at peak · ${state}` };
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
        button.disabled = !a.place;
        if (a.place) button.addEventListener('click', () => onAlertClick(a));
        li.append(button);
        list.append(li);
      }
      list.hidden = alerts.length === 0;
    },
  };
}
