// The activity timeline: stacked per-second bars (normal, suspicious) over the data's
// clock for the last ten minutes, or a past window's bars, with the peaks marked. Drawn on
// a 2D canvas. A drag over it selects a window of data time (`onSelect`), shown as a band
// while dragging; a marker shows where a replay is.

import { bin, peaks } from '../data/timeline.js';
import { dragRange } from '../data/past.js';
import { formatClock } from './format.js';
import { COLORS, TIMELINE_SECS } from '../config.js';

/**
 * @param {HTMLElement} container
 * @param {{onSelect?: (range: {from: number, to: number}) => void}} [on]
 */
export function createTimeline(container, on = {}) {
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  container.appendChild(canvas);
  const ctx = canvas.getContext('2d');
  /** The bars last drawn: {start, binSecs, bins}, what a drag is measured against. */
  let axis = { start: null, binSecs: 1, bins: 0 };
  /** A drag in progress: [x0, x1] in CSS pixels, or null. */
  let drag = null;
  let last = null;

  const xOf = (e) => e.clientX - canvas.getBoundingClientRect().left;
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || axis.start == null) return;
    drag = [xOf(e), xOf(e)];
    canvas.setPointerCapture?.(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drag) return;
    drag[1] = xOf(e);
    if (last) draw(...last);
  });
  const end = (e, select) => {
    if (!drag) return;
    drag[1] = xOf(e);
    const range = select ? dragRange(drag[0], drag[1], container.clientWidth, axis) : null;
    drag = null;
    if (last) draw(...last);
    if (range) on.onSelect?.(range);
  };
  canvas.addEventListener('pointerup', (e) => end(e, true));
  canvas.addEventListener('pointercancel', (e) => end(e, false));

  function draw(series, options = {}) {
    last = [series, options];
    const ratio = Math.min(window.devicePixelRatio || 1, 2);
    const w = container.clientWidth;
    const h = container.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const bars = Math.max(30, Math.min(300, Math.floor(w / 3)));
    // A past window comes binned by the server; the live series is per second.
    const b = options.binned ? series : bin(series, TIMELINE_SECS, bars);
    axis = { start: b.start, binSecs: b.binSecs, bins: b.normal.length };
    const top = 24;
    const bottom = h - 16;
    const plotH = bottom - top;
    const bw = w / b.normal.length;
    const max = Math.max(1, b.max);
    // Baseline grid.
    ctx.strokeStyle = 'rgba(120,160,220,0.14)';
    ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(bottom - f * plotH) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
      ctx.stroke();
    }
    for (let i = 0; i < b.normal.length; i++) {
      const n = b.normal[i];
      const s = b.suspicious[i];
      const hn = (n / max) * plotH;
      const hs = (s / max) * plotH;
      const x = i * bw;
      ctx.fillStyle = COLORS.normal;
      ctx.globalAlpha = 0.8;
      ctx.fillRect(x, bottom - hn, Math.max(1, bw - 1), hn);
      ctx.fillStyle = COLORS.suspicious;
      ctx.globalAlpha = 0.95;
      ctx.fillRect(x, bottom - hn - hs, Math.max(1, bw - 1), hs);
    }
    ctx.globalAlpha = 1;
    const totals = b.normal.map((n, i) => n + b.suspicious[i]);
    const marks = peaks(totals, 3, Math.max(3, Math.floor(b.normal.length / 8)));
    ctx.font = '10px system-ui, sans-serif';
    ctx.textBaseline = 'bottom';
    for (const i of marks) {
      const x = i * bw + bw / 2;
      const y = bottom - (totals[i] / max) * plotH;
      ctx.fillStyle = COLORS.highlight;
      ctx.beginPath();
      ctx.moveTo(x, y - 2);
      ctx.lineTo(x - 4, y - 8);
      ctx.lineTo(x + 4, y - 8);
      ctx.closePath();
      ctx.fill();
      const rate = totals[i] / b.binSecs;
      const label = `${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s`;
      ctx.textAlign = x < 30 ? 'left' : x > w - 30 ? 'right' : 'center';
      ctx.fillText(label, x, y - 9);
    }
    // Axis: start and end of the window on the data's clock.
    ctx.fillStyle = 'rgba(180,200,230,0.7)';
    ctx.textBaseline = 'alphabetic';
    if (b.start != null) {
      const end = b.start + b.normal.length * b.binSecs - 1;
      ctx.textAlign = 'left';
      ctx.fillText(formatClock(b.start), 0, h - 3);
      ctx.textAlign = 'right';
      ctx.fillText(`${formatClock(end)} UTC`, w, h - 3);
      ctx.textAlign = 'center';
      ctx.fillText(`peak ${formatRate(Math.max(...totals) / b.binSecs)}/s`, w / 2, h - 3);
    } else {
      ctx.textAlign = 'center';
      ctx.fillText('waiting for data…', w / 2, h / 2);
    }
    // The band being dragged, and where a replay is.
    if (drag) {
      const [a, z] = [Math.min(...drag), Math.max(...drag)];
      ctx.fillStyle = 'rgba(240,228,66,0.18)';
      ctx.fillRect(a, top - 8, z - a, bottom - top + 8);
    }
    if (options.cursor != null && b.start != null) {
      const x = ((options.cursor - b.start) / (b.normal.length * b.binSecs)) * w;
      ctx.fillStyle = COLORS.highlight;
      ctx.fillRect(Math.round(x), top - 8, 2, bottom - top + 8);
    }
    const total = totals.reduce((a, v) => a + v, 0);
    const what = options.binned ? 'the selected window' : 'the last 10 minutes of data';
    canvas.setAttribute('aria-label', `Activity over ${what}: ${total} events; peaks marked. Drag to select a window.`);
  }

  return {
    /**
     * Paints a per-second series (live), or with `{binned: true}` bars already binned
     * ({start, binSecs, normal, suspicious, max}); `cursor`: a replay's data time.
     */
    render: draw,
    /** The bars last drawn (tests). */
    axis: () => axis,
  };
}

function formatRate(v) {
  return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
}
