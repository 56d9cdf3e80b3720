uniform sampler2D uLand;
uniform vec3 uOcean;
uniform vec3 uLandColor;
uniform vec3 uRim;
varying vec3 vNormal;
varying vec3 vViewDir;
varying vec2 vUv;

void main() {
  float land = texture2D(uLand, vUv).r;
  vec3 base = mix(uOcean, uLandColor, land * 0.85);
  // Soft light from the upper left so the sphere reads as round.
  float light = 0.55 + 0.45 * max(dot(vNormal, normalize(vec3(-0.4, 0.6, 0.7))), 0.0);
  float fresnel = pow(1.0 - max(dot(vNormal, vViewDir), 0.0), 4.0);
  vec3 color = base * light + uRim * fresnel * 0.38;
  gl_FragColor = vec4(color, 1.0);
  #include <colorspace_fragment>
}
