uniform vec3 uColor;
varying float vFacing;

void main() {
  vec2 p = gl_PointCoord - 0.5;
  float d = length(p);
  if (d > 0.5) discard;
  float a = smoothstep(0.5, 0.2, d) * smoothstep(0.0, 0.35, vFacing);
  gl_FragColor = vec4(uColor, a * 0.75);
  #include <colorspace_fragment>
}
