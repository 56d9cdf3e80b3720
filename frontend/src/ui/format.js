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

/** Bytes as "512 B", "1.5 kB", "3.2 MB" (powers of 1000). */
export function formatBytes(n) {
  if (n == null) return '';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * What a hit says about its request, when it says anything: "GET /login → 404 · 1.5 kB · TCP
 * · to 10.0.0.1", or for a captured flow "3.0 kB · 2 packets · UDP from port 40000 · to
 * 10.0.0.1:53"; '' for a hit with none of the optional fields. Plain text (shown with
 * textContent); the path is shortened for the tooltip.
 */
export function describeRequest(hit) {
  const parts = [];
  const path = hit.path && hit.path.length > 60 ? `${hit.path.slice(0, 59)}…` : hit.path;
  const request = [hit.method, path].filter(Boolean).join(' ');
  if (request || hit.status != null) {
    parts.push([request, hit.status != null ? `→ ${hit.status}` : ''].filter(Boolean).join(' '));
  }
  if (hit.bytes != null) parts.push(formatBytes(hit.bytes));
  if (hit.packets != null) parts.push(`${hit.packets} packet${hit.packets === 1 ? '' : 's'}`);
  const from = hit.src_port != null ? `from port ${hit.src_port}` : '';
  if (hit.protocol || from) parts.push([hit.protocol, from].filter(Boolean).join(' '));
  const port = hit.dest_port != null ? `:${hit.dest_port}` : '';
  if (hit.dest_ip) parts.push(`to ${hit.dest_ip}${port}`);
  else if (port) parts.push(`to port ${hit.dest_port}`);
  if (hit.asn != null) parts.push(`AS${hit.asn}${hit.as_name ? ` ${hit.as_name}` : ''}`);
  return parts.join(' · ');
}

/** Only the time of day, UTC, for axis labels. */
export function formatClock(unixSecs) {
  if (unixSecs == null) return '';
  return new Date(unixSecs * 1000).toISOString().slice(11, 19);
}

/**
 * A live capture's counters (`/api/stats` `capture`) in words: "1,234 packets captured ·
 * 5 dropped (kernel 3, queue 2)"; '' when nothing was captured. Plain text.
 */
export function describeCapture(capture) {
  if (!capture) return '';
  const parts = [`${formatCount(capture.captured)} packets captured`];
  const why = [
    ['kernel', capture.kernel_dropped],
    ['interface', capture.interface_dropped],
    ['queue', capture.queue_dropped],
  ].filter(([, n]) => n > 0);
  parts.push(
    why.length === 0
      ? 'none dropped'
      : `${formatCount(capture.dropped)} dropped (${why.map(([k, n]) => `${k} ${formatCount(n)}`).join(', ')})`,
  );
  if (capture.not_sent > 0) parts.push(`${formatCount(capture.not_sent)} not sent`);
  return parts.join(' · ');
}
