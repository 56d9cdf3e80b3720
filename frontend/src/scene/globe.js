// The globe itself: dark ocean sphere with a land mask, dotted continents, country
// borders and coastlines, and a soft atmosphere. Built once from bundled Natural Earth
// data (world-atlas); never touches the DOM or the network.

import * as THREE from 'three';
import { feature, mesh } from 'topojson-client';
import { GLOBE_RADIUS, COLORS } from '../config.js';
import { latLonToXyz } from '../data/geo.js';
import globeVert from '../shaders/globe.vert.glsl?raw';
import globeFrag from '../shaders/globe.frag.glsl?raw';
import atmoVert from '../shaders/atmosphere.vert.glsl?raw';
import atmoFrag from '../shaders/atmosphere.frag.glsl?raw';
import dotsVert from '../shaders/dots.vert.glsl?raw';
import dotsFrag from '../shaders/dots.frag.glsl?raw';

const MASK_W = 2048;
const MASK_H = 1024;
const DOTS = 60000;

export class Globe {
  /** @param {{countries: object, pixelRatio?: number}} options countries: world-atlas topology */
  constructor({ countries, pixelRatio = 1 }) {
    this.object = new THREE.Group();
    this.disposables = [];
    const land = feature(countries, countries.objects.land);
    const mask = drawMask(land);

    const texture = new THREE.CanvasTexture(mask.canvas);
    texture.colorSpace = THREE.NoColorSpace;
    texture.anisotropy = 4;
    const sphereGeo = new THREE.SphereGeometry(GLOBE_RADIUS, 128, 96);
    // SphereGeometry's u starts at -x; rotate so the texture's lon -180 lines up with ours.
    const oceanMat = new THREE.ShaderMaterial({
      vertexShader: globeVert,
      fragmentShader: globeFrag,
      uniforms: {
        uLand: { value: texture },
        uOcean: { value: new THREE.Color(COLORS.ocean) },
        uLandColor: { value: new THREE.Color(COLORS.land) },
        uRim: { value: new THREE.Color(COLORS.atmosphere) },
      },
    });
    const sphere = new THREE.Mesh(sphereGeo, oceanMat);
    sphere.rotation.y = -Math.PI / 2;
    sphere.renderOrder = 0;
    this.object.add(sphere);
    this.disposables.push(sphereGeo, oceanMat, texture);

    const atmoGeo = new THREE.SphereGeometry(GLOBE_RADIUS * 1.16, 96, 64);
    const atmoMat = new THREE.ShaderMaterial({
      vertexShader: atmoVert,
      fragmentShader: atmoFrag,
      uniforms: { uColor: { value: new THREE.Color(COLORS.atmosphere) } },
      side: THREE.BackSide,
      blending: THREE.AdditiveBlending,
      transparent: true,
      depthWrite: false,
    });
    this.object.add(new THREE.Mesh(atmoGeo, atmoMat));
    this.disposables.push(atmoGeo, atmoMat);

    // Dotted continents: a Fibonacci lattice, kept where the mask says land.
    const positions = [];
    const golden = Math.PI * (3 - Math.sqrt(5));
    for (let i = 0; i < DOTS; i++) {
      const y = 1 - (2 * (i + 0.5)) / DOTS;
      const lat = (Math.asin(y) * 180) / Math.PI;
      const lon = ((((i * golden * 180) / Math.PI) % 360) + 360) % 360 - 180;
      if (mask.isLand(lat, lon)) positions.push(...latLonToXyz(lat, lon, GLOBE_RADIUS * 1.001));
    }
    const dotsGeo = new THREE.BufferGeometry();
    dotsGeo.setAttribute('position', new THREE.Float32BufferAttribute(positions, 3));
    this.dotsMat = new THREE.ShaderMaterial({
      vertexShader: dotsVert,
      fragmentShader: dotsFrag,
      uniforms: {
        uColor: { value: new THREE.Color(COLORS.landDots) },
        uSize: { value: 1.9 },
        uPixelRatio: { value: pixelRatio },
      },
      transparent: true,
      depthWrite: false,
    });
    this.object.add(new THREE.Points(dotsGeo, this.dotsMat));
    this.disposables.push(dotsGeo, this.dotsMat);

    // Borders between countries and the coastline, as thin lines just above the surface.
    const borders = mesh(countries, countries.objects.countries, (a, b) => a !== b);
    const coast = mesh(countries, countries.objects.land);
    this.#addLines(borders, COLORS.borders, 0.55, 1.0015);
    this.#addLines(coast, '#4f8fd0', 0.7, 1.0018);
  }

  #addLines(multiLine, color, opacity, scale) {
    const positions = [];
    for (const line of multiLine.coordinates) {
      for (let i = 1; i < line.length; i++) {
        const [lon1, lat1] = line[i - 1];
        const [lon2, lat2] = line[i];
        if (Math.abs(lon2 - lon1) > 180) continue; // a jump across the antimeridian
        positions.push(...latLonToXyz(lat1, lon1, GLOBE_RADIUS * scale));
        positions.push(...latLonToXyz(lat2, lon2, GLOBE_RADIUS * scale));
      }
    }
    const geo = new THREE.BufferGeometry();
    geo.setAttribute('position', new THREE.Float32BufferAttribute(positions, 3));
    const mat = new THREE.LineBasicMaterial({
      color,
      transparent: true,
      opacity,
      depthWrite: false,
      blending: THREE.AdditiveBlending,
    });
    this.object.add(new THREE.LineSegments(geo, mat));
    this.disposables.push(geo, mat);
  }

  setPixelRatio(ratio) {
    this.dotsMat.uniforms.uPixelRatio.value = ratio;
  }

  tick() {}

  dispose() {
    for (const d of this.disposables) d.dispose();
  }
}

/** Land polygons painted into an equirectangular mask (white = land). */
function drawMask(land) {
  const canvas = new OffscreenCanvas(MASK_W, MASK_H);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, MASK_W, MASK_H);
  ctx.fillStyle = '#fff';
  const x = (lon) => ((lon + 180) / 360) * MASK_W;
  const y = (lat) => ((90 - lat) / 180) * MASK_H;
  for (const f of land.features) {
    const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
    for (const poly of polys) {
      ctx.beginPath();
      for (const ring of poly) {
        let prevLon = null;
        ring.forEach(([lon, lat], i) => {
          // Rings that touch the antimeridian jump across it; keep them on one side.
          if (prevLon !== null && Math.abs(lon - prevLon) > 180) lon = lon > 0 ? -180 : 180;
          if (i === 0) ctx.moveTo(x(lon), y(lat));
          else ctx.lineTo(x(lon), y(lat));
          prevLon = lon;
        });
        ctx.closePath();
      }
      ctx.fill('evenodd');
    }
  }
  const pixels = ctx.getImageData(0, 0, MASK_W, MASK_H).data;
  return {
    canvas,
    isLand(lat, lon) {
      const px = Math.min(MASK_W - 1, Math.max(0, Math.floor(x(lon))));
      const py = Math.min(MASK_H - 1, Math.max(0, Math.floor(y(lat))));
      return pixels[(py * MASK_W + px) * 4] > 127;
    },
  };
}
