// Live hits: one vertex per hit in a ring buffer. Age, glow-in, ripple and fade-out are
// all computed here from the spawn time, so the CPU never touches a live point again.
attribute float aSpawn;
attribute float aKind; // 0 normal, 1 suspicious
attribute float aMark; // 1: a hit of the highlighted alert's key

uniform float uTime;
uniform float uFade;
uniform float uPixelRatio;
uniform float uShowNormal;
uniform float uShowSuspicious;
uniform float uMarking; // 1 while an alert's hits are highlighted

varying float vAlpha;
varying float vPulse;
varying float vKind;
varying float vMark;

void main() {
  float age = uTime - aSpawn;
  float shown = aKind > 0.5 ? uShowSuspicious : uShowNormal;
  if (age < 0.0 || age > uFade || shown < 0.5) {
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    gl_PointSize = 0.0;
    return;
  }
  float t = age / uFade;
  float fadeIn = smoothstep(0.0, 0.3, age);
  float fadeOut = 1.0 - smoothstep(0.35, 1.0, t);
  vAlpha = fadeIn * fadeOut;
  vPulse = clamp(age / 1.6, 0.0, 1.0);
  vKind = aKind;
  vMark = aMark * uMarking;
  // While a key is highlighted, its hits stand out and the others step back.
  vAlpha *= uMarking > 0.5 ? mix(0.35, 1.0, aMark) : 1.0;
  vec4 mv = modelViewMatrix * vec4(position, 1.0);
  float base = (aKind > 0.5 ? 7.0 : 5.0) * (1.0 + 0.8 * vMark);
  // A ripple: the sprite starts wide (the ring expands inside it) and settles to a dot.
  float size = base * (1.0 + 3.0 * (1.0 - vPulse) * step(vPulse, 0.999));
  gl_PointSize = size * uPixelRatio * (300.0 / -mv.z);
  gl_Position = projectionMatrix * mv;
}
