// Any past window of data time, as the page shows it: the range a user picks (a preset or a
// drag over the activity timeline), the history API's URLs for it, the window's answer turned
// into the view the panels paint, the hits loaded page by page, and the replay clock that
// lets those hits glow in at their own times. Pure: no DOM, no three, no fetch (the caller
// passes one in).

/** Presets: seconds of data time back from the data clock; `all` is the whole history. */
export const PRESETS = { '5m': 300, '1h': 3600, '1d': 86400, all: null };

/** Replay speeds offered (data seconds per wall second). */
export const REPLAY_SPEEDS = [1, 10, 60, 600, 3600];

/** Hits per history page (the API's most). */
export const PAGE_LIMIT = 10000;

/** A drag narrower than this (CSS pixels) is a click, not a selection. */
export const MIN_DRAG_PX = 4;

/**
 * The window of a preset, in data time, ending with the data clock's second.
 * @param {keyof PRESETS} preset
 * @param {number|null} latest the data clock (unix seconds), null before any data
 * @returns {{from: number|null, to: number|null} | null} null when the preset needs a clock
 *   and there is none yet
 */
export function presetRange(preset, latest) {
  if (!(preset in PRESETS)) throw new Error(`unknown preset ${preset}`);
  const secs = PRESETS[preset];
  if (secs == null) return { from: null, to: null };
  if (latest == null || !Number.isFinite(latest)) return null;
  const to = Math.floor(latest) + 1;
  return { from: to - secs, to };
}

/**
 * The window a drag over the timeline selects: every bar the drag touches, whole.
 * @param {number} x0 where the drag started (CSS pixels from the timeline's left edge)
 * @param {number} x1 where it ended
 * @param {number} width the timeline's width (CSS pixels)
 * @param {{start: number|null, binSecs: number, bins: number}} axis the bars drawn: first
 *   bar's second, seconds per bar, how many
 * @returns {{from: number, to: number} | null} null for a click or an empty timeline
 */
export function dragRange(x0, x1, width, axis) {
  if (axis.start == null || width <= 0 || axis.bins <= 0) return null;
  if (Math.abs(x1 - x0) < MIN_DRAG_PX) return null;
  const clamp = (x) => Math.min(width, Math.max(0, x));
  const a = clamp(Math.min(x0, x1));
  const b = clamp(Math.max(x0, x1));
  const first = Math.min(axis.bins - 1, Math.floor((a / width) * axis.bins));
  const last = Math.max(first + 1, Math.min(axis.bins, Math.ceil((b / width) * axis.bins)));
  return { from: axis.start + first * axis.binSecs, to: axis.start + last * axis.binSecs };
}

/**
 * The query of a window under the page's filter, as the history API reads it.
 * @param {{from: number|null, to: number|null}} range
 * @param {'all'|'suspicious'|'normal'} filter
 * @param {Record<string, string|number>} [extra] more parameters (after, limit, format, top)
 */
export function historyQuery(range, filter, extra = {}) {
  const q = new URLSearchParams();
  if (range.from != null) q.set('from', String(range.from));
  if (range.to != null) q.set('to', String(range.to));
  if (filter === 'suspicious') q.set('suspicious', 'true');
  if (filter === 'normal') q.set('suspicious', 'false');
  for (const [k, v] of Object.entries(extra)) if (v != null) q.set(k, String(v));
  return q.toString();
}

/** `GET /api/history` for a page of the window's hits after seq `after`. */
export function historyUrl(range, filter, { after = 0, limit = PAGE_LIMIT, top } = {}) {
  return `/api/history?${historyQuery(range, filter, { after, limit, top })}`;
}

/** `GET /api/history/export` of the window: `csv` or `jsonl`. */
export function exportUrl(range, filter, format = 'csv') {
  return `/api/history/export?${historyQuery(range, filter, { format })}`;
}

/**
 * A past window as the page holds it: the API's summary (aggregates over the whole window,
 * already filtered by the server) and the hits loaded so far, page by page.
 */
export class PastWindow {
  /**
   * @param {{from: number|null, to: number|null}} range
   * @param {'all'|'suspicious'|'normal'} filter what the server was asked for
   */
  constructor(range, filter) {
    this.range = range;
    this.filter = filter;
    this.summary = null;
    /** Hits loaded, in sequence order. */
    this.hits = [];
    /** The `after` of the next page; null once the last page is in. */
    this.nextAfter = 0;
    /** place_key -> {lat, lon, country} from the hits, to fly to a listed place. */
    this.places = new Map();
  }

  /** Whether every hit of the window is loaded. */
  get complete() {
    return this.nextAfter == null;
  }

  /**
   * Takes one `/api/history` answer (the first also brings the summary). Returns the
   * page's new hits.
   */
  applyPage(answer) {
    if (!this.summary) this.summary = answer.summary;
    const hits = answer.hits ?? [];
    for (const hit of hits) {
      this.hits.push(hit);
      if (hit.place_key != null && !this.places.has(hit.place_key) && Number.isFinite(hit.latitude)) {
        this.places.set(hit.place_key, { lat: hit.latitude, lon: hit.longitude });
      }
    }
    this.nextAfter = answer.next_after ?? null;
    return hits;
  }

  /**
   * What the panels paint, in the shape of `TrafficState.view`: the window's totals, top
   * places and countries and its timeline (bars of the API's `bucket_secs`).
   * @param {number|null} clock the data clock to show (a replay's position), else the
   *   window's latest event
   */
  view(clock = null) {
    const s = this.summary;
    const total = s?.total ?? 0;
    const suspicious = s?.suspicious ?? 0;
    const countryName = new Map((s?.top_countries ?? []).map((c) => [c.country_code, c.country]));
    const top = (s?.top_places ?? []).map((p) => {
      const at = this.places.get(p.key);
      return {
        key: p.key,
        city: p.city,
        region: '',
        country: countryName.get(p.country_code) ?? p.country_code,
        country_code: p.country_code,
        lat: at?.lat ?? null,
        lon: at?.lon ?? null,
        count: p.count,
        suspicious: p.suspicious,
        bytes: 0,
        value: p.count,
      };
    });
    const countries = (s?.top_countries ?? []).map((c) => ({ ...c, bytes: 0, value: c.count }));
    const span = replaySpan(this);
    return {
      inWindow: true,
      total,
      allTotal: total,
      suspicious,
      share: total > 0 ? suspicious / total : 0,
      /** The window's average rate, events per second of data time. */
      rate: span ? total / Math.max(1, span.to - span.from) : 0,
      firstTimestamp: s?.first_timestamp ?? null,
      latestTimestamp: clock ?? s?.latest_timestamp ?? null,
      places: 0,
      unlocated: { total: 0, byReason: {} },
      located: { event: 0, ip: 0 },
      hasBytes: false,
      top,
      countries,
      networks: [],
      timeline: binnedTimeline(s?.timeline),
    };
  }
}

/**
 * The API's timeline (`buckets` of `[events, suspicious]`) as bars for the timeline panel:
 * {start, binSecs, normal, suspicious, max}.
 */
export function binnedTimeline(t) {
  if (!t || !t.buckets || t.buckets.length === 0) {
    return { start: null, binSecs: 1, normal: [], suspicious: [], max: 0 };
  }
  const normal = t.buckets.map(([events, susp]) => events - susp);
  const suspicious = t.buckets.map(([, susp]) => susp);
  const max = t.buckets.reduce((m, [events]) => Math.max(m, events), 0);
  return { start: t.start, binSecs: t.bucket_secs, normal, suspicious, max };
}

/**
 * Loads pages of a window until `enough(window)` says stop or the last page is in.
 * @param {PastWindow} win
 * @param {(url: string) => Promise<object>} getJson answers the parsed body (throws on failure)
 * @param {(win: PastWindow, hits: object[]) => boolean} [enough] asked after each page
 */
export async function loadPages(win, getJson, enough = () => false) {
  while (!win.complete) {
    const answer = await getJson(historyUrl(win.range, win.filter, { after: win.nextAfter }));
    const hits = win.applyPage(answer);
    if (enough(win, hits)) return;
  }
}

/**
 * The replay clock: data time that runs at `speed` data seconds per wall second from the
 * window's start, can pause and resume, and hands out each hit once, when the clock reaches
 * its timestamp. Hits may be added page by page and out of time order; one added behind the
 * clock is due at once (and counted as `late`).
 */
export class Replay {
  /**
   * @param {{from: number, to: number}} span data time to play, `from <= t < to`
   * @param {number} speed data seconds per wall second
   */
  constructor(span, speed = 1) {
    if (!(speed > 0)) throw new Error('speed must be positive');
    this.from = span.from;
    this.to = span.to;
    this.speed = speed;
    /** Data time where the clock stood at `anchorMs` (wall). */
    this.anchorData = span.from;
    this.anchorMs = null;
    this.playing = false;
    /** Not yet due, newest timestamp first (so due ones pop off the end). */
    this.pending = [];
    this.sorted = true;
    this.played = 0;
    this.late = 0;
  }

  /** Data time of the clock at wall time `nowMs`, never past the end. */
  position(nowMs) {
    if (!this.playing) return this.anchorData;
    return Math.min(this.to, this.anchorData + ((nowMs - this.anchorMs) / 1000) * this.speed);
  }

  /** Whether the clock has reached the end and every added hit was handed out. */
  finished(nowMs) {
    return this.position(nowMs) >= this.to && this.pending.length === 0;
  }

  play(nowMs) {
    if (this.playing) return;
    this.anchorMs = nowMs;
    this.playing = true;
  }

  pause(nowMs) {
    if (!this.playing) return;
    this.anchorData = this.position(nowMs);
    this.playing = false;
  }

  /** Changes speed from now on (the clock does not jump). */
  setSpeed(speed, nowMs) {
    if (!(speed > 0)) throw new Error('speed must be positive');
    this.anchorData = this.position(nowMs);
    this.anchorMs = nowMs;
    this.speed = speed;
  }

  /** Adds hits to play (any order). Those behind the clock at `nowMs` are due at once. */
  add(hits, nowMs) {
    const at = this.position(nowMs);
    for (const hit of hits) {
      if (hit.timestamp < at) this.late += 1;
      this.pending.push(hit);
    }
    if (hits.length) this.sorted = false;
  }

  /** The newest timestamp still to play, or null (to know when to load the next page). */
  horizon() {
    this.sort();
    return this.pending.length ? this.pending[0].timestamp : null;
  }

  /**
   * Hits due by wall time `nowMs`, oldest first, each with `lagSecs`: how long ago (wall
   * seconds, at this speed) its moment passed, so it can be drawn at its exact age.
   */
  due(nowMs) {
    this.sort();
    const at = this.position(nowMs);
    const out = [];
    while (this.pending.length && this.pending[this.pending.length - 1].timestamp <= at) {
      const hit = this.pending.pop();
      out.push({ hit, lagSecs: Math.max(0, (at - hit.timestamp) / this.speed) });
    }
    this.played += out.length;
    return out;
  }

  sort() {
    if (this.sorted) return;
    this.pending.sort((a, b) => b.timestamp - a.timestamp);
    this.sorted = true;
  }
}

/**
 * The span a replay of `win` plays: its asked range, or where it is open, its first and
 * latest events (to one past the latest).
 */
export function replaySpan(win) {
  const s = win.summary;
  const from = win.range.from ?? (s?.first_timestamp != null ? Math.floor(s.first_timestamp) : null);
  const to = win.range.to ?? (s?.latest_timestamp != null ? Math.floor(s.latest_timestamp) + 1 : null);
  if (from == null || to == null) return null;
  return { from, to };
}
