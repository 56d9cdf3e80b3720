// Which hits an alert is about (its key kind and key, as the server labels keys), and how a
// rule's condition reads. Pure: no DOM, no three.

/** The /24 (IPv4) or /48 (IPv6) network of an address, labelled as the server does. */
export function networkLabel(ip) {
  if (typeof ip !== 'string') return null;
  if (ip.includes('.') && !ip.includes(':')) {
    const parts = ip.split('.');
    return parts.length === 4 ? `${parts[0]}.${parts[1]}.${parts[2]}.0/24` : null;
  }
  const groups = expandV6(ip);
  if (!groups) return null;
  const head = groups.slice(0, 3);
  // The zeros from the last non-zero of the first three groups on are one run: "::".
  while (head.length && head[head.length - 1] === 0) head.pop();
  return `${head.map((g) => g.toString(16)).join(':')}::/48`;
}

/** The eight groups of an IPv6 address, or null. */
function expandV6(ip) {
  const [left, right, extra] = ip.split('::');
  if (extra !== undefined) return null;
  const parse = (s) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const a = parse(left);
  const b = right === undefined ? [] : parse(right);
  const fill = right === undefined ? 0 : 8 - a.length - b.length;
  const groups = [...a, ...new Array(Math.max(fill, 0)).fill(0), ...b];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

/** Whether `hit` is one of the hits `alert` is about (null: the alert names no key). */
export function alertMatcher(alert) {
  if (!alert) return null;
  const key = alert.key;
  switch (alert.kind) {
    case 'ip':
      return (hit) => hit.ip === key;
    case 'network':
      return (hit) => networkLabel(hit.ip) === key;
    case 'country':
      return (hit) => (hit.country_code ?? '').toUpperCase() === String(key).toUpperCase();
    case 'place':
      return alert.place?.key != null ? (hit) => hit.place_key === alert.place.key : (hit) => hit.city === key;
    case 'protocol':
      return (hit) => hit.protocol === key;
    case 'status':
      return (hit) => hit.status != null && `${Math.floor(hit.status / 100)}xx` === key;
    default:
      // A rule over the whole window: its suspicious hits, for the suspicious share.
      return alert.type === 'suspicious_share' || alert.rule === 'suspicious_share' ? (hit) => !!hit.suspicious : null;
  }
}

/** A rule's condition in words: `bytes > 1400 and protocol in [UDP, ICMP]`. */
export function describeCondition(c, nested = false) {
  if (!c || typeof c !== 'object') return '';
  const list = (items, word) => {
    const text = (items ?? []).map((i) => describeCondition(i, true)).join(` ${word} `);
    return nested && items?.length > 1 ? `(${text})` : text;
  };
  if (c.all) return list(c.all, 'and');
  if (c.any) return list(c.any, 'or');
  if (c.not) return `not ${describeCondition(c.not, true)}`;
  const value = (v) => (Array.isArray(v) ? `[${v.map((x) => value(x)).join(', ')}]` : typeof v === 'string' ? `"${v}"` : String(v));
  if (!c.op) return c.field;
  if (c.op === 'exists') return `${c.field} exists`;
  return `${c.field} ${c.op.replace('_', ' ')} ${value(c.value)}`;
}

/** What a rule watches, in words (a windowed rule's settings, or an event rule's condition). */
export function describeRule(rule) {
  switch (rule.type) {
    case 'event': {
      const per = rule.key ?? 'ip';
      const times = (rule.at_least ?? 1) > 1 ? `${rule.at_least}× ` : '';
      return `${times}${describeCondition(rule.when)} · per ${per}`;
    }
    case 'heavy_hitter':
      return `above H% of the window · ${(rule.keys ?? ['ip', 'network']).join(', ')}`;
    case 'outlier':
      return `X σ above the mean rate · ${(rule.keys ?? ['network']).join(', ')}`;
    case 'suspicious_share':
      return `suspicious share above ${((rule.above ?? 0.5) * 100).toFixed(0)}%`;
    case 'rate_jump':
      return `rate above ${rule.factor ?? 3}× its last ${rule.baseline_secs ?? 300} s`;
    case 'new_key':
      return `new ${rule.key ?? 'country'} in volume`;
    default:
      return rule.type ?? '';
  }
}
