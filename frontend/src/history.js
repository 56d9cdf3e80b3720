// Wires a past window into the page (main.js hands over its parts): the range bar and a drag
// over the timeline pick a window of data time, fetched from /api/history; the globe, list and
// counters then show that window (its hits on a layer of their own, so the live layers keep
// counting and drawing underneath, hidden) until Live is pressed; a replay plays the window's
// hits at their own times at the chosen speed; the export links download what the API gives.

import { HitPoints } from './scene/points.js';
import { isPlaced } from './data/state.js';
import { PastWindow, Replay, loadPages, presetRange, replaySpan, exportUrl, PAGE_LIMIT } from './data/past.js';
import { createRangeBar } from './ui/range.js';
import { formatCount, formatDataTime } from './ui/format.js';
import { POINT_CAPACITY } from './config.js';

/** Fade of a window shown still: its hits glow in and stay (seconds, far beyond any view). */
const STILL_FADE = 1e7;

/** GETs JSON, throwing with the server's message on a failure. */
async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new Error(body?.message ?? `HTTP ${response.status}`);
  return body;
}

/**
 * @param {object} parts
 * @param {object} parts.loop the render loop
 * @param {object[]} parts.liveLayers layers hidden while a window is shown (points, markers, arcs)
 * @param {{filter: string, fade: number}} parts.view the page's view settings
 * @param {() => number|null} parts.liveClock the live data clock (presets reach back from it)
 * @param {(v: object) => void} parts.paint paints a view on the panels and timeline
 * @param {() => void} parts.onLive called on the way back to live, after the live layers were
 *   made visible again (main repaints, and a layer that decides its own visibility, arcs,
 *   decides again)
 * @param {HTMLElement} parts.bar the range bar's container
 * @param {HTMLElement|null} parts.subtitle the activity card's subtitle
 */
export function createPastView({ loop, liveLayers, view, liveClock, paint, onLive, bar, subtitle }) {
  const points = new HitPoints({ pixelRatio: loop.renderer.getPixelRatio() });
  points.object.visible = false;
  loop.add(points);

  let mode = 'live';
  let preset = null;
  /** @type {PastWindow|null} */
  let win = null;
  /** @type {Replay|null} */
  let replay = null;
  /** Bumped whenever what is shown changes: a load for an older choice stops. */
  let generation = 0;
  let error = '';
  let frame = 0;
  /** Whether the replay's pages are still being fetched. */
  let replayLoading = false;

  const rangeBar = createRangeBar(bar, subtitle, {
    preset(name) {
      const range = presetRange(name, liveClock());
      if (!range) return;
      preset = name;
      show(range);
    },
    live: backToLive,
    play() {
      if (!win) return;
      if (!replay || replayDone()) startReplay();
      else if (replay.playing) replay.pause(Date.now());
      else replay.play(Date.now());
      refresh();
    },
    stop() {
      stopReplay();
      showStill();
    },
    speed(n) {
      replay?.setSpeed(n, Date.now());
    },
  });

  function setLive(on) {
    for (const layer of liveLayers) layer.object.visible = on;
    points.object.visible = !on;
    document.body.dataset.mode = on ? 'live' : 'past';
  }

  /** Shows `range` (data time) under the page's filter. */
  async function show(range) {
    const mine = ++generation;
    stopReplay();
    mode = 'past';
    error = '';
    setLive(false);
    win = new PastWindow(range, view.filter);
    points.clear();
    refresh();
    await showStill(mine);
  }

  /** Draws the window's hits, still (loading them page by page), up to the point buffer. */
  async function showStill(mine = ++generation) {
    if (!win) return;
    points.clear();
    points.update({ fade: STILL_FADE, filter: view.filter });
    const now = loop.wallTime();
    let drawn = 0;
    const draw = (hits) => {
      for (const hit of hits) {
        if (drawn >= POINT_CAPACITY) return;
        if (!isPlaced(hit)) continue;
        points.add(hit, now);
        drawn += 1;
      }
    };
    draw(win.hits);
    try {
      await loadPages(win, getJson, (_, hits) => {
        if (mine !== generation) return true;
        draw(hits);
        refresh();
        return win.hits.length >= POINT_CAPACITY;
      });
    } catch (e) {
      if (mine === generation) error = `history: ${e.message}`;
    }
    if (mine === generation) refresh();
  }

  function startReplay() {
    const span = replaySpan(win);
    if (!span) return;
    const mine = ++generation;
    replay = new Replay(span, rangeBar.speed());
    points.clear();
    points.update({ fade: view.fade, filter: view.filter });
    // Its own pages from the first: the still view may hold only part of a big window.
    const source = new PastWindow(win.range, win.filter);
    source.summary = win.summary;
    const r = replay;
    replayLoading = true;
    (async () => {
      try {
        while (mine === generation && !source.complete) {
          // Keep about a page queued ahead of the clock.
          if (r.pending.length >= PAGE_LIMIT) {
            await new Promise((ok) => setTimeout(ok, 250));
            continue;
          }
          await loadPages(source, getJson, (_, hits) => {
            if (mine !== generation) return true;
            r.add(hits, Date.now());
            return true;
          });
        }
      } catch (e) {
        if (mine === generation) error = `replay: ${e.message}`;
      }
      if (mine === generation) replayLoading = false;
    })();
    replay.play(Date.now());
    pump();
  }

  /** Draws the hits whose moment came, each at its exact age; once a frame while playing. */
  function pump() {
    frame = 0;
    if (!replay) return;
    const now = loop.wallTime();
    for (const { hit, lagSecs } of replay.due(Date.now())) if (isPlaced(hit)) points.add(hit, now - lagSecs);
    if (replayDone()) return refresh();
    frame = requestAnimationFrame(pump);
  }

  /** Whether the replay has played its whole window (every page fetched and drawn). */
  function replayDone() {
    return replay != null && !replayLoading && replay.finished(Date.now());
  }

  function stopReplay() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    replay = null;
  }

  function backToLive() {
    generation += 1;
    stopReplay();
    mode = 'live';
    preset = null;
    win = null;
    error = '';
    points.clear();
    setLive(true);
    onLive();
    refresh();
  }

  /** The range bar's line: which window, how many hits, where a replay is. */
  function describe() {
    if (mode === 'live') return 'live · drag over the timeline or pick a window to look back';
    const r = win.range;
    const span = r.from == null && r.to == null ? 'all data' : `${formatDataTime(r.from)} – ${r.to == null ? 'now' : formatDataTime(r.to)}`;
    const total = win.summary ? `${formatCount(win.summary.total)} hits` : 'loading…';
    const parts = [`past: ${span}`, total];
    if (replay) {
      const where = replayDone() ? 'done at' : replay.playing ? 'at' : 'paused at';
      parts.push(`replay ×${replay.speed} ${where} ${formatDataTime(replay.position(Date.now()))} · ${formatCount(replay.played)} drawn`);
    } else if (win.summary && !win.complete && win.hits.length >= POINT_CAPACITY) {
      parts.push(`globe shows the first ${formatCount(POINT_CAPACITY)}`);
    }
    if (error) parts.push(error);
    return parts.join(' · ');
  }

  function refresh() {
    const past = mode === 'past';
    rangeBar.render({
      mode,
      preset,
      text: describe(),
      replay: !replay ? 'off' : replayDone() ? 'done' : replay.playing ? 'playing' : 'paused',
      csv: past ? exportUrl(win.range, win.filter, 'csv') : '',
      jsonl: past ? exportUrl(win.range, win.filter, 'jsonl') : '',
    });
    if (!past) return;
    // A live layer switched on meanwhile (arcs by the home control) stays hidden.
    for (const layer of liveLayers) layer.object.visible = false;
    const clock = replay ? replay.position(Date.now()) : null;
    paint(win.view(clock), clock);
  }

  return {
    /** Whether a past window is shown (main then leaves the panels to this). */
    get active() {
      return mode === 'past';
    },
    /** Repaints the panels and the bar (main's panel interval). */
    refresh,
    /** Shows a window selected on the timeline. */
    select(range) {
      preset = null;
      show(range);
    },
    /** The filter changed: the window is asked again under it. */
    filterChanged() {
      if (mode === 'past' && win) show(win.range);
    },
    /** The fade changed: a replay fades by it. */
    fadeChanged() {
      if (replay) points.update({ fade: view.fade });
    },
    /** For tests: what is shown. */
    state: () => ({
      mode,
      range: win?.range ?? null,
      summary: win?.summary ?? null,
      loaded: win?.hits.length ?? 0,
      complete: win?.complete ?? false,
      replay: replay && { position: replay.position(Date.now()), played: replay.played, playing: replay.playing, pending: replay.pending.length, done: replayDone() },
      drawn: Math.min(points.ring.written, points.capacity),
      error,
    }),
  };
}
