// The panels: counters, the top-locations list, the status line and the notes. Only DOM;
// every text from the data is set with textContent.

import { formatCount, formatRate, formatShare, formatDataTime, formatBytes, describeCapture } from './format.js';
import { describeReasons } from '../data/state.js';
import { notesFor } from './notes.js';
import { renderBreakdown } from './breakdown.js';

const $ = (root, sel) => root.querySelector(sel);

export function createPanels(root, { onPlaceClick }) {
  const el = {
    total: $(root, '[data-testid="total"]'),
    totalLabel: $(root, '#total-label'),
    rateLabel: $(root, '#rate-label'),
    suspicious: $(root, '[data-testid="suspicious"]'),
    share: $(root, '#share'),
    rate: $(root, '[data-testid="rate"]'),
    status: $(root, '[data-testid="status"]'),
    statusDot: $(root, '#status-dot'),
    dataClock: $(root, '#data-clock'),
    wallClock: $(root, '#wall-clock'),
    list: $(root, '[data-testid="top-locations"]'),
    countries: $(root, '[data-testid="top-countries"]'),
    networks: $(root, '[data-testid="top-networks"]'),
    networksBox: $(root, '#networks-box'),
    metric: $(root, '#metric'),
    listTitle: $(root, '#top-title'),
    notes: $(root, '#notes'),
    places: $(root, '#places'),
    unlocated: $(root, '[data-testid="unlocated"]'),
    unlocatedRow: $(root, '#unlocated-row'),
    unlocatedReasons: $(root, '#unlocated-reasons'),
    locatedCounts: $(root, '#located-counts'),
    captureRow: $(root, '#capture-row'),
    captureCounts: $(root, '#capture-counts'),
    mix: {
      card: $(root, '#mix'),
      protocols: $(root, '[data-testid="protocols"]'),
      statuses: $(root, '[data-testid="status-classes"]'),
      bytes: $(root, '[data-testid="bytes"]'),
    },
  };
  let selectedKey = null;
  let lastTop = [];

  el.list.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-index]');
    if (!button) return;
    const place = lastTop[Number(button.dataset.index)];
    if (place) onPlaceClick(place);
  });

  // A value in the list's unit: hits, or bytes when ranking by bytes.
  const shown = (value, metric) => (metric === 'bytes' ? formatBytes(value) : formatCount(value));

  function renderList(top, filter, metric) {
    lastTop = top;
    const max = top.length ? top[0].value : 1;
    // Reuse rows: a list that updates 4x a second must not rebuild its DOM each time
    // (it would also steal keyboard focus).
    while (el.list.children.length > top.length) el.list.lastElementChild.remove();
    while (el.list.children.length < top.length) el.list.appendChild(makeRow());
    // Two listed places can share a name in one country (Springfield, IL and MO): name
    // their region then, so the rows can be told apart.
    const seen = new Map();
    for (const p of top) {
      const name = `${p.city}\u0000${p.country_code}`;
      seen.set(name, (seen.get(name) || 0) + 1);
    }
    top.forEach((p, i) => {
      const li = el.list.children[i];
      const button = li.firstElementChild;
      button.dataset.index = String(i);
      const [name, country, count, susp, bar] = button.children;
      const shared = seen.get(`${p.city}\u0000${p.country_code}`) > 1;
      const city = shared && p.region ? `${p.city} (${p.region})` : p.city;
      name.textContent = city || 'Unknown place';
      country.textContent = p.country || p.country_code || '';
      count.textContent = shown(p.value, metric);
      susp.textContent = filter === 'normal' ? '' : `${formatCount(p.suspicious)} susp.`;
      susp.hidden = filter === 'normal' || p.suspicious === 0;
      const fill = bar.firstElementChild;
      fill.style.width = `${Math.max(2, (100 * p.value) / max).toFixed(1)}%`;
      fill.className = filter === 'suspicious' ? 'fill suspicious' : 'fill';
      li.classList.toggle('selected', p.key === selectedKey);
      button.setAttribute(
        'aria-label',
        metric === 'bytes'
          ? `${city}, ${p.country}: ${shown(p.value, metric)} in ${p.count} hits. Fly there.`
          : `${city}, ${p.country}: ${p.value} hits, ${p.suspicious} suspicious. Fly there.`,
      );
    });
  }

  // A list of {label, value} rows (countries, networks), rows reused, plain text.
  function renderRows(list, rows, metric) {
    while (list.children.length > rows.length) list.lastElementChild.remove();
    while (list.children.length < rows.length) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      const count = document.createElement('span');
      count.className = 'count';
      li.append(name, ' ', count);
      list.appendChild(li);
    }
    rows.forEach((r, i) => {
      const li = list.children[i];
      for (const [k, v] of Object.entries(r.data)) li.dataset[k] = String(v);
      li.firstElementChild.textContent = r.label;
      li.lastElementChild.textContent = shown(r.value, metric);
    });
  }

  // Top countries and networks, by the same measure as the places.
  function renderCountries(countries, networks, metric) {
    renderRows(
      el.countries,
      countries.map((c) => ({
        label: c.country || c.country_code || 'Unknown country',
        value: c.value,
        data: { code: c.country_code, count: c.count, bytes: c.bytes },
      })),
      metric,
    );
    el.networksBox.hidden = networks.length === 0;
    renderRows(
      el.networks,
      networks.map((n) => ({
        label: `AS${n.asn} ${n.name}`.trim(),
        value: n.value,
        data: { asn: n.asn, count: n.count, bytes: n.bytes },
      })),
      metric,
    );
  }

  // Unlocated hits: counted in the totals, not drawn; the reasons on hover (title) and in
  // small print. Plain text only.
  function renderPlacement(view) {
    const unlocated = view.unlocated ?? { total: 0, byReason: {} };
    el.unlocatedRow.hidden = unlocated.total === 0;
    el.unlocated.textContent = formatCount(unlocated.total);
    const reasons = describeReasons(unlocated.byReason);
    el.unlocatedReasons.textContent = reasons ? `(${reasons})` : '';
    el.unlocatedRow.title = reasons ? `Hits that could not be placed: ${reasons}` : '';
    // Packets a live capture lost before they became hits: shown, never hidden (in red).
    const capture = view.capture ?? null;
    el.captureRow.hidden = capture === null;
    el.captureCounts.textContent = describeCapture(capture);
    el.captureRow.classList.toggle('dropping', (capture?.dropped ?? 0) > 0);
    const located = view.located ?? { event: 0, ip: 0 };
    el.locatedCounts.textContent =
      located.event || located.ip
        ? ` · ${formatCount(located.event)} by coordinates, ${formatCount(located.ip)} by IP`
        : '';
  }

  return {
    /** Paints a state view. */
    render(view, filter, metric = 'requests') {
      el.total.textContent = formatCount(view.total);
      // A past window (data/past.js) counts what the window holds, at its average rate.
      const received = view.inWindow ? 'in window' : 'received';
      el.totalLabel.textContent = `${filter === 'suspicious' ? 'suspicious' : filter === 'normal' ? 'normal' : 'total'} ${received}`;
      if (el.rateLabel) el.rateLabel.textContent = view.inWindow ? 'events / s, window average' : 'events / s now';
      el.suspicious.textContent = formatCount(view.suspicious);
      el.share.textContent = filter === 'normal' ? '—' : formatShare(view.share);
      el.rate.textContent = formatRate(view.rate);
      el.dataClock.textContent = formatDataTime(view.latestTimestamp);
      el.listTitle.textContent =
        metric === 'bytes' ? 'Top locations by bytes' : filter === 'suspicious' ? 'Top suspicious locations' : 'Top locations';
      el.places.textContent = view.places ? `${formatCount(view.places)} places` : '';
      el.metric.hidden = !view.hasBytes;
      renderList(view.top, filter, metric);
      renderCountries(view.countries ?? [], view.networks ?? [], metric);
      renderPlacement(view);
      renderBreakdown(el.mix, view.mix ?? null);
      const notes = notesFor(view);
      el.notes.textContent = notes.join(' · ');
      el.notes.hidden = notes.length === 0;
    },
    status(state) {
      const text = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline — retrying', login: 'login required', 'signed-out': 'signed out' }[state] || state;
      el.status.textContent = text;
      el.statusDot.className = `dot ${state}`;
    },
    tickClock() {
      el.wallClock.textContent = new Date().toLocaleTimeString([], { hour12: false });
    },
    select(key) {
      selectedKey = key;
    },
  };
}

function makeRow() {
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  const name = document.createElement('span');
  name.className = 'name';
  const country = document.createElement('span');
  country.className = 'country';
  const count = document.createElement('span');
  count.className = 'count';
  const susp = document.createElement('span');
  susp.className = 'susp';
  const bar = document.createElement('span');
  bar.className = 'bar';
  const fill = document.createElement('span');
  fill.className = 'fill';
  bar.appendChild(fill);
  // Spaces between the parts keep the row's text readable ("Moscow Russia 432 4 susp.");
  // the grid layout ignores them.
  button.append(name, ' ', country, ' ', count, ' ', susp, bar);
  li.appendChild(button);
  return li;
}
