uniform vec3 uNormalColor;
uniform vec3 uSuspiciousColor;

varying float vAlpha;
varying float vKind;

void main() {
  if (vAlpha < 0.004) discard;
  vec3 color = vKind > 0.5 ? uSuspiciousColor : uNormalColor;
  gl_FragColor = vec4(color, vAlpha * 0.8);
  #include <colorspace_fragment>
}
