// Live hits as one THREE.Points over a ring buffer: written once when they arrive (only the
// new slots are uploaded), faded entirely on the GPU from their spawn time. Times reach the
// GPU relative to a base that moves forward (data/clock.js), so fades stay smooth however
// long the page runs.

import * as THREE from 'three';
import { GLOBE_RADIUS, COLORS, POINT_CAPACITY, FADE_DEFAULT } from '../config.js';
import { latLonToXyzInto } from '../data/geo.js';
import { RingCursor } from '../data/ring.js';
import { SpawnClock } from '../data/clock.js';
import vert from '../shaders/points.vert.glsl?raw';
import frag from '../shaders/points.frag.glsl?raw';

export class HitPoints {
  constructor({ capacity = POINT_CAPACITY, pixelRatio = 1 } = {}) {
    this.capacity = capacity;
    this.ring = new RingCursor(capacity);
    this.positions = new Float32Array(capacity * 3);
    this.clock = new SpawnClock(capacity);
    /** Spawn times as the GPU gets them (relative to clock.base). */
    this.spawns = this.clock.gpu;
    this.kinds = new Float32Array(capacity);
    /** 1 for the hits of the highlighted alert's key (drawn larger, in the highlight colour). */
    this.marks = new Float32Array(capacity);
    /** The hit in each slot (to mark the hits of a key when one is picked). */
    this.hits = new Array(capacity);
    /** Whether a hit is marked, or null: nothing highlighted. */
    this.marker = null;
    /** Hits overwritten while still visible (the buffer was too small for the rate). */
    this.overwrittenLive = 0;
    this.now = 0;

    const geo = new THREE.BufferGeometry();
    this.posAttr = new THREE.BufferAttribute(this.positions, 3).setUsage(THREE.DynamicDrawUsage);
    this.spawnAttr = new THREE.BufferAttribute(this.spawns, 1).setUsage(THREE.DynamicDrawUsage);
    this.kindAttr = new THREE.BufferAttribute(this.kinds, 1).setUsage(THREE.DynamicDrawUsage);
    this.markAttr = new THREE.BufferAttribute(this.marks, 1).setUsage(THREE.DynamicDrawUsage);
    geo.setAttribute('position', this.posAttr);
    geo.setAttribute('aSpawn', this.spawnAttr);
    geo.setAttribute('aKind', this.kindAttr);
    geo.setAttribute('aMark', this.markAttr);
    geo.setDrawRange(0, 0);
    this.geometry = geo;
    this.material = new THREE.ShaderMaterial({
      vertexShader: vert,
      fragmentShader: frag,
      uniforms: {
        uTime: { value: 0 },
        uFade: { value: FADE_DEFAULT },
        uPixelRatio: { value: pixelRatio },
        uShowNormal: { value: 1 },
        uShowSuspicious: { value: 1 },
        uNormalColor: { value: new THREE.Color(COLORS.normal) },
        uSuspiciousColor: { value: new THREE.Color(COLORS.suspicious) },
        uMarking: { value: 0 },
        uMarkColor: { value: new THREE.Color(COLORS.highlight) },
      },
      transparent: true,
      depthWrite: false,
      blending: THREE.AdditiveBlending,
    });
    this.object = new THREE.Points(geo, this.material);
    this.object.frustumCulled = false;
    this.object.renderOrder = 4;
  }

  /** Adds a hit that appeared at scene time `spawn` (seconds). */
  add(hit, spawn) {
    const slot = this.ring.claim();
    if (this.now - this.clock.exact[slot] < this.material.uniforms.uFade.value) this.overwrittenLive += 1;
    latLonToXyzInto(this.positions, slot * 3, hit.latitude, hit.longitude, GLOBE_RADIUS * 1.004);
    this.clock.set(slot, spawn);
    this.kinds[slot] = hit.suspicious ? 1 : 0;
    this.hits[slot] = hit;
    this.marks[slot] = this.marker?.(hit) ? 1 : 0;
  }

  /**
   * Highlights the hits `marker` says (null: none), those live now and those to come: one
   * attribute rewritten and uploaded once, no object per hit.
   */
  mark(marker) {
    this.marker = marker;
    const n = Math.min(this.ring.written, this.capacity);
    for (let i = 0; i < n; i++) this.marks[i] = marker && this.hits[i] && marker(this.hits[i]) ? 1 : 0;
    this.material.uniforms.uMarking.value = marker ? 1 : 0;
    this.markAttr.clearUpdateRanges();
    this.markAttr.addUpdateRange(0, n);
    this.markAttr.needsUpdate = true;
  }

  /** The newest live hit `match` says, or null. */
  latest(match) {
    const n = Math.min(this.ring.written, this.capacity);
    for (let k = 1; k <= n; k++) {
      const slot = (this.ring.head - k + this.capacity) % this.capacity;
      const hit = this.hits[slot];
      if (hit && this.now - this.clock.exact[slot] <= this.material.uniforms.uFade.value && match(hit)) return hit;
    }
    return null;
  }

  /** Forgets every point (a snapshot replaced the state). */
  clear() {
    this.clock.clear();
    this.ring.reset();
    this.hits.fill(undefined);
    this.overwrittenLive = 0;
  }

  /** @param {{fade?: number, filter?: string, pixelRatio?: number}} options */
  update({ fade, filter, pixelRatio } = {}) {
    const u = this.material.uniforms;
    if (fade != null) u.uFade.value = fade;
    if (filter != null) {
      u.uShowNormal.value = filter === 'suspicious' ? 0 : 1;
      u.uShowSuspicious.value = filter === 'normal' ? 0 : 1;
    }
    if (pixelRatio != null) u.uPixelRatio.value = pixelRatio;
  }

  /** Uploads the slots written since the last frame and advances the clock. */
  tick(time) {
    this.now = time;
    const { uniform, rebased } = this.clock.tick(time);
    this.material.uniforms.uTime.value = uniform;
    const ranges = this.ring.flush();
    if (ranges.length) {
      for (const attr of [this.posAttr, this.spawnAttr, this.kindAttr, this.markAttr]) {
        attr.clearUpdateRanges();
        for (const [start, count] of ranges) attr.addUpdateRange(start * attr.itemSize, count * attr.itemSize);
        attr.needsUpdate = true;
      }
      this.geometry.setDrawRange(0, Math.min(this.ring.written, this.capacity));
    }
    if (rebased) {
      // Every spawn was rewritten against the new base (every ~17 minutes): upload them all.
      this.spawnAttr.clearUpdateRanges();
      this.spawnAttr.addUpdateRange(0, this.capacity);
      this.spawnAttr.needsUpdate = true;
    }
  }

  dispose() {
    this.geometry.dispose();
    this.material.dispose();
  }
}
