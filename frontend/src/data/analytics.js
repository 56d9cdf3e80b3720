// Windowed analytics and alerts as the page keeps them: the latest results (from the
// snapshot and `analytics` messages), the recent alerts (GET /api/alerts, then `alert`
// messages), and the settings API (GET/PUT /api/analytics/config). No DOM, no three.

export const KINDS = ['place', 'country', 'ip', 'network', 'protocol', 'status'];

/** Most alerts kept for the list: this many of the windowed rules and as many of the event
 * rules, so a flood of single-event alerts (one per source) never pushes a windowed one out. */
export const MAX_ALERTS = 50;

/** Whether an alert comes from an event rule (single events) rather than a windowed one. */
export const isEventAlert = (a) => (a.type ?? a.rule) === 'event';

export class AnalyticsState {
  constructor() {
    this.report = null;
    /** Newest first. */
    this.alerts = [];
  }

  /** A snapshot's `analytics` (null before the server's first report) or an `analytics` message. */
  applyReport(report) {
    if (report && typeof report === 'object' && report.kinds) this.report = report;
  }

  /** An `alert` message or a listed alert: replaces the alert with its id, or adds it. Returns
   * whether it is new to the page. */
  applyAlert(alert) {
    if (!alert || typeof alert.id !== 'number') return false;
    const i = this.alerts.findIndex((a) => a.id === alert.id);
    if (i >= 0) {
      this.alerts[i] = alert;
      return false;
    }
    this.alerts.push(alert);
    this.alerts.sort((a, b) => b.id - a.id);
    const kept = { event: 0, windowed: 0 };
    this.alerts = this.alerts.filter((a) => ++kept[isEventAlert(a) ? 'event' : 'windowed'] <= MAX_ALERTS);
    return true;
  }

  /** The results for one key kind, or null. */
  kind(kind) {
    return this.report?.kinds?.[kind] ?? null;
  }
}

/**
 * The settings update for `kind` from the form's text values (`window_secs`, `top_k`,
 * `heavy_hitter_percent`, `outlier_stddevs`); empty fields are left out. Numbers are sent as
 * typed: the server validates them and names what is wrong.
 */
export function formToUpdate(kind, values) {
  const fields = {};
  for (const name of ['window_secs', 'top_k', 'heavy_hitter_percent', 'outlier_stddevs']) {
    const text = String(values[name] ?? '').trim();
    if (text === '') continue;
    const n = Number(text);
    fields[name] = Number.isFinite(n) ? n : text;
  }
  return { kinds: { [kind]: fields } };
}

/**
 * PUTs `update` to the settings API. Resolves to `{ ok: true, config }` or `{ ok: false,
 * status, field, message }` (the server's 422 names the field; other failures have none;
 * status is null when the server was not reached).
 */
export async function putConfig(update, fetchFn = fetch) {
  let response;
  try {
    response = await fetchFn('/api/analytics/config', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(update),
    });
  } catch (e) {
    return { ok: false, status: null, field: null, message: `server unreachable: ${e.message ?? e}` };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) return { ok: true, config: body };
  return {
    ok: false,
    status: response.status,
    field: typeof body?.field === 'string' ? body.field : null,
    message: typeof body?.message === 'string' ? body.message : `HTTP ${response.status}`,
  };
}

/** GETs `path` as JSON, or null when that fails. */
export async function getJson(path, fetchFn = fetch) {
  try {
    const response = await fetchFn(path);
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}
