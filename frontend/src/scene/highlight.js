// The highlight for a place picked from the list: a pulsing ring lying on the surface.

import * as THREE from 'three';
import { GLOBE_RADIUS, COLORS } from '../config.js';
import { latLonToXyz } from '../data/geo.js';

export class Highlight {
  constructor() {
    this.geometry = new THREE.RingGeometry(2.6, 3.2, 64);
    this.material = new THREE.MeshBasicMaterial({
      color: COLORS.highlight,
      transparent: true,
      opacity: 0.9,
      side: THREE.DoubleSide,
      depthWrite: false,
      blending: THREE.AdditiveBlending,
    });
    this.object = new THREE.Mesh(this.geometry, this.material);
    this.object.visible = false;
    this.object.renderOrder = 5;
    this.since = 0;
  }

  /** Shows the ring at lat/lon, or hides it for null. */
  update(place, time = 0) {
    if (!place) {
      this.object.visible = false;
      return;
    }
    const p = new THREE.Vector3(...latLonToXyz(place.lat, place.lon, GLOBE_RADIUS * 1.008));
    this.object.position.copy(p);
    this.object.lookAt(p.clone().multiplyScalar(2));
    this.object.visible = true;
    this.since = time;
  }

  tick(time) {
    if (!this.object.visible) return;
    const t = (time - this.since) % 1.6;
    const s = 1 + t * 1.2;
    this.object.scale.setScalar(s);
    this.material.opacity = 0.95 * (1 - t / 1.6);
  }

  dispose() {
    this.geometry.dispose();
    this.material.dispose();
  }
}
