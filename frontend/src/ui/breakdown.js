// The traffic mix, when events carry the fields: hits by protocol and by HTTP status class,
// and the bytes they carried, from the server's stats (`top_protocols`, `other_protocols`,
// `status_classes`, `bytes`). Bounded lists; every text from the data is set with
// textContent.

import { formatBytes, formatCount } from './format.js';

/** Protocols listed before the rest are summed as "other". */
export const MIX_PROTOCOLS = 6;
const NAME_MAX = 16;
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

const shortName = (name) => {
  const text = String(name ?? '');
  return text.length > NAME_MAX ? `${text.slice(0, NAME_MAX - 1)}…` : text;
};

/**
 * `{ protocols: [{name, count}], statuses: [{name, count}], bytes: {total, events} }` from a
 * stats message, or null when no hit carried a protocol, a status or bytes.
 */
export function breakdowns(stats, { limit = MIX_PROTOCOLS } = {}) {
  if (!stats) return null;
  const listed = Array.isArray(stats.top_protocols) ? stats.top_protocols : [];
  const protocols = listed.slice(0, limit).map((p) => ({ name: shortName(p.name), count: Number(p.count) || 0 }));
  const rest = listed.slice(limit).reduce((n, p) => n + (Number(p.count) || 0), 0) + (Number(stats.other_protocols) || 0);
  if (rest > 0) protocols.push({ name: 'other', count: rest });
  const classes = stats.status_classes ?? {};
  const statuses = CLASSES.filter((c) => Number(classes[c]) > 0).map((c) => ({ name: c, count: Number(classes[c]) }));
  const bytes = { total: Number(stats.bytes?.total) || 0, events: Number(stats.bytes?.events) || 0 };
  if (protocols.length === 0 && statuses.length === 0 && bytes.events === 0) return null;
  return { protocols, statuses, bytes };
}

/** "1.5 MB in 1,200 hits", or '' when no hit said how many bytes it carried. */
export function describeBytes(bytes) {
  if (!bytes || !bytes.events) return '';
  return `${formatBytes(bytes.total)} in ${formatCount(bytes.events)} ${bytes.events === 1 ? 'hit' : 'hits'}`;
}

/** Shows `items` in the list `ul` (rows reused: it updates several times a second). */
export function renderMixList(ul, items, doc = document) {
  while (ul.children.length > items.length) ul.lastElementChild.remove();
  while (ul.children.length < items.length) {
    const li = doc.createElement('li');
    const name = doc.createElement('span');
    name.className = 'name';
    const count = doc.createElement('span');
    count.className = 'count';
    li.append(name, count);
    ul.appendChild(li);
  }
  items.forEach((item, i) => {
    const [name, count] = ul.children[i].children;
    name.textContent = item.name;
    count.textContent = formatCount(item.count);
  });
  ul.hidden = items.length === 0;
}

/** Paints the mix into its card (`card` hidden when there is nothing to show). */
export function renderBreakdown(el, mix, doc = document) {
  el.card.hidden = mix === null;
  if (mix === null) return;
  renderMixList(el.protocols, mix.protocols, doc);
  renderMixList(el.statuses, mix.statuses, doc);
  el.bytes.textContent = describeBytes(mix.bytes);
  el.bytes.hidden = el.bytes.textContent === '';
}
