// The one owner of the renderer, the camera, the controls and the animation loop. Scene
// layers are added here and get tick(time) every frame; nothing else touches the camera.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLOBE_RADIUS } from '../config.js';
import { latLonToXyz, xyzToLatLon, slerp, easeInOutCubic } from '../data/geo.js';

const RESUME_AUTOROTATE_MS = 4000;

export function createLoop(container, { onPixelRatio } = {}) {
  const renderer = new THREE.WebGLRenderer({ antialias: true, powerPreference: 'high-performance' });
  const pixelRatio = () => Math.min(window.devicePixelRatio || 1, 2);
  renderer.setPixelRatio(pixelRatio());
  renderer.setClearColor(0x02050d, 1);
  renderer.domElement.setAttribute('aria-hidden', 'true');
  container.appendChild(renderer.domElement);

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(40, 1, 1, 5000);
  camera.position.set(...latLonToXyz(28, -40, GLOBE_RADIUS * 3.9));
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = true;
  controls.dampingFactor = 0.07;
  controls.enablePan = false;
  controls.rotateSpeed = 0.45;
  controls.zoomSpeed = 0.7;
  controls.minDistance = GLOBE_RADIUS * 1.35;
  controls.maxDistance = GLOBE_RADIUS * 6;
  controls.autoRotateSpeed = 0.35;

  const layers = [];
  // Scratch vectors for project(), which runs for every marker on pointer moves.
  const scratch = new THREE.Vector3();
  const toCamera = new THREE.Vector3();
  let autoRotate = true;
  let interacting = false;
  let resumeAt = 0;
  let flight = null;
  let paused = false;
  let pausedAt = 0;
  const clock0 = performance.now();
  const wall = () => (performance.now() - clock0) / 1000;

  controls.addEventListener('start', () => {
    interacting = true;
    flight = null;
  });
  controls.addEventListener('end', () => {
    interacting = false;
    resumeAt = performance.now() + RESUME_AUTOROTATE_MS;
  });

  let insets = { top: 0, right: 0, bottom: 0, left: 0 };

  function resize() {
    const w = container.clientWidth || 1;
    const h = container.clientHeight || 1;
    renderer.setPixelRatio(pixelRatio());
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    // Keep the whole globe in view on narrow screens.
    camera.fov = w / h < 0.8 ? 55 : 40;
    // Centre the globe in the part of the screen that panels leave free.
    const dx = (insets.left - insets.right) / 2;
    const dy = (insets.top - insets.bottom) / 2;
    if (dx || dy) camera.setViewOffset(w, h, -dx, -dy, w, h);
    else camera.clearViewOffset();
    camera.updateProjectionMatrix();
    if (onPixelRatio) onPixelRatio(pixelRatio());
  }
  new ResizeObserver(resize).observe(container);
  resize();

  // CPU time spent per frame in our code and in three's render call (not the GPU's time).
  const cpuMs = new Float64Array(120);
  let frames = 0;

  function frame() {
    const now = performance.now();
    if (flight) {
      const t = Math.min(1, (now - flight.start) / flight.ms);
      camera.position.set(...slerp(flight.from, flight.to, easeInOutCubic(t)));
      if (t >= 1) {
        flight = null;
        resumeAt = now + RESUME_AUTOROTATE_MS * 2;
      }
    }
    controls.autoRotate = autoRotate && !interacting && !flight && now >= resumeAt;
    controls.update();
    const time = sceneTime();
    for (const layer of layers) layer.tick(time);
    renderer.render(scene, camera);
    cpuMs[frames++ % cpuMs.length] = performance.now() - now;
  }
  renderer.setAnimationLoop(frame);

  /** Scene time in seconds: the page's clock, frozen while paused. */
  function sceneTime() {
    return paused ? pausedAt : wall();
  }

  return {
    renderer,
    /** Wall time in the page's clock (seconds), what hits are stamped with. */
    wallTime: wall,
    sceneTime,
    add(layer) {
      layers.push(layer);
      scene.add(layer.object);
    },
    /** CSS pixels covered by panels on each side; the globe centres in the rest. */
    setInsets(next) {
      insets = { top: 0, right: 0, bottom: 0, left: 0, ...next };
      resize();
    },
    setAutoRotate(on) {
      autoRotate = on;
      resumeAt = 0;
    },
    setPaused(on) {
      if (on && !paused) pausedAt = wall();
      paused = on;
    },
    /** Flies the camera over lat/lon, closer in, smoothly. */
    flyTo(lat, lon, { ms = 1400 } = {}) {
      const distance = Math.min(camera.position.length(), GLOBE_RADIUS * 2.9);
      flight = {
        from: camera.position.toArray(),
        to: latLonToXyz(lat, lon, distance),
        start: performance.now(),
        ms,
      };
    },
    /** Rotates by keyboard: degrees of longitude and latitude, and a zoom factor. */
    nudge(dLon, dLat, zoom = 1) {
      flight = null;
      const [lat, lon] = xyzToLatLon(...camera.position.toArray());
      const distance = Math.min(
        controls.maxDistance,
        Math.max(controls.minDistance, camera.position.length() * zoom),
      );
      const nextLat = Math.max(-80, Math.min(80, lat + dLat));
      camera.position.set(...latLonToXyz(nextLat, lon + dLon, distance));
      resumeAt = performance.now() + RESUME_AUTOROTATE_MS;
    },
    /** Where the camera looks from: lat/lon below it and its distance from the centre. */
    cameraState() {
      const [lat, lon] = xyzToLatLon(...camera.position.toArray());
      return { lat, lon, distance: camera.position.length(), flying: !!flight };
    },
    /** Screen position (CSS pixels in the container) of a scene point, and whether it faces us. */
    project(x, y, z) {
      const v = scratch.set(x, y, z);
      toCamera.subVectors(camera.position, v);
      const distance = toCamera.length();
      const facing = v.dot(toCamera) / (v.length() * distance) > 0.05;
      v.project(camera);
      return {
        x: ((v.x + 1) / 2) * container.clientWidth,
        y: ((1 - v.y) / 2) * container.clientHeight,
        facing,
        distance,
      };
    },
    /** Mean and worst CPU milliseconds per frame over the last 120 frames. */
    frameStats() {
      const n = Math.min(frames, cpuMs.length);
      let sum = 0;
      let max = 0;
      for (let i = 0; i < n; i++) {
        sum += cpuMs[i];
        max = Math.max(max, cpuMs[i]);
      }
      return { frames, meanMs: n ? sum / n : 0, maxMs: max, drawCalls: renderer.info.render.calls };
    },
    /** The CPU milliseconds of the last (up to 120) frames, oldest first, and the frame count (for benchmarks). */
    frameSamples() {
      const n = Math.min(frames, cpuMs.length);
      const ms = [];
      for (let i = frames - n; i < frames; i++) ms.push(cpuMs[i % cpuMs.length]);
      return { frames, ms };
    },
    dispose() {
      renderer.setAnimationLoop(null);
      for (const layer of layers) layer.dispose();
      controls.dispose();
      renderer.dispose();
    },
  };
}
