// The alert rules in force (GET /api/alerts/rules), listed beside the alerts: windowed
// rules first, then event rules, each with what it watches and how many of its alerts fire.
// Only DOM; texts set with textContent.

import { describeRule } from '../data/alertkey.js';

export function createRuleList(list, doc = document) {
  return {
    /** Renders the body of GET /api/alerts/rules (null: nothing to show). */
    render(view) {
      list.replaceChildren();
      const rules = view?.rules ?? [];
      const status = new Map((view?.status ?? []).map((s) => [s.name, s]));
      const windowed = rules.filter((r) => r.type !== 'event');
      const single = rules.filter((r) => r.type === 'event');
      for (const rule of [...windowed, ...single]) {
        const li = doc.createElement('li');
        li.className = `rule ${rule.type === 'event' ? 'event' : 'windowed'} ${rule.severity ?? 'warning'}`;
        li.setAttribute('data-rule', rule.name);
        const name = doc.createElement('span');
        name.textContent = rule.name;
        const what = doc.createElement('span');
        what.className = 'muted';
        const firing = status.get(rule.name)?.firing ?? 0;
        what.textContent = `${describeRule(rule)}${firing ? ` · ${firing} firing` : ''}`;
        li.append(name, what);
        list.append(li);
      }
      list.hidden = rules.length === 0;
    },
  };
}
