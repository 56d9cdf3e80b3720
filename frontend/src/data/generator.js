// The built-in traffic generator as the page steers it: the control API's requests
// (GET/PUT /api/generator, POST /api/generator/start|stop|burst), the form's values turned
// into requests, and one line describing a run. No DOM, no three.

/** How often the card asks the server how the generator is doing. */
export const GENERATOR_POLL_MS = 2000;

/** The burst button's request when its fields are left empty. */
export const DEFAULT_BURST = { network: '203.0.113.0/24', share_percent: '30', secs: '30' };

const number = (text) => {
  const n = Number(text);
  // Text that is no number is sent as it is: the server refuses it, naming the field.
  return Number.isFinite(n) ? n : text;
};

/** A weighted table written `TCP=80, UDP=20` as the API's object; text that does not
 * parse is returned as it is, for the server to refuse. `none` is the empty table. */
export function parseTable(text) {
  const t = String(text ?? '').trim();
  if (t.toLowerCase() === 'none') return {};
  const table = {};
  for (const entry of t.split(',')) {
    const [key, weight, extra] = entry.split('=').map((s) => s.trim());
    if (!key || weight === undefined || extra !== undefined) return t;
    table[key] = number(weight);
  }
  return table;
}

/** A table object as `TCP=80, UDP=20`. */
export function formatTable(table) {
  return Object.entries(table ?? {})
    .map(([k, w]) => `${k}=${w}`)
    .join(', ');
}

/**
 * The settings update from the form's text values (`rate`, `suspicious_percent`,
 * `protocols`); empty fields are left out.
 */
export function formToUpdate(values) {
  const update = {};
  const text = (name) => String(values[name] ?? '').trim();
  if (text('rate') !== '') update.rate = number(text('rate'));
  if (text('suspicious_percent') !== '') {
    const p = number(text('suspicious_percent'));
    update.suspicious_share = typeof p === 'number' ? p / 100 : p;
  }
  if (text('protocols') !== '') update.protocols = parseTable(text('protocols'));
  return update;
}

/** The burst request from the form's text values (`network`, `share_percent`, `secs`);
 * empty fields take the defaults. */
export function burstRequest(values) {
  const text = (name) => String(values[name] ?? '').trim() || DEFAULT_BURST[name];
  const share = number(text('share_percent'));
  return {
    network: text('network'),
    share: typeof share === 'number' ? share / 100 : share,
    secs: number(text('secs')),
  };
}

/** Which form field a setting the server named belongs to. */
export function fieldOf(setting) {
  const top = String(setting ?? '').split(/[.[]/)[0];
  return { suspicious_share: 'suspicious_percent', share: 'share_percent' }[top] ?? top;
}

/** One line about the generator: running or not, rate, events, bursts going on or to come. */
export function describeGenerator(view) {
  if (!view) return 'unknown';
  const c = view.config;
  const rate = `${c.rate} events/s · ${(c.suspicious_share * 100).toFixed(1)}% suspicious`;
  if (!view.running) return `stopped · ${rate} when started`;
  const now = view.elapsed_secs ?? 0;
  const bursts = c.bursts
    .map((b) => b.split(':'))
    .filter(([, , span]) => Number(span.split('-')[1]) > now)
    .map(([net, share, span]) => {
      const [from, to] = span.split('-').map(Number);
      const when = from > now ? `from s ${from}` : `until s ${to}`;
      return `burst ${net} ${(Number(share) * 100).toFixed(0)}% ${when}`;
    });
  return [`running ${Math.floor(now)} s`, rate, `${view.generated.toLocaleString('en-US')} events`, ...bursts].join(' · ');
}

/**
 * Sends a request to the control API. Resolves to `{ ok: true, view }` or `{ ok: false,
 * status, field, message }` (a 422 names the field; status is null when the server was not
 * reached).
 */
export async function send(method, path, body, fetchFn = fetch) {
  let response;
  try {
    const init = { method };
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    response = await fetchFn(path, init);
  } catch (e) {
    return { ok: false, status: null, field: null, message: `server unreachable: ${e.message ?? e}` };
  }
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok) return { ok: true, view: json };
  return {
    ok: false,
    status: response.status,
    field: typeof json?.field === 'string' ? json.field : null,
    message: typeof json?.message === 'string' ? json.message : `HTTP ${response.status}`,
  };
}

/** The control API's calls. */
export const api = {
  start: (fetchFn) => send('POST', '/api/generator/start', undefined, fetchFn),
  stop: (fetchFn) => send('POST', '/api/generator/stop', undefined, fetchFn),
  update: (values, fetchFn) => send('PUT', '/api/generator', formToUpdate(values), fetchFn),
  burst: (values, fetchFn) => send('POST', '/api/generator/burst', burstRequest(values), fetchFn),
};
