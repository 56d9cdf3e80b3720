// The shape of an arc to home, as the GPU draws it. Pure.

/** The per-vertex parameter of one arc drawn as line segments: [0, 1/n, 1/n, 2/n, ..., 1]. */
export function arcParameters(segments) {
  const t = new Float32Array(segments * 2);
  for (let i = 0; i < segments; i++) {
    t[2 * i] = i / segments;
    t[2 * i + 1] = (i + 1) / segments;
  }
  return t;
}
