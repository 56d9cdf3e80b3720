// Wires the parts together: the stream feeds the state (data/), the state feeds the scene
// layers (scene/, driven by render/loop.js) and the panels (ui/).

import './style.css';
import { createLoop } from './render/loop.js';
import { Globe } from './scene/globe.js';
import { HitPoints } from './scene/points.js';
import { HitArcs } from './scene/arcs.js';
import { Markers } from './scene/markers.js';
import { Highlight } from './scene/highlight.js';
import { TrafficState, isPlaced } from './data/state.js';
import { Clusters, MarkerFeed, cellKey, countFor } from './data/merge.js';
import { connectStream } from './data/stream.js';
import * as session from './data/session.js';
import { createLogin } from './ui/login.js';
import { createAdmin } from './ui/admin.js';
import { createHousekeeping } from './ui/housekeeping.js';
import { api as housekeepingApi, HOUSEKEEPING_POLL_MS } from './data/housekeeping.js';
import { createPanels } from './ui/panels.js';
import { createTimeline } from './ui/timeline.js';
import { createControls, createTooltip } from './ui/controls.js';
import { formatDataTime, formatCount, describeRequest } from './ui/format.js';
import { loadDatabases } from './ui/info.js';
import { createHomeControl } from './ui/home.js';
import { breakdowns } from './ui/breakdown.js';
import { AnalyticsState, formToUpdate, putConfig, getJson } from './data/analytics.js';
import { createAnalyticsPanel } from './ui/analytics.js';
import { createAlertList } from './ui/alerts.js';
import { createRuleList } from './ui/rules.js';
import { alertMatcher } from './data/alertkey.js';
import { api as generatorApi, GENERATOR_POLL_MS } from './data/generator.js';
import { createGeneratorCard } from './ui/generator.js';
import { FADE_DEFAULT, GLOBE_RADIUS, PANEL_INTERVAL_MS } from './config.js';
import { latLonToXyz } from './data/geo.js';
import { createPastView } from './history.js';
import { createImport } from './ui/import.js';
import { uploadCsv, describeImport } from './data/upload.js';

const view = {
  filter: 'all',
  metric: 'requests', // what the top lists rank by: 'requests' | 'bytes'
  fade: FADE_DEFAULT,
  paused: false,
  density: false,
  selected: null, // a top place
  selectedCell: null,
};

const state = new TrafficState();
const clusters = new Clusters();
const feed = new MarkerFeed(clusters);
const globeEl = document.getElementById('globe');

let points = null;
let markers = null;
let globe = null;
const loop = createLoop(globeEl, {
  onPixelRatio(ratio) {
    points?.update({ pixelRatio: ratio });
    markers?.setPixelRatio(ratio);
    globe?.setPixelRatio(ratio);
  },
});
const ratio = loop.renderer.getPixelRatio();
points = new HitPoints({ pixelRatio: ratio });
markers = new Markers({ pixelRatio: ratio });
const highlight = new Highlight();
const arcs = new HitArcs();
// The borders are the biggest part of the bundle: load them as their own chunk, so the
// panels and the stream start at once and the globe fills in a moment later.
import('world-atlas/countries-50m.json').then(({ default: countries }) => {
  globe = new Globe({ countries, pixelRatio: loop.renderer.getPixelRatio() });
  loop.add(globe);
  document.body.classList.add('globe-ready');
});
loop.add(markers);
loop.add(arcs);
loop.add(points);
loop.add(highlight);

// On wide screens the activity panel covers the bottom: lift the globe above it.
const activityEl = document.querySelector('.activity');
function placeGlobe() {
  const wide = window.matchMedia('(min-width: 981px)').matches;
  const r = activityEl.getBoundingClientRect();
  loop.setInsets(wide ? { bottom: window.innerHeight - r.top } : {});
}
window.addEventListener('resize', placeGlobe);
placeGlobe();

const panels = createPanels(document.body, { onPlaceClick: selectPlace });
// Home (the server's, from /api/info once we may watch, or the page's own) and the arcs switch.
const home = createHomeControl(document.body, {
  change(place, on) {
    arcs.update({ home: place, enabled: on });
  },
});
const timeline = createTimeline(document.querySelector('[data-testid="timeline"]'), {
  onSelect: (range) => past.select(range),
});
// A past window (range bar, timeline drag): shown on its own layer; the live ones keep counting.
const past = createPastView({
  loop,
  liveLayers: [points, markers, arcs],
  view,
  liveClock: () => state.view(view.filter).latestTimestamp,
  paint(v, cursor) {
    panels.render(v, view.filter, 'requests');
    timeline.render(v.timeline, { binned: true, cursor });
  },
  onLive: () => {
    arcs.update({});
    refreshMarkers();
    refreshPanels();
  },
  bar: document.querySelector('[data-testid="range"]'),
  subtitle: document.getElementById('activity-span'),
});
// Import a CSV file (an admin's), beside the export links: its new rows come back through
// the stream like any others, so the counters follow.
const importer = createImport(document.querySelector('[data-testid="range"]'), {
  async file(file) {
    importer.start(file.name);
    const { status, body } = await uploadCsv(file, { progress: (loaded, total) => importer.progress(loaded, total) });
    importer.done(describeImport(status, body));
    if (status === 401) checkAccess();
  },
});
const tooltip = createTooltip(document.getElementById('tooltip'));

createControls(document.body, {
  filter(f) {
    view.filter = f;
    points.update({ filter: f });
    arcs.update({ filter: f });
    past.filterChanged();
    refreshMarkers();
    refreshPanels();
  },
  metric(m) {
    view.metric = m;
    refreshPanels();
  },
  pause(on) {
    view.paused = on;
    feed.paused = on;
    loop.setPaused(on);
    document.body.classList.toggle('paused', on);
    if (!on) refreshMarkers();
  },
  fade(secs) {
    view.fade = secs;
    points.update({ fade: secs });
    arcs.update({ fade: secs });
    past.fadeChanged();
    refreshMarkers();
  },
  autoRotate: (on) => loop.setAutoRotate(on),
  density(on) {
    view.density = on;
    refreshMarkers();
  },
});

// Respect a wish for less motion: no auto-rotation unless switched on.
if (window.matchMedia('(prefers-reduced-motion: reduce)').matches) {
  document.getElementById('autorotate').checked = false;
  loop.setAutoRotate(false);
}

function addHit(hit) {
  // An unlocated hit is counted (state) but has no place: never drawn, never at 0,0.
  if (!isPlaced(hit)) return;
  // Every hit is placed at its age by the server's clock, so a page that joined late (or
  // reconnected) shows the same fading picture as one that was there all along.
  const spawn = loop.wallTime() - state.ageSecs(hit);
  points.add(hit, spawn);
  arcs.add(hit, spawn);
  clusters.add(hit, spawn);
}

// Windowed analytics and alerts: results from the stream, settings through the API.
const analytics = new AnalyticsState();
const freshAlerts = new Set();
const analyticsPanel = createAnalyticsPanel(document.body, {
  async onApply(kind, values) {
    const result = await putConfig(formToUpdate(kind, values));
    analyticsPanel.showResult(result);
    // A session that has ended: the login form comes back (the error stays on the panel).
    if (result.status === 401) checkAccess();
  },
  onKeyClick: (place) => selectPlace(placeOf(place)),
});
const alertList = createAlertList(document.querySelector('[data-testid="alerts"]'), {
  onAlertClick: showAlertOnGlobe,
});
const ruleList = createRuleList(document.querySelector('[data-testid="alert-rules"]'));
/** The alert whose key's hits are highlighted, if any. */
let shownAlert = null;
/**
 * Flies to an alert's place (or, for a key without one, to its newest live hit) and
 * highlights its key's hits on the GPU; clicking the same alert again ends the highlight.
 */
function showAlertOnGlobe(alert) {
  const again = shownAlert === alert.id;
  shownAlert = again ? null : alert.id;
  const match = again ? null : alertMatcher(alert);
  points.mark(match);
  document.body.dataset.highlightedAlert = again ? '' : String(alert.id);
  if (again) return;
  let place = alert.place ? placeOf(alert.place) : null;
  const hit = !place && match ? points.latest(match) : null;
  if (hit && hit.latitude != null) {
    place = { key: hit.place_key, city: hit.city, country_code: hit.country_code, lat: hit.latitude, lon: hit.longitude };
  }
  if (place) selectPlace(place);
}
/** An analytics place as the top-locations list gives places to `selectPlace`. */
function placeOf(p) {
  return { key: p.key, city: p.city, country_code: p.country_code, lat: p.latitude, lon: p.longitude };
}
function showAlert(alert) {
  scheduleRules();
  if (analytics.applyAlert(alert)) {
    freshAlerts.add(alert.id);
    setTimeout(() => freshAlerts.delete(alert.id), 3000);
  }
  alertList.render(analytics.alerts, freshAlerts);
}
/** The rules in force and their firing counts (asked with the alerts, and after alerts). */
function loadRules() {
  getJson('/api/alerts/rules').then((body) => ruleList.render(body));
}
let rulesTimer = null;
function scheduleRules() {
  if (rulesTimer) return;
  rulesTimer = setTimeout(() => {
    rulesTimer = null;
    loadRules();
  }, 1000);
}
// An event rule's alert counts its further matches without a new `alert` message: while
// alerts fire, the list and the rules' counts are asked for again every few seconds.
setInterval(() => {
  if (!analytics.alerts.some((a) => a.state === 'firing')) return;
  loadRules();
  getJson('/api/alerts').then((body) => {
    for (const alert of body?.alerts ?? []) analytics.applyAlert(alert);
    alertList.render(analytics.alerts, freshAlerts);
  });
}, 5000);
/** The recent alerts (a viewer's: asked once we may watch, like /api/info). */
function loadAlerts() {
  loadRules();
  getJson('/api/alerts').then((body) => {
    for (const alert of body?.alerts ?? []) analytics.applyAlert(alert);
    alertList.render(analytics.alerts);
  });
}

// The built-in generator: its state asked every few seconds once we may watch, steered
// through its control API (an admin's).
const generatorCard = createGeneratorCard(document.querySelector('[data-testid="generator"]'), {
  onToggle: (running) => generatorApi[running ? 'stop' : 'start']().then(showGenerator),
  onApply: (values) => generatorApi.update(values).then(showGenerator),
  onBurst: (values) => generatorApi.burst(values).then(showGenerator),
});
function showGenerator(result) {
  generatorCard.showResult(result);
  if (result.status === 401) checkAccess();
}
let generatorPoll = null;
function watchGenerator() {
  const poll = () => getJson('/api/generator').then((view) => generatorCard.render(view));
  poll();
  generatorPoll ??= setInterval(poll, GENERATOR_POLL_MS);
}

const streamHandlers = {
  analytics(report) {
    analytics.applyReport(report);
    analyticsPanel.render(analytics.report);
  },
  alert: showAlert,
  snapshot(snap) {
    analytics.applyReport(snap.analytics);
    analyticsPanel.render(analytics.report);
    const hits = state.applySnapshot(snap);
    points.clear();
    arcs.clear();
    clusters.clear();
    for (const hit of hits) addHit(hit);
    refreshMarkers();
    refreshPanels();
  },
  hits(msg) {
    for (const hit of state.applyHits(msg)) addHit(hit);
  },
  stats(stats) {
    state.applyStats(stats);
  },
  status(s) {
    panels.status(s);
    document.body.dataset.status = s;
  },
};
// Access: a login form when the stream (or /api/me) answers 401; the stream starts once in.
let stream = null;
function watch() {
  // Which IP databases place hits: their attribution and build date in the legend (asked
  // once we may watch: /api/info is for viewers).
  loadDatabases(document.getElementById('attribution')).then((info) => home.setServerHome(info?.home ?? null));
  stream?.close();
  stream = connectStream('/api/stream', { ...streamHandlers, refused: checkAccess });
  loadAlerts();
  watchGenerator();
  refreshHousekeeping();
}
/** Asks who we are; shows the form and resolves to true when a login is needed. */
async function checkAccess() {
  const who = session.access(await session.me());
  const token = session.setupToken(window.location.hash);
  if (who.view !== 'in' || (token && !who.user)) {
    streamHandlers.status('login');
    loginUi.ask(who.view === 'setup' || token ? 'setup' : 'login', token);
    return who.view !== 'in';
  }
  loginUi.signedIn(who);
  return false;
}
async function signedIn(answer) {
  if (answer.status !== 200) {
    loginUi.failed(answer.body?.message);
    return;
  }
  if (window.location.hash.includes('setup=')) history.replaceState(null, '', window.location.pathname);
  loginUi.signedIn(answer.body);
  watch();
}
const loginUi = createLogin(document.body, {
  login: ({ user, password }) => session.login(user, password).then(signedIn),
  setup: ({ token, user, password }) => session.setup(token, user, password).then(signedIn),
  wantLogin: () => loginUi.ask('login'),
  async logout() {
    await session.logout();
    stream?.close();
    stream = null;
    streamHandlers.status('signed-out');
    loginUi.ask('login');
  },
});
const admin = createAdmin(document.querySelector('section.admin'), {
  async addUser({ name, role, password }) {
    const answer = await session.addUser(name, role, password);
    admin.say(answer.status < 300 ? `${name} (${role}) saved` : answer.body?.message || `failed (${answer.status})`);
  },
  async addToken(name) {
    const answer = await session.addToken(name);
    admin.say(answer.status === 201 ? `token ${name}: ${answer.body.token} (shown once)` : answer.body?.message || `failed (${answer.status})`);
  },
  async refreshAudit() {
    const answer = await session.audit();
    if (answer.status === 200) admin.showAudit(answer.body);
  },
});
// Housekeeping (admins): the jobs, the retention and the daily summaries, asked while the
// card is shown.
const housekeepingRoot = document.querySelector('section.housekeeping');
const housekeeping = createHousekeeping(housekeepingRoot, {
  async act(name, action) {
    const answer = await housekeepingApi.act(name, action);
    housekeeping.say(answer.ok ? `${name}: ${action === 'run' ? 'running now' : `${action}d`}` : answer.message);
    refreshHousekeeping();
  },
  async setRetention(text) {
    const answer = await housekeepingApi.setRetention(text);
    housekeeping.say(answer.ok ? 'retention saved (applies at the next retention run)' : answer.message);
    refreshHousekeeping();
  },
  refresh: () => refreshHousekeeping(),
});
async function refreshHousekeeping() {
  if (housekeepingRoot.hidden) return;
  const [jobs, retention, daily] = await Promise.all([housekeepingApi.jobs(), housekeepingApi.retention(), housekeepingApi.daily()]);
  if (jobs.ok) housekeeping.showJobs(jobs.view.jobs, Date.now());
  if (retention.ok) housekeeping.showRetention(retention.view);
  // 404: no history kept (--store memory), so no days.
  if (daily.ok || daily.status === 404) housekeeping.showDays(daily.view?.days ?? []);
}
setInterval(refreshHousekeeping, HOUSEKEEPING_POLL_MS);

checkAccess()
  .catch(() => false)
  .then((stop) => {
    if (!stop) watch();
  });

function refreshMarkers() {
  // Expiry runs while paused too (memory stays bounded); only the picture holds still.
  const list = feed.refresh(loop.wallTime(), view);
  if (!list) return;
  // Places beyond the marker buffer keep their points; the panel says how many lack a ring.
  markers.update(list, { filter: view.filter, selectedKey: view.selectedCell, density: view.density });
}

function refreshPanels() {
  if (past.active) return past.refresh();
  const v = state.view(view.filter, { top: 12, metric: view.metric });
  v.overwritten = points.overwrittenLive;
  v.markersOmitted = feed.omitted;
  v.mergeLeftOut = clusters.leftOut;
  // Protocols, status classes and bytes as of the latest stats (no per-hit catch-up).
  v.mix = breakdowns(state.stats);
  panels.render(v, view.filter, view.metric);
  timeline.render(v.timeline);
}

function selectPlace(place) {
  if (!Number.isFinite(place.lat)) return; // a past window's place none of its loaded hits placed
  view.selected = place;
  view.selectedCell = cellKey(place.lat, place.lon);
  panels.select(place.key);
  loop.flyTo(place.lat, place.lon);
  highlight.update(place, loop.sceneTime());
  refreshMarkers();
  refreshPanels();
}

setInterval(() => {
  refreshMarkers();
  refreshPanels();
}, PANEL_INTERVAL_MS);
setInterval(() => panels.tickClock(), 1000);
panels.tickClock();

// Hover (or tap) a marker for its tooltip.
let hoverFrame = 0;
let pointer = null;
function pick() {
  hoverFrame = 0;
  // A past window hides the live markers: nothing of theirs to tell.
  if (!pointer || past.active) return tooltip.hide();
  let best = null;
  let bestD = Infinity;
  for (const m of markers.drawn) {
    const p = loop.project(m.x, m.y, m.z);
    if (!p.facing) continue;
    const radius = (m.size * 300) / p.distance / 2 + 5;
    const d = Math.hypot(p.x - pointer.x, p.y - pointer.y);
    if (d < radius && d < bestD) {
      best = m.cluster;
      bestD = d;
    }
  }
  if (!best) return tooltip.hide();
  const n = countFor(best, view.filter);
  const ips = best.ips.size;
  tooltip.show(pointer.x, pointer.y, [
    [best.city, best.country].filter(Boolean).join(', ') || 'Unknown place',
    ips === 1 ? `IP ${best.latestIp}` : `${formatCount(n)} hits from ${formatCount(ips)} IPs`,
    `latest ${formatDataTime(best.latestTimestamp)}${best.latest?.located === 'ip' ? ' · placed by IP' : ''}`,
    best.suspicious > 0 ? `${formatCount(best.suspicious)} suspicious` : 'none suspicious',
    best.latest ? describeRequest(best.latest) : '',
  ]);
}
globeEl.addEventListener('pointermove', (e) => {
  const r = globeEl.getBoundingClientRect();
  pointer = { x: e.clientX - r.left, y: e.clientY - r.top };
  if (!hoverFrame) hoverFrame = requestAnimationFrame(pick);
});
// A tap on a touch screen shows the tooltip too.
globeEl.addEventListener('pointerdown', (e) => {
  if (e.pointerType !== 'touch') return;
  const r = globeEl.getBoundingClientRect();
  pointer = { x: e.clientX - r.left, y: e.clientY - r.top };
  pick();
});
globeEl.addEventListener('pointerleave', () => {
  pointer = null;
  tooltip.hide();
});

// Keyboard: arrows rotate, +/- zoom, when the globe has focus.
globeEl.addEventListener('keydown', (e) => {
  const step = e.shiftKey ? 20 : 8;
  const keys = {
    ArrowLeft: [-step, 0, 1],
    ArrowRight: [step, 0, 1],
    ArrowUp: [0, step, 1],
    ArrowDown: [0, -step, 1],
    '+': [0, 0, 0.85],
    '=': [0, 0, 0.85],
    '-': [0, 0, 1.15],
  };
  const k = keys[e.key];
  if (!k) return;
  e.preventDefault();
  loop.nudge(...k);
});

// A small hook for tests, benchmarks and the curious: camera and view state (read-only),
// frame timings, and feed()/stress() to drive load through the real code paths.
window.__globe = {
  camera: () => loop.cameraState(),
  /** Where a lat/lon on the surface is on screen (CSS pixels in the globe element). */
  screenOf(lat, lon) {
    const p = loop.project(...latLonToXyz(lat, lon, GLOBE_RADIUS * 1.006));
    const r = globeEl.getBoundingClientRect();
    return { x: p.x + r.left, y: p.y + r.top, facing: p.facing };
  },
  frameStats: () => loop.frameStats(),
  /** Per-frame CPU milliseconds, oldest first (benchmarks). */
  frameSamples: () => loop.frameSamples(),
  /** Hands a parsed stream message to the same handler the stream uses ('hits', 'stats'; benchmarks). */
  feed: (type, data) => streamHandlers[type](data),
  /** Draws n synthetic hits now (points only; counters untouched), for load checks. */
  stress(n) {
    const now = loop.wallTime();
    for (let i = 0; i < n; i++) {
      const lat = Math.asin(2 * Math.random() - 1) * (180 / Math.PI);
      points.add({ latitude: lat, longitude: 360 * Math.random() - 180, suspicious: Math.random() < 0.05 }, now - Math.random());
    }
  },
  view: () => ({ ...view, selected: view.selected && view.selected.city }),
  /** The past window shown, if any: range, summary, hits loaded and drawn, replay (e2e). */
  past: () => past.state(),
  /** Live hits drawn highlighted (an alert's key), and the alert they belong to (e2e). */
  marked() {
    let n = 0;
    for (let i = 0; i < Math.min(points.ring.written, points.capacity); i++) n += points.marks[i];
    return { hits: n, alert: shownAlert, marking: points.material.uniforms.uMarking.value };
  },
  /** Every country the page knows with its hit count (stats plus hits since), the total and
   * the unlocated hits by reason, and the seq the latest stats cover (e2e). */
  countries() {
    const v = state.view('all');
    const countries = {};
    for (const c of state.topCountries(100000)) countries[c.country_code] = c.count;
    return { countries, total: v.total, unlocated: v.unlocated.byReason, statsSeq: state.stats?.seq ?? 0 };
  },
  /** The arcs layer: whether it is drawn, to which home, and how many arcs it holds (e2e). */
  arcs: () => ({ visible: arcs.object.visible, home: arcs.home, instances: arcs.geometry.instanceCount }),
  /** Unlocated hits as the counters show them, and how many were placed how (e2e). */
  placement() {
    const v = state.view(view.filter);
    return { unlocated: v.unlocated, located: v.located };
  },
  /** The data clock and the timeline's first and last second as the page shows them (e2e). */
  dataClock() {
    const v = state.view(view.filter);
    const t = v.timeline;
    const end = t.start == null ? null : t.start + t.normal.length - 1;
    return { latest: v.latestTimestamp, start: t.start, end, outliers: v.outliers, pending: v.pending, clockJumps: v.clockJumps };
  },
  points: () => ({
    written: points.ring.written,
    overwrittenLive: points.overwrittenLive,
    liveClustered: clusters.live,
    retainedHits: clusters.retained,
    leftOutOfMarkers: clusters.leftOut,
    seq: state.seq,
  }),
  /**
   * What is drawn at a coordinate right now, read back from the values the GPU gets: the
   * points there that the point shader shows (its own test: 0 <= uTime - aSpawn <= uFade,
   * kind not filtered out), and whether a marker is drawn for its cell (e2e).
   */
  drawnAt(lat, lon) {
    const [x, y, z] = latLonToXyz(lat, lon, GLOBE_RADIUS * 1.004);
    const u = points.material.uniforms;
    const { positions: p, spawns, kinds } = points;
    const slots = Math.min(points.ring.written, points.capacity);
    let n = 0;
    for (let i = 0; i < slots; i++) {
      if (Math.abs(p[3 * i] - x) + Math.abs(p[3 * i + 1] - y) + Math.abs(p[3 * i + 2] - z) > 1e-3) continue;
      const age = u.uTime.value - spawns[i];
      const shown = kinds[i] > 0.5 ? u.uShowSuspicious.value : u.uShowNormal.value;
      if (age >= 0 && age <= u.uFade.value && shown > 0.5) n += 1;
    }
    const cell = cellKey(lat, lon);
    return { points: n, marker: markers.drawn.some((m) => m.cluster.key === cell) };
  },
  /** Ring slots still inside the fade window, i.e. drawn as visible (scans the ring; benchmarks). */
  liveInRing() {
    const since = loop.sceneTime() - view.fade;
    const spawns = points.clock.exact;
    let n = 0;
    for (let i = 0; i < spawns.length; i++) if (spawns[i] >= since) n += 1;
    return n;
  },
};
