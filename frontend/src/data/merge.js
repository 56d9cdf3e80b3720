// Merging of nearby hits into markers: hits in the same grid cell (about 80 km at the
// equator) within the fade window become one marker whose size follows their count.
// Pure and incremental: adding a hit and expiring old ones cost O(1) each, whatever the
// number of live hits. Hits are remembered for the longest fade window, so widening the
// window brings back exactly the markers the GPU points show again.

import { FADE_MAX, MERGE_CELL_DEG, POINT_CAPACITY } from '../config.js';

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
 */

export class Clusters {
  /**
   * @param {number} cellDeg grid cell size in degrees
   * @param {{maxWindow?: number, capacity?: number}} limits hits are remembered for up to
   *   `maxWindow` seconds (so widening the fade window brings them back) and at most
   *   `capacity` of them (memory stays bounded at any rate)
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
  }

  /** Adds a hit seen at page time `t` (seconds); it counts until the next expire says otherwise. */
  add(hit, t) {
    this.times.push(t);
    this.hits.push(hit);
    this.#count(hit, 1);
    this.version += 1;
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
    // Forget what no window could show again, and anything beyond the capacity.
    const forget = now - this.maxWindow;
    while (this.head < this.windowHead && (t[this.head] < forget || t.length - this.head > this.capacity)) {
      this.hits[this.head] = undefined;
      this.head += 1;
    }
    if (this.head > 4096 && this.head * 2 > t.length) {
      this.times = t.slice(this.head);
      this.hits = this.hits.slice(this.head);
      this.windowHead -= this.head;
      this.head = 0;
    }
    if (change) this.version += 1;
    return change;
  }

  /** Hits counted in all clusters. */
  get live() {
    return this.times.length - this.windowHead;
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
    this.version += 1;
  }
}

/** A cluster's live hits under a filter. */
export function countFor(c, filter) {
  if (filter === 'suspicious') return c.suspicious;
  if (filter === 'normal') return c.normal;
  return c.normal + c.suspicious;
}
