// Latitude/longitude maths: the one place that knows how the globe is oriented.
// Pure functions over plain arrays, so node tests run without three.

const DEG = Math.PI / 180;

/**
 * A point on a sphere of `radius` for latitude/longitude in degrees.
 * Orientation (three.js, y up): north pole at +y, lon 0 / lat 0 at +z, lon 90°E at +x.
 * @returns {[number, number, number]}
 */
export function latLonToXyz(lat, lon, radius = 1) {
  const phi = lat * DEG;
  const lambda = lon * DEG;
  const c = Math.cos(phi);
  return [radius * c * Math.sin(lambda), radius * Math.sin(phi), radius * c * Math.cos(lambda)];
}

/** latLonToXyz written into `out` at `offset` (no allocation, for hot paths). */
export function latLonToXyzInto(out, offset, lat, lon, radius = 1) {
  const phi = lat * DEG;
  const lambda = lon * DEG;
  const c = Math.cos(phi);
  out[offset] = radius * c * Math.sin(lambda);
  out[offset + 1] = radius * Math.sin(phi);
  out[offset + 2] = radius * c * Math.cos(lambda);
  return out;
}

/** The inverse of latLonToXyz: [lat, lon] in degrees for any non-zero vector. */
export function xyzToLatLon(x, y, z) {
  const r = Math.hypot(x, y, z);
  if (r === 0) return [0, 0];
  const lat = Math.asin(Math.max(-1, Math.min(1, y / r))) / DEG;
  const lon = Math.atan2(x, z) / DEG;
  return [lat, lon];
}

/** Great-circle distance in degrees of arc between two lat/lon points. */
export function arcDegrees(lat1, lon1, lat2, lon2) {
  const a = latLonToXyz(lat1, lon1);
  const b = latLonToXyz(lat2, lon2);
  const dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  return Math.acos(Math.max(-1, Math.min(1, dot))) / DEG;
}

/** Longitude wrapped into [-180, 180). */
export function wrapLon(lon) {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

/** Spherical interpolation between two unit-ish vectors (for camera flights). */
export function slerp(a, b, t) {
  const la = Math.hypot(...a);
  const lb = Math.hypot(...b);
  const ua = a.map((v) => v / la);
  const ub = b.map((v) => v / lb);
  const dot = Math.max(-1, Math.min(1, ua[0] * ub[0] + ua[1] * ub[1] + ua[2] * ub[2]));
  const omega = Math.acos(dot);
  const len = la + (lb - la) * t;
  if (omega < 1e-6) return ua.map((v, i) => (v + (ub[i] - v) * t) * len);
  const s = Math.sin(omega);
  const wa = Math.sin((1 - t) * omega) / s;
  const wb = Math.sin(t * omega) / s;
  return ua.map((v, i) => (v * wa + ub[i] * wb) * len);
}

/** Smooth ease for animations, 0..1 → 0..1. */
export function easeInOutCubic(t) {
  return t < 0.5 ? 4 * t * t * t : 1 - (-2 * t + 2) ** 3 / 2;
}
