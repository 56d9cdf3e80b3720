// Timeline bucketing over the data's own clock: per-second counts (from the server's stats
// plus hits seen since) cut to the last N seconds, binned to the bars that fit, with peaks.
// The clock is the server's (README, "The data's clock"): hits seen since its last stats
// are placed against it as the server places them, so one stray timestamp cannot move it.

/** Seconds behind the clock beyond which the server also takes a hit as a possible restart
 * of the data (its LATE_SECS). */
export const LATE_SECS = 60;

/**
 * Where `second` stands against a data clock at second `latest`, as the server places it:
 * 'near' (counted, a newer one moves the clock), 'late' (counted where it falls), or
 * 'ahead' / 'behind' (off the clock: not on the timeline).
 * @param {number} latest the clock's second
 * @param {number} second the hit's second
 * @param {number} window the timeline's length, seconds (the server's --timeline-secs)
 * @returns {'near' | 'late' | 'ahead' | 'behind'}
 */
export function placement(latest, second, window) {
  if (second > latest + window) return 'ahead';
  if (second <= latest - window) return 'behind';
  if (second < latest - Math.min(window, LATE_SECS)) return 'late';
  return 'near';
}

/**
 * Follows the server's clock over the hits seen since its stats, in id order. A hit near
 * the clock counts in its second (and moves the clock on, abandoning any candidate era: its
 * held hits become outliers, as on the server); a late one counts where it falls; one off
 * the clock stays off the timeline and is pending until the server's next stats tell
 * whether its era took over (a confirmed jump: the stats carry the new era's timeline).
 * @param {object|null} summary the stats' `timeline` (outliers, pending, last_outlier)
 * @param {number|null} latestTimestamp the stats' `latest_timestamp` (the clock)
 * @param {{second:number, timestamp:number, suspicious:boolean}[]} extra hits since, oldest first
 * @param {number} window the timeline's length, seconds
 * @returns {{latest:number|null, seconds:Map<number,[number,number]>, outliers:number,
 *   pending:number, lastOutlier:number|null}}
 */
export function followClock(summary, latestTimestamp, extra, window) {
  let latest = latestTimestamp ?? null;
  let clock = latest == null ? null : Math.floor(latest);
  let outliers = summary?.outliers ?? 0;
  // Held by a candidate era: the server's (its clock unknown here) and then ours.
  let pending = summary?.pending ?? 0;
  let lastOutlier = summary?.last_outlier ?? null;
  /** The candidate era's clock among the hits since, or null. */
  let candidate = null;
  const abandon = () => {
    outliers += pending;
    pending = 0;
    candidate = null;
  };
  const seconds = new Map();
  for (const e of extra) {
    const where = clock == null ? 'near' : placement(clock, e.second, window);
    if (where === 'near') {
      abandon();
      if (latest == null || e.timestamp > latest) latest = e.timestamp;
      clock = Math.max(clock ?? e.second, e.second);
    } else {
      // Late or off the clock: it joins the candidate era if near its clock (or, with only
      // the server's candidate, is taken to join it), otherwise it replaces it.
      if (candidate != null && placement(candidate, e.second, window) !== 'near') abandon();
      candidate = Math.max(candidate ?? e.second, e.second);
      if (where !== 'late') {
        pending += 1;
        lastOutlier = e.timestamp;
        continue;
      }
    }
    const bucket = seconds.get(e.second) || [0, 0];
    bucket[e.suspicious ? 1 : 0] += 1;
    seconds.set(e.second, bucket);
  }
  return { latest, seconds, outliers, pending, lastOutlier };
}

/**
 * Per-second series for the last `span` seconds ending at the latest second.
 * @param {{start:number|null, normal:number[], suspicious:number[]}} timeline from stats
 * @param {Map<number, [number, number]>} extra second → [normal, suspicious] seen since
 * @param {number} span seconds
 * @returns {{start:number|null, normal:number[], suspicious:number[]}}
 */
export function lastSeconds(timeline, extra, span) {
  let start = timeline && timeline.start != null ? timeline.start : null;
  let end = start != null ? start + timeline.normal.length - 1 : null; // inclusive
  for (const second of extra.keys()) {
    if (start == null || second < start) start = second;
    if (end == null || second > end) end = second;
  }
  if (start == null) return { start: null, normal: [], suspicious: [] };
  const from = Math.max(start, end - span + 1);
  const len = end - from + 1;
  const normal = new Array(len).fill(0);
  const suspicious = new Array(len).fill(0);
  if (timeline && timeline.start != null) {
    for (let i = 0; i < timeline.normal.length; i++) {
      const j = timeline.start + i - from;
      if (j >= 0 && j < len) {
        normal[j] += timeline.normal[i] || 0;
        suspicious[j] += timeline.suspicious[i] || 0;
      }
    }
  }
  for (const [second, [n, s]] of extra) {
    const j = second - from;
    if (j >= 0 && j < len) {
      normal[j] += n;
      suspicious[j] += s;
    }
  }
  return { start: from, normal, suspicious };
}

/**
 * Sums a per-second series into `bars` equal bins covering `span` seconds that end at the
 * series' last second (older bins empty when the series is shorter).
 * @returns {{binSecs:number, start:number|null, normal:number[], suspicious:number[], max:number}}
 */
export function bin(series, span, bars) {
  const binSecs = Math.max(1, Math.ceil(span / bars));
  const count = Math.ceil(span / binSecs);
  const normal = new Array(count).fill(0);
  const suspicious = new Array(count).fill(0);
  if (series.start == null) return { binSecs, start: null, normal, suspicious, max: 0 };
  const end = series.start + series.normal.length - 1;
  const start = end - count * binSecs + 1;
  for (let i = 0; i < series.normal.length; i++) {
    const b = Math.floor((series.start + i - start) / binSecs);
    if (b >= 0 && b < count) {
      normal[b] += series.normal[i];
      suspicious[b] += series.suspicious[i];
    }
  }
  let max = 0;
  for (let b = 0; b < count; b++) max = Math.max(max, normal[b] + suspicious[b]);
  return { binSecs, start, normal, suspicious, max };
}

/**
 * Indices of up to `k` peaks: local maxima of `values`, highest first, at least
 * `minGap` apart, and above zero.
 */
export function peaks(values, k = 3, minGap = 5) {
  const order = values
    .map((v, i) => [v, i])
    .filter(([v]) => v > 0)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const picked = [];
  for (const [, i] of order) {
    if (picked.length >= k) break;
    if (picked.every((p) => Math.abs(p - i) >= minGap)) picked.push(i);
  }
  return picked;
}
