// Merged markers (one per place cell, sized by its live hits) and the optional density
// layer drawn from the same clusters. Rebuilt a few times a second from the cluster list,
// which is bounded by the number of places, not by the number of hits.

import * as THREE from 'three';
import { GLOBE_RADIUS, COLORS, MARKER_CAPACITY } from '../config.js';
import { latLonToXyz } from '../data/geo.js';
import { countFor } from '../data/merge.js';
import markersVert from '../shaders/markers.vert.glsl?raw';
import markersFrag from '../shaders/markers.frag.glsl?raw';
import densityVert from '../shaders/density.vert.glsl?raw';
import densityFrag from '../shaders/density.frag.glsl?raw';

/** Marker diameter (scene-scaled pixels) for `n` live hits: grows like sqrt, capped. */
export function markerSize(n) {
  return Math.min(34, 3.5 + 2.6 * Math.sqrt(n));
}

function makeLayer(capacity, attrs, material) {
  const geo = new THREE.BufferGeometry();
  const arrays = {};
  const position = new Float32Array(capacity * 3);
  geo.setAttribute('position', new THREE.BufferAttribute(position, 3).setUsage(THREE.DynamicDrawUsage));
  arrays.position = position;
  for (const name of attrs) {
    arrays[name] = new Float32Array(capacity);
    geo.setAttribute(name, new THREE.BufferAttribute(arrays[name], 1).setUsage(THREE.DynamicDrawUsage));
  }
  geo.setDrawRange(0, 0);
  const points = new THREE.Points(geo, material);
  points.frustumCulled = false;
  return { geo, arrays, points };
}

function upload(geo, n) {
  for (const attr of Object.values(geo.attributes)) {
    attr.clearUpdateRanges();
    if (n > 0) attr.addUpdateRange(0, n * attr.itemSize);
    attr.needsUpdate = true;
  }
  geo.setDrawRange(0, n);
}

export class Markers {
  constructor({ pixelRatio = 1 } = {}) {
    this.object = new THREE.Group();
    this.markerMat = new THREE.ShaderMaterial({
      vertexShader: markersVert,
      fragmentShader: markersFrag,
      uniforms: {
        uPixelRatio: { value: pixelRatio },
        uTime: { value: 0 },
        uDim: { value: 1 },
        uNormalColor: { value: new THREE.Color(COLORS.normal) },
        uSuspiciousColor: { value: new THREE.Color(COLORS.suspicious) },
        uHighlight: { value: new THREE.Color(COLORS.highlight) },
      },
      transparent: true,
      depthWrite: false,
      // Normal blending: where many markers overlap (a busy region) they stay their own
      // colour instead of adding up to a white blob.
      blending: THREE.NormalBlending,
    });
    this.markers = makeLayer(MARKER_CAPACITY, ['aSize', 'aShare', 'aSelected'], this.markerMat);
    this.markers.points.renderOrder = 3;
    this.densityMat = new THREE.ShaderMaterial({
      vertexShader: densityVert,
      fragmentShader: densityFrag,
      uniforms: { uPixelRatio: { value: pixelRatio } },
      transparent: true,
      depthWrite: false,
      blending: THREE.AdditiveBlending,
    });
    this.density = makeLayer(MARKER_CAPACITY, ['aSize', 'aHeat'], this.densityMat);
    this.density.points.renderOrder = 1;
    this.density.points.visible = false;
    this.object.add(this.density.points, this.markers.points);
    /** What is drawn, in draw order: [{cluster, x, y, z, size}] for hover picking. */
    this.drawn = [];
    this.selectedKey = null;
  }

  /**
   * @param {object[]} clusters busiest first
   * @param {{filter: string, selectedKey?: number|null, density?: boolean}} options
   */
  update(clusters, { filter, selectedKey = null, density = false }) {
    const n = Math.min(clusters.length, MARKER_CAPACITY);
    const m = this.markers.arrays;
    const d = this.density.arrays;
    const max = n > 0 ? countFor(clusters[0], filter) : 1;
    this.drawn.length = 0;
    for (let i = 0; i < n; i++) {
      const c = clusters[i];
      const count = countFor(c, filter);
      const [x, y, z] = latLonToXyz(c.lat, c.lon, GLOBE_RADIUS * 1.006);
      m.position.set([x, y, z], i * 3);
      d.position.set([x, y, z], i * 3);
      const size = markerSize(count);
      m.aSize[i] = size;
      const total = c.normal + c.suspicious;
      m.aShare[i] = filter === 'suspicious' ? 1 : filter === 'normal' ? 0 : total ? c.suspicious / total : 0;
      m.aSelected[i] = c.key === selectedKey ? 1 : 0;
      d.aSize[i] = 26 + 110 * Math.sqrt(count / max);
      d.aHeat[i] = Math.sqrt(count / max);
      this.drawn.push({ cluster: c, x, y, z, size });
    }
    upload(this.markers.geo, n);
    upload(this.density.geo, n);
    this.density.points.visible = density;
    // In the density view the heat speaks; markers step back to faint rings.
    this.markerMat.uniforms.uDim.value = density ? 0.35 : 1;
  }

  setPixelRatio(ratio) {
    this.markerMat.uniforms.uPixelRatio.value = ratio;
    this.densityMat.uniforms.uPixelRatio.value = ratio;
  }

  tick(time) {
    // The selected ring pulses as sin(4 t): hand the GPU t modulo that period (pi/2 s), so
    // the uniform stays small (float32) however long the page runs, with no jump.
    this.markerMat.uniforms.uTime.value = time % (Math.PI / 2);
  }

  dispose() {
    this.markers.geo.dispose();
    this.density.geo.dispose();
    this.markerMat.dispose();
    this.densityMat.dispose();
  }
}
