uniform vec3 uNormalColor;
uniform vec3 uSuspiciousColor;
uniform vec3 uMarkColor;

varying float vAlpha;
varying float vPulse;
varying float vKind;
varying float vMark;

void main() {
  vec2 p = gl_PointCoord - 0.5;
  float grow = 1.0 + 3.0 * (1.0 - vPulse) * step(vPulse, 0.999);
  // Distances in units of the settled dot (the sprite is `grow` times larger while rippling).
  vec2 q = p * grow;
  float r = vKind > 0.5 ? (abs(q.x) + abs(q.y)) * 0.85 : length(q); // suspicious: a diamond
  float core = smoothstep(0.5, 0.15, r);
  float halo = exp(-r * r * 9.0) * 0.35;
  // Ripple ring expanding from the dot to the sprite's edge, fading as it goes.
  float ringR = mix(0.25, 0.5 * grow, vPulse);
  float ring = (1.0 - vPulse) * smoothstep(0.09, 0.0, abs(length(q) - ringR));
  // Bright while it ripples in, then a quieter dot: the marker carries the count.
  float settle = mix(0.55, 1.0, 1.0 - vPulse);
  float a = (core * settle + halo * settle + ring) * vAlpha;
  if (a < 0.004) discard;
  vec3 color = vKind > 0.5 ? uSuspiciousColor : uNormalColor;
  color = mix(color, uMarkColor, vMark);
  gl_FragColor = vec4(color, a);
  #include <colorspace_fragment>
}
