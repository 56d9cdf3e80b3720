uniform vec3 uColor;
varying vec3 vNormal;
varying vec3 vViewDir;

void main() {
  // Back faces of a sphere 1.16x the globe's radius. Facing away from us, d runs from 0 at
  // the atmosphere's outer edge to about -0.51 where the globe's own edge is seen: glow
  // strongest against the globe, fading smoothly to nothing at the outer edge.
  float d = dot(vNormal, vViewDir);
  float t = clamp(-d / 0.51, 0.0, 1.0);
  float glow = pow(t, 3.0) * 0.9;
  gl_FragColor = vec4(uColor * glow, glow);
  #include <colorspace_fragment>
}
