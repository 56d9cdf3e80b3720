// The notes under the data clock: what the page counts but does not show as usual, each
// only when nonzero. Pure: a view in, lines of text out (the panel sets them as textContent).

import { formatCount, formatDataTime } from './format.js';

const hits = (n) => `${formatCount(n)} ${n === 1 ? 'hit' : 'hits'}`;

/** @returns {string[]} */
export function notesFor(view) {
  const notes = [];
  if (view.hitsTruncated) notes.push(`${formatCount(view.hitsTruncated)} older hits not redrawn after joining`);
  if (view.overwritten) notes.push(`${formatCount(view.overwritten)} hits faded early (point buffer full)`);
  if (view.mergeLeftOut) notes.push(`${formatCount(view.mergeLeftOut)} hits left out of the place rings (too many at once)`);
  if (view.markersOmitted) notes.push(`${formatCount(view.markersOmitted)} quieter places drawn without a ring`);
  // The newest hit off the clock is pending if any is, else the newest outlier.
  const dated = view.lastOutlier != null ? ` (latest dated ${formatDataTime(view.lastOutlier)})` : '';
  if (view.outliers) {
    notes.push(
      `${hits(view.outliers)} far from the data clock${view.pending ? '' : dated}, counted but not on the timeline`,
    );
  }
  if (view.pending) {
    notes.push(`${hits(view.pending)} off the data clock${dated}, held off the timeline until more of that era arrive`);
  }
  if (view.clockJumps) {
    notes.push(`data clock jumped ${formatCount(view.clockJumps)}× to a new era (replay restarted?), timeline restarted`);
  }
  // Hits older than the timeline are outliers too (a server without outliers counts them only here).
  if (view.tooOld > (view.outliers || 0)) notes.push(`${formatCount(view.tooOld)} hits older than the timeline`);
  if (view.otherPlaces) notes.push(`${formatCount(view.otherPlaces)} hits at untracked places`);
  if (view.rejected) notes.push(`${formatCount(view.rejected)} ingest requests rejected`);
  return notes;
}
