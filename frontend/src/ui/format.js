// Number and time formatting for the panels. Pure.

const integer = new Intl.NumberFormat('en-US');

export function formatCount(n) {
  return integer.format(Math.round(n || 0));
}

export function formatRate(perSecond) {
  const v = perSecond || 0;
  if (v >= 100) return integer.format(Math.round(v));
  return v.toFixed(1);
}

export function formatShare(share) {
  return `${((share || 0) * 100).toFixed(1)}%`;
}

/** A unix-seconds timestamp of the data as "2025-01-15 05:32:00 UTC". */
export function formatDataTime(unixSecs) {
  if (unixSecs == null) return '—';
  const d = new Date(unixSecs * 1000);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Only the time of day, UTC, for axis labels. */
export function formatClock(unixSecs) {
  if (unixSecs == null) return '';
  return new Date(unixSecs * 1000).toISOString().slice(11, 19);
}
