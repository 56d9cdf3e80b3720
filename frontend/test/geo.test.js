import { test } from 'node:test';
import assert from 'node:assert/strict';
import { latLonToXyz, latLonToXyzInto, xyzToLatLon, arcDegrees, wrapLon, slerp } from '../src/data/geo.js';

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} ≉ ${b}`);

test('the poles and the prime meridian land on the expected axes', () => {
  const north = latLonToXyz(90, 0, 100);
  close(north[1], 100);
  const origin = latLonToXyz(0, 0, 100);
  close(origin[2], 100);
  close(origin[0], 0);
  const east = latLonToXyz(0, 90, 2);
  close(east[0], 2);
});

test('xyz back to lat/lon round-trips real coordinates', () => {
  for (const [lat, lon] of [
    [35.3696, -119.0105],
    [56.1089, 47.4821],
    [-33.86, 151.21],
    [0, 179.9],
  ]) {
    const [la, lo] = xyzToLatLon(...latLonToXyz(lat, lon, 100));
    close(la, lat, 1e-9);
    close(lo, lon, 1e-9);
  }
});

test('arc distance is zero for the same place and 180 for antipodes', () => {
  close(arcDegrees(10, 20, 10, 20), 0, 1e-6);
  close(arcDegrees(0, 0, 0, 180), 180, 1e-6);
  close(arcDegrees(0, 0, 90, 0), 90, 1e-6);
});

test('longitudes wrap into [-180, 180)', () => {
  close(wrapLon(190), -170);
  close(wrapLon(-190), 170);
  close(wrapLon(180), -180);
  close(wrapLon(45), 45);
});

test('slerp keeps the radius between two points of the same length', () => {
  const a = latLonToXyz(0, 0, 300);
  const b = latLonToXyz(40, 100, 300);
  const mid = slerp(a, b, 0.5);
  close(Math.hypot(...mid), 300, 1e-6);
  const end = slerp(a, b, 1);
  b.forEach((v, i) => close(end[i], v, 1e-6));
});

test('the in-place variant writes the same point at an offset', () => {
  const out = new Float32Array(6);
  latLonToXyzInto(out, 3, 35.3696, -119.0105, 100);
  const expected = latLonToXyz(35.3696, -119.0105, 100);
  expected.forEach((v, i) => close(out[3 + i], v, 1e-4));
  assert.equal(out[0], 0);
});
