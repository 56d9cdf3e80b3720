// Merging of nearby hits into markers: hits in the same cell of a fixed latitude/longitude
// grid (0.75°: about 83 km north–south, less east–west away from the equator) within the
// fade window become one marker at their mean position, whose size follows their count.
// Pure and incremental: adding a hit and expiring old ones cost O(1) each, whatever the
// number of live hits. Hits are remembered for the longest fade window, so widening the
// window brings back exactly the markers the GPU points show again, and never more than a
// hard capacity of them, whatever the rate and whether or not anyone expires them.

import { FADE_MAX, MARKER_CAPACITY, MERGE_CELL_DEG, POINT_CAPACITY } from '../config.js';

/** The grid cell of a coordinate, as a number usable as a Map key. */
export function cellKey(lat, lon, cellDeg = MERGE_CELL_DEG) {
  const rows = Math.ceil(180 / cellDeg);
  const cols = Math.ceil(360 / cellDeg);
  const row = Math.min(rows - 1, Math.max(0, Math.floor((lat + 90) / cellDeg)));
  const col = Math.min(cols - 1, Math.max(0, Math.floor((lon + 180) / cellDeg)));
  return row * cols + col;
}

/**
 * @typedef {object} Cluster
 * @property {number} key
 * @property {number} lat mean latitude of the hits merged here
 * @property {number} lon mean longitude
 * @property {number} normal live non-suspicious hits
 * @property {number} suspicious live suspicious hits
 * @property {Map<string, number>} ips live hits per IP
 * @property {string} city
 * @property {string} country
 * @property {number} latestTimestamp data timestamp of the newest hit
 * @property {string} latestIp
 * @property {object} latest the newest hit itself (for the request fields it may carry)
 */

export class Clusters {
  /**
   * @param {number} cellDeg grid cell size in degrees
   * @param {{maxWindow?: number, capacity?: number}} limits hits are remembered for up to
   *   `maxWindow` seconds (so widening the fade window brings them back) and at most
   *   `capacity` of them, counted or not (memory stays bounded at any rate, even if expire
   *   is never called)
   */
  constructor(cellDeg = MERGE_CELL_DEG, { maxWindow = FADE_MAX, capacity = POINT_CAPACITY } = {}) {
    this.cellDeg = cellDeg;
    this.maxWindow = maxWindow;
    this.capacity = capacity;
    /** @type {Map<number, Cluster>} */
    this.byKey = new Map();
    // Remembered hits in arrival order, as parallel arrays used as a queue: times[i], hits[i].
    // [head, windowHead) are remembered but outside the window; [windowHead, end) counted.
    this.times = [];
    this.hits = [];
    this.head = 0;
    this.windowHead = 0;
    /** Bumped on every change, so a renderer knows when to rebuild. */
    this.version = 0;
    /** The window of the last expire (seconds). */
    this.window = maxWindow;
    /** Hits dropped while still inside the window because `capacity` were already held:
     * the markers count this many fewer than arrived (the UI says so). */
    this.leftOut = 0;
  }

  /** Adds a hit seen at page time `t` (seconds); it counts until the next expire says otherwise.
   * Beyond the capacity the oldest remembered hit makes room. */
  add(hit, t) {
    this.times.push(t);
    this.hits.push(hit);
    this.#count(hit, 1);
    this.version += 1;
    if (this.times.length - this.head > this.capacity) this.#dropOldest(t);
  }

  #dropOldest(now) {
    if (this.head === this.windowHead) {
      // Still counted: uncount it, and say so unless it was about to fade anyway.
      this.#count(this.hits[this.head], -1);
      this.windowHead += 1;
      if (now - this.times[this.head] <= this.window) this.leftOut += 1;
    }
    this.hits[this.head] = undefined;
    this.head += 1;
    this.#compact();
  }

  /** Gives back the queue's forgotten front once it is most of the arrays. */
  #compact() {
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.hits = this.hits.slice(this.head);
      this.windowHead -= this.head;
      this.head = 0;
    }
  }

  #count(hit, sign) {
    const key = cellKey(hit.latitude, hit.longitude, this.cellDeg);
    let c = this.byKey.get(key);
    if (!c) {
      c = {
        key,
        lat: hit.latitude,
        lon: hit.longitude,
        n: 0,
        normal: 0,
        suspicious: 0,
        ips: new Map(),
        city: hit.city || '',
        country: hit.country || hit.country_code || '',
        latestTimestamp: hit.timestamp,
        latestIp: hit.ip,
        latest: hit,
      };
      this.byKey.set(key, c);
    }
    if (sign > 0) {
      // Running mean of the positions merged here (cells never straddle the antimeridian).
      c.n += 1;
      c.lat += (hit.latitude - c.lat) / c.n;
      c.lon += (hit.longitude - c.lon) / c.n;
      if (!(hit.timestamp < c.latestTimestamp)) {
        c.latestTimestamp = hit.timestamp;
        c.latestIp = hit.ip;
        c.latest = hit;
        if (hit.city) c.city = hit.city;
      }
    }
    if (hit.suspicious) c.suspicious += sign;
    else c.normal += sign;
    const left = (c.ips.get(hit.ip) || 0) + sign;
    if (left > 0) c.ips.set(hit.ip, left);
    else c.ips.delete(hit.ip);
    if (c.normal + c.suspicious <= 0) this.byKey.delete(key);
  }

  /**
   * Counts exactly the hits seen in [now - window, now]: drops older ones from the counts,
   * and brings back remembered ones when the window grew. Returns the change in live hits.
   */
  expire(now, window) {
    this.window = window;
    const horizon = now - window;
    const t = this.times;
    let change = 0;
    while (this.windowHead < t.length && t[this.windowHead] < horizon) {
      this.#count(this.hits[this.windowHead], -1);
      this.windowHead += 1;
      change -= 1;
    }
    while (this.windowHead > this.head && t[this.windowHead - 1] >= horizon) {
      this.windowHead -= 1;
      this.#count(this.hits[this.windowHead], 1);
      change += 1;
    }
    // Forget what no window could show again (add() keeps the capacity).
    const forget = now - this.maxWindow;
    while (this.head < this.windowHead && t[this.head] < forget) {
      this.hits[this.head] = undefined;
      this.head += 1;
    }
    this.#compact();
    if (change) this.version += 1;
    return change;
  }

  /** Hits counted in all clusters. */
  get live() {
    return this.times.length - this.windowHead;
  }

  /** Hits held, counted or only remembered (at most `capacity`). */
  get retained() {
    return this.times.length - this.head;
  }

  /** Clusters with something to show under `filter` ('all' | 'suspicious' | 'normal'),
   * busiest first, at most `limit`. */
  list(filter = 'all', limit = Infinity) {
    const out = [];
    for (const c of this.byKey.values()) {
      const n = countFor(c, filter);
      if (n > 0) out.push(c);
    }
    out.sort((a, b) => countFor(b, filter) - countFor(a, filter));
    return out.length > limit ? out.slice(0, limit) : out;
  }

  clear() {
    this.byKey.clear();
    this.times = [];
    this.hits = [];
    this.head = 0;
    this.windowHead = 0;
    this.leftOut = 0;
    this.version += 1;
  }
}

/**
 * What the marker layer is handed: the clusters' bookkeeping (expiry) runs at every
 * refresh, paused or not, so memory stays bounded through any pause; only the picture holds
 * still while paused.
 */
export class MarkerFeed {
  /**
   * @param {Clusters} clusters
   * @param {number} capacity most markers drawn at once
   */
  constructor(clusters, capacity = MARKER_CAPACITY) {
    this.clusters = clusters;
    this.capacity = capacity;
    this.paused = false;
    /** Places with live hits beyond `capacity` at the last drawn refresh (drawn without a ring). */
    this.omitted = 0;
  }

  /**
   * Brings the counts to page time `now` under the fade window; returns the markers to draw
   * (busiest first, at most `capacity`), or null while paused (keep the picture as it is).
   * @param {number} now page time, seconds
   * @param {{fade: number, filter: string}} view
   */
  refresh(now, { fade, filter }) {
    this.clusters.expire(now, fade);
    if (this.paused) return null;
    const all = this.clusters.list(filter);
    this.omitted = Math.max(0, all.length - this.capacity);
    return this.omitted ? all.slice(0, this.capacity) : all;
  }
}

/** A cluster's live hits under a filter. */
export function countFor(c, filter) {
  if (filter === 'suspicious') return c.suspicious;
  if (filter === 'normal') return c.normal;
  return c.normal + c.suspicious;
}
