varying float vHeat;
varying float vFacing;

// A perceptually ordered ramp (dark purple → magenta → orange → pale yellow, like "inferno").
vec3 ramp(float t) {
  vec3 a = vec3(0.23, 0.05, 0.42);
  vec3 b = vec3(0.80, 0.22, 0.45);
  vec3 c = vec3(0.98, 0.60, 0.15);
  vec3 d = vec3(0.99, 0.97, 0.70);
  return t < 0.33 ? mix(a, b, t / 0.33) : t < 0.66 ? mix(b, c, (t - 0.33) / 0.33) : mix(c, d, (t - 0.66) / 0.34);
}

void main() {
  vec2 p = gl_PointCoord - 0.5;
  float r2 = dot(p, p) * 4.0;
  if (r2 > 1.0) discard;
  float g = exp(-r2 * 4.0);
  float a = g * (0.45 + 0.55 * vHeat) * smoothstep(-0.05, 0.3, vFacing);
  gl_FragColor = vec4(ramp(vHeat) * a, a);
  #include <colorspace_fragment>
}
