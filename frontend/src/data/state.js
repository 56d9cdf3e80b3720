// The client's picture of the traffic: the server's authoritative stats plus the hits seen
// since (ids above stats.seq), so numbers move smoothly between stats and end exactly right.
// Pure: messages in, views out. A snapshot replaces everything.

import { followClock, lastSeconds } from './timeline.js';
import { TIMELINE_SECS } from '../config.js';

/** @typedef {'all' | 'suspicious' | 'normal'} Filter */
/** @typedef {'requests' | 'bytes'} Metric what the top lists rank by */

/**
 * Whether a hit has a place to be drawn at: coordinates from the event or its IP. An
 * unlocated hit (`located: null`, `unlocated: "<reason>"`) is counted, never drawn (and
 * never at 0,0).
 */
export function isPlaced(hit) {
  return hit.located !== null && Number.isFinite(hit.latitude) && Number.isFinite(hit.longitude);
}

/** "private: 2, loopback: 1", largest first, for the unlocated counter's hover text. */
export function describeReasons(byReason) {
  return Object.entries(byReason || {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, n]) => `${reason.replace(/_/g, ' ')}: ${n}`)
    .join(', ');
}

/**
 * The busiest networks (AS) as of the latest stats, each {asn, name, count, suspicious, bytes,
 * value}, ranked by `metric`; empty when the server has no AS data. Stats only: hits since do
 * not move them (a network list is coarse enough to wait a second).
 */
export function topNetworks(stats, limit, metric = 'requests') {
  const byBytes = metric === 'bytes';
  return (stats?.top_networks ?? [])
    .map((n) => ({ ...n, bytes: n.bytes ?? 0, value: byBytes ? (n.bytes ?? 0) : n.count }))
    .filter((n) => n.value > 0)
    .sort((a, b) => b.value - a.value || a.asn - b.asn)
    .slice(0, limit);
}

export class TrafficState {
  constructor() {
    this.reset();
  }

  reset() {
    /** Latest stats from the server (null before the first snapshot). */
    this.stats = null;
    /** Newest event id applied. */
    this.seq = 0;
    /** Hits newer than stats.seq: {id, suspicious, key, city, country, country_code, lat, lon, second, timestamp};
     * `key` is the server's place key (names are not unique: two Springfields in the US). */
    this.extra = [];
    this.visibleSecs = 60;
    this.hitsTruncated = 0;
    /** server clock minus local clock, milliseconds. */
    this.clockOffsetMs = 0;
  }

  /**
   * Replaces the state with a snapshot. Returns its hits (oldest first) with their ids.
   * @param {object} snap snapshot message data
   * @param {number} nowMs local wall clock (Date.now())
   */
  applySnapshot(snap, nowMs = Date.now()) {
    this.reset();
    this.stats = snap.stats;
    this.seq = snap.stats.seq;
    this.visibleSecs = snap.visible_secs ?? 60;
    this.hitsTruncated = snap.hits_truncated ?? 0;
    this.clockOffsetMs = snap.stats.server_time - nowMs;
    return snap.hits.map((hit, i) => ({ ...hit, id: snap.first_seq + i }));
  }

  /**
   * Applies a `hits` message. Returns the hits not seen before, with their ids.
   */
  applyHits(msg) {
    const fresh = [];
    for (let i = 0; i < msg.hits.length; i++) {
      const id = msg.seq + i;
      if (id <= this.seq) continue; // already covered (a resume can overlap)
      const hit = msg.hits[i];
      hit.id = id;
      fresh.push(hit);
      if (!this.stats || id > this.stats.seq) {
        const placed = isPlaced(hit);
        this.extra.push({
          id,
          located: placed ? (hit.located ?? 'event') : null,
          unlocated: placed ? null : (hit.unlocated ?? 'unknown'),
          suspicious: !!hit.suspicious,
          key: hit.place_key,
          city: hit.city,
          country: hit.country,
          country_code: hit.country_code,
          lat: hit.latitude,
          lon: hit.longitude,
          second: Math.floor(hit.timestamp),
          timestamp: hit.timestamp,
          bytes: Number.isFinite(hit.bytes) ? hit.bytes : 0,
        });
      }
    }
    if (fresh.length) this.seq = Math.max(this.seq, fresh[fresh.length - 1].id);
    return fresh;
  }

  /** Applies a `stats` message: authoritative counters as of stats.seq. */
  applyStats(stats, nowMs = Date.now()) {
    if (this.stats && stats.seq < this.stats.seq) return;
    this.stats = stats;
    this.clockOffsetMs = stats.server_time - nowMs;
    this.seq = Math.max(this.seq, stats.seq);
    if (this.extra.length) this.extra = this.extra.filter((e) => e.id > stats.seq);
  }

  /**
   * Counters, top places and timeline under `filter`.
   * @param {Filter} filter
   * The data clock and timeline are the server's, followed over the hits since as the
   * server follows them: a hit off the clock counts in the totals and places but not on
   * the timeline (pending, then an outlier or, once the server confirms its era, the clock).
   * @param {Filter} filter
   * @param {{top?: number, span?: number, window?: number}} options `window`: the server's
   *   timeline length (`--timeline-secs`), which places hits against the clock
   */
  view(filter = 'all', { top = 10, span = TIMELINE_SECS, window = TIMELINE_SECS, metric = 'requests' } = {}) {
    const s = this.stats;
    let total = s ? s.total : 0;
    let suspicious = s ? s.suspicious : 0;
    const byReason = { ...(s?.unlocated?.by_reason ?? {}) };
    const located = { event: s?.located?.event ?? 0, ip: s?.located?.ip ?? 0 };
    for (const e of this.extra) {
      total += 1;
      if (e.suspicious) suspicious += 1;
      if (e.unlocated) byReason[e.unlocated] = (byReason[e.unlocated] ?? 0) + 1;
      else located[e.located === 'ip' ? 'ip' : 'event'] += 1;
    }
    const unlocatedTotal = Object.values(byReason).reduce((a, n) => a + n, 0);
    const clock = followClock(s ? s.timeline : null, s ? s.latest_timestamp : null, this.extra, window);
    const extraSeconds = clock.seconds;
    const latest = clock.latest;
    const shown =
      filter === 'suspicious' ? suspicious : filter === 'normal' ? total - suspicious : total;
    const shownSuspicious = filter === 'normal' ? 0 : suspicious;
    const timeline = lastSeconds(s ? s.timeline : null, extraSeconds, span);
    if (filter === 'suspicious') timeline.normal = timeline.normal.map(() => 0);
    if (filter === 'normal') timeline.suspicious = timeline.suspicious.map(() => 0);
    return {
      total: shown,
      allTotal: total,
      suspicious: shownSuspicious,
      share: total > 0 ? suspicious / total : 0,
      rate: s ? s.events_per_second : 0,
      clients: s ? s.clients : 0,
      rejected: s ? s.rejected_requests : 0,
      firstTimestamp: s ? s.first_timestamp : null,
      latestTimestamp: latest,
      places: s ? s.places : 0,
      otherPlaces: s ? s.other_places : 0,
      tooOld: s ? s.timeline.too_old : 0,
      outliers: clock.outliers,
      pending: clock.pending,
      lastOutlier: clock.lastOutlier,
      clockJumps: s ? (s.timeline.clock_jumps ?? 0) : 0,
      hitsTruncated: this.hitsTruncated,
      unlocated: { total: unlocatedTotal, byReason },
      located,
      capture: s?.capture ?? null,
      hasBytes: (s?.bytes?.events ?? 0) > 0 || this.extra.some((e) => e.bytes > 0),
      top: this.topPlaces(filter, top, metric),
      countries: this.topCountries(top, metric),
      networks: topNetworks(s, top, metric),
      timeline,
    };
  }

  /** Busiest places under `filter`, stats plus hits since, each {key, city, country, country_code, lat, lon, count, suspicious, bytes, value},
   * told apart by the server's place key, never by name. By `metric` 'bytes' the value is the
   * bytes of all the place's hits (the server keeps no bytes by kind, so the filter does not apply). */
  topPlaces(filter, limit, metric = 'requests') {
    const s = this.stats;
    const byBytes = metric === 'bytes';
    const ranked = { suspicious: s?.top_suspicious_places, normal: s?.top_normal_places };
    const source = !s ? [] : byBytes ? (s.top_places_by_bytes ?? []) : (ranked[filter] ?? s.top_places);
    const byKey = new Map();
    for (const p of source) {
      byKey.set(p.key, {
        key: p.key,
        city: p.city,
        region: p.region,
        country: p.country,
        country_code: p.country_code,
        lat: p.latitude,
        lon: p.longitude,
        count: p.count,
        suspicious: p.suspicious,
        bytes: p.bytes ?? 0,
      });
    }
    for (const e of this.extra) {
      if (e.unlocated) continue; // counted, but never a place
      let p = byKey.get(e.key);
      if (!p) {
        p = {
          key: e.key,
          city: e.city,
          region: '',
          country: e.country,
          country_code: e.country_code,
          lat: e.lat,
          lon: e.lon,
          count: 0,
          suspicious: 0,
          bytes: 0,
        };
        byKey.set(e.key, p);
      }
      p.count += 1;
      if (e.suspicious) p.suspicious += 1;
      p.bytes += e.bytes ?? 0;
    }
    const value = (p) =>
      byBytes
        ? p.bytes
        : filter === 'suspicious'
          ? p.suspicious
          : filter === 'normal'
            ? p.count - p.suspicious
            : p.count;
    return [...byKey.values()]
      .map((p) => ({ ...p, value: value(p) }))
      .filter((p) => p.value > 0)
      .sort((a, b) => b.value - a.value || a.city.localeCompare(b.city) || a.key - b.key)
      .slice(0, limit);
  }

  /**
   * Busiest countries, stats plus hits since, each {country_code, country, count, suspicious,
   * bytes, value}, ranked by `metric` (value = count or bytes). A country outside the server's
   * top list gains only the hits since, so it may rank low until the next stats.
   */
  topCountries(limit, metric = 'requests') {
    const s = this.stats;
    const byBytes = metric === 'bytes';
    const source = !s ? [] : byBytes ? (s.top_countries_by_bytes ?? []) : (s.top_countries ?? []);
    const byCode = new Map();
    for (const c of source) {
      byCode.set(c.country_code, {
        country_code: c.country_code,
        country: c.country,
        count: c.count,
        suspicious: c.suspicious,
        bytes: c.bytes ?? 0,
      });
    }
    for (const e of this.extra) {
      if (e.unlocated) continue;
      const code = e.country_code ?? '';
      let c = byCode.get(code);
      if (!c) {
        c = { country_code: code, country: e.country ?? '', count: 0, suspicious: 0, bytes: 0 };
        byCode.set(code, c);
      }
      c.count += 1;
      if (e.suspicious) c.suspicious += 1;
      c.bytes += e.bytes ?? 0;
    }
    return [...byCode.values()]
      .map((c) => ({ ...c, value: byBytes ? c.bytes : c.count }))
      .filter((c) => c.value > 0)
      .sort((a, b) => b.value - a.value || a.country_code.localeCompare(b.country_code))
      .slice(0, limit);
  }

  /** Seconds since the server received `hit`, by the server's clock. */
  ageSecs(hit, nowMs = Date.now()) {
    return Math.max(0, (nowMs + this.clockOffsetMs - hit.received) / 1000);
  }
}
