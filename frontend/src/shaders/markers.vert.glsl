// Merged markers: one per place cell, sized by the live hits there.
attribute float aSize;
attribute float aShare; // suspicious share 0..1
attribute float aSelected;

uniform float uPixelRatio;

varying float vShare;
varying float vSelected;
varying float vFacing;

void main() {
  vec4 mv = modelViewMatrix * vec4(position, 1.0);
  vec3 n = normalize(normalMatrix * normalize(position));
  vFacing = dot(n, normalize(-mv.xyz));
  vShare = aShare;
  vSelected = aSelected;
  gl_PointSize = aSize * uPixelRatio * (300.0 / -mv.z);
  gl_Position = projectionMatrix * mv;
}
