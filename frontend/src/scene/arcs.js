// Arcs from each hit's place to home, as one instanced THREE.LineSegments over a ring buffer
// (one draw call, no object per hit): an arc's place, spawn time and kind are written once
// when the hit arrives (only the new slots are uploaded); the flight and the fade are
// computed on the GPU from the spawn time, on the same clock as the points (data/clock.js).
// Hidden until there is a home and the switch is on.

import * as THREE from 'three';
import { GLOBE_RADIUS, COLORS, ARC_CAPACITY, ARC_SEGMENTS, FADE_DEFAULT } from '../config.js';
import { latLonToXyzInto } from '../data/geo.js';
import { RingCursor } from '../data/ring.js';
import { SpawnClock } from '../data/clock.js';
import { arcParameters } from '../data/arcs.js';
import vert from '../shaders/arcs.vert.glsl?raw';
import frag from '../shaders/arcs.frag.glsl?raw';

/** Seconds an arc takes to fly from the place to home. */
export const ARC_FLY_SECS = 1.2;

export class HitArcs {
  constructor({ capacity = ARC_CAPACITY, segments = ARC_SEGMENTS } = {}) {
    this.capacity = capacity;
    this.ring = new RingCursor(capacity);
    this.from = new Float32Array(capacity * 3);
    this.clock = new SpawnClock(capacity);
    this.kinds = new Float32Array(capacity);
    this.home = null;
    this.enabled = false;

    const geo = new THREE.InstancedBufferGeometry();
    geo.setAttribute('aT', new THREE.BufferAttribute(arcParameters(segments), 1));
    // three.js wants a position attribute to size the draw; aT alone drives the shader.
    geo.setAttribute('position', new THREE.BufferAttribute(new Float32Array(segments * 2 * 3), 3));
    this.fromAttr = new THREE.InstancedBufferAttribute(this.from, 3).setUsage(THREE.DynamicDrawUsage);
    this.spawnAttr = new THREE.InstancedBufferAttribute(this.clock.gpu, 1).setUsage(THREE.DynamicDrawUsage);
    this.kindAttr = new THREE.InstancedBufferAttribute(this.kinds, 1).setUsage(THREE.DynamicDrawUsage);
    geo.setAttribute('aFrom', this.fromAttr);
    geo.setAttribute('aSpawn', this.spawnAttr);
    geo.setAttribute('aKind', this.kindAttr);
    geo.instanceCount = 0;
    this.geometry = geo;
    this.material = new THREE.ShaderMaterial({
      vertexShader: vert,
      fragmentShader: frag,
      uniforms: {
        uHome: { value: new THREE.Vector3(0, 0, GLOBE_RADIUS) },
        uTime: { value: 0 },
        uFade: { value: FADE_DEFAULT },
        uFly: { value: ARC_FLY_SECS },
        uShowNormal: { value: 1 },
        uShowSuspicious: { value: 1 },
        uNormalColor: { value: new THREE.Color(COLORS.normal) },
        uSuspiciousColor: { value: new THREE.Color(COLORS.suspicious) },
      },
      transparent: true,
      depthWrite: false,
      blending: THREE.AdditiveBlending,
    });
    this.object = new THREE.LineSegments(geo, this.material);
    this.object.frustumCulled = false;
    this.object.renderOrder = 3;
    this.object.visible = false;
  }

  /** Adds an arc for a placed hit that appeared at scene time `spawn` (seconds). */
  add(hit, spawn) {
    const slot = this.ring.claim();
    latLonToXyzInto(this.from, slot * 3, hit.latitude, hit.longitude, GLOBE_RADIUS);
    this.clock.set(slot, spawn);
    this.kinds[slot] = hit.suspicious ? 1 : 0;
  }

  clear() {
    this.clock.clear();
    this.ring.reset();
    this.geometry.instanceCount = 0;
  }

  /** @param {{home?: {latitude: number, longitude: number} | null, enabled?: boolean, fade?: number, filter?: string}} options */
  update({ home, enabled, fade, filter } = {}) {
    const u = this.material.uniforms;
    if (home !== undefined) {
      this.home = home;
      if (home) {
        const xyz = new Float32Array(3);
        latLonToXyzInto(xyz, 0, home.latitude, home.longitude, GLOBE_RADIUS);
        u.uHome.value.set(xyz[0], xyz[1], xyz[2]);
      }
    }
    if (enabled != null) this.enabled = enabled;
    if (fade != null) u.uFade.value = fade;
    if (filter != null) {
      u.uShowNormal.value = filter === 'suspicious' ? 0 : 1;
      u.uShowSuspicious.value = filter === 'normal' ? 0 : 1;
    }
    this.object.visible = this.enabled && this.home != null;
  }

  /** Uploads the slots written since the last frame and advances the clock. */
  tick(time) {
    const { uniform, rebased } = this.clock.tick(time);
    this.material.uniforms.uTime.value = uniform;
    const ranges = this.ring.flush();
    if (ranges.length) {
      for (const attr of [this.fromAttr, this.spawnAttr, this.kindAttr]) {
        attr.clearUpdateRanges();
        for (const [start, count] of ranges) attr.addUpdateRange(start * attr.itemSize, count * attr.itemSize);
        attr.needsUpdate = true;
      }
      this.geometry.instanceCount = Math.min(this.ring.written, this.capacity);
    }
    if (rebased) {
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
