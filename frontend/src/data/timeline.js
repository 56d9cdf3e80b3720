// Timeline bucketing over the data's own clock: per-second counts (from the server's stats
// plus hits seen since) cut to the last N seconds, binned to the bars that fit, with peaks.

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
