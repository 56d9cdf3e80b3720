uniform vec3 uNormalColor;
uniform vec3 uSuspiciousColor;
uniform vec3 uHighlight;
uniform float uTime;
uniform float uDim;

varying float vShare;
varying float vSelected;
varying float vFacing;

void main() {
  vec2 p = gl_PointCoord - 0.5;
  float d = length(p) * 2.0; // 0 centre .. 1 edge
  if (d > 1.0) discard;
  vec3 color = mix(uNormalColor, uSuspiciousColor, step(0.5, vShare));
  float fill = smoothstep(1.0, 0.0, d) * 0.28;
  float edge = smoothstep(0.14, 0.0, abs(d - 0.8)) * 0.95;
  // An orange arc share of the ring says how much of a place's traffic is suspicious.
  float angle = atan(p.x, p.y) / 6.2831853 + 0.5;
  vec3 ringColor = angle < vShare ? uSuspiciousColor : uNormalColor;
  float core = smoothstep(0.3, 0.05, d);
  // Straight (not premultiplied) colour for normal blending: the strongest part wins.
  float a = max(max(fill, edge), core * 0.9);
  vec3 c = (color * fill + ringColor * edge + mix(color, vec3(1.0), 0.15) * core) / max(fill + edge + core, 1e-3);
  if (vSelected > 0.5) {
    float pulse = 0.5 + 0.5 * sin(uTime * 4.0);
    float halo = smoothstep(0.1, 0.0, abs(d - 0.95)) * (0.6 + 0.4 * pulse);
    c = mix(c, uHighlight, clamp(halo, 0.0, 1.0));
    a = max(a, halo);
  }
  a *= smoothstep(-0.05, 0.3, vFacing) * max(uDim, vSelected);
  c *= max(uDim, vSelected);
  gl_FragColor = vec4(c, clamp(a, 0.0, 1.0));
  #include <colorspace_fragment>
}
