// Merging of nearby hits into markers: hits in the same grid cell (about 80 km at the
// equator) within the fade window become one marker whose size follows their count.
// Pure and incremental: adding a hit and expiring old ones cost O(1) each, whatever the
// number of live hits.

import { MERGE_CELL_DEG } from '../config.js';

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
  constructor(cellDeg = MERGE_CELL_DEG) {
    this.cellDeg = cellDeg;
    /** @type {Map<number, Cluster>} */
    this.byKey = new Map();
    // Live hits in arrival order: parallel arrays used as a queue (no per-hit objects).
    this.queue = [];
    this.queueHead = 0;
    /** Bumped on every change, so a renderer knows when to rebuild. */
    this.version = 0;
  }

  /** Adds a hit seen at page time `t` (seconds). */
  add(hit, t) {
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
    // Running mean of the positions merged here (cells never straddle the antimeridian).
    c.n += 1;
    c.lat += (hit.latitude - c.lat) / c.n;
    c.lon += (hit.longitude - c.lon) / c.n;
    if (hit.suspicious) c.suspicious += 1;
    else c.normal += 1;
    c.ips.set(hit.ip, (c.ips.get(hit.ip) || 0) + 1);
    if (!(hit.timestamp < c.latestTimestamp)) {
      c.latestTimestamp = hit.timestamp;
      c.latestIp = hit.ip;
      if (hit.city) c.city = hit.city;
    }
    this.queue.push(t, c, hit.suspicious, hit.ip);
    this.version += 1;
  }

  /** Drops hits seen before `now - window`. Returns how many were dropped. */
  expire(now, window) {
    const horizon = now - window;
    let dropped = 0;
    const q = this.queue;
    while (this.queueHead < q.length && q[this.queueHead] < horizon) {
      const c = q[this.queueHead + 1];
      const suspicious = q[this.queueHead + 2];
      const ip = q[this.queueHead + 3];
      if (suspicious) c.suspicious -= 1;
      else c.normal -= 1;
      const left = c.ips.get(ip) - 1;
      if (left > 0) c.ips.set(ip, left);
      else c.ips.delete(ip);
      if (c.normal + c.suspicious === 0) this.byKey.delete(c.key);
      this.queueHead += 4;
      dropped += 1;
    }
    // Compact the queue now and then so memory follows the live hits.
    if (this.queueHead > 4096 && this.queueHead * 2 > q.length) {
      this.queue = q.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (dropped) this.version += 1;
    return dropped;
  }

  /** Live hits counted in all clusters. */
  get live() {
    return (this.queue.length - this.queueHead) / 4;
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
    this.queue = [];
    this.queueHead = 0;
    this.version += 1;
  }
}

/** A cluster's live hits under a filter. */
export function countFor(c, filter) {
  if (filter === 'suspicious') return c.suspicious;
  if (filter === 'normal') return c.normal;
  return c.normal + c.suspicious;
}
