// Arcs from each hit's place to home: one instance per hit, one vertex per point along the
// arc (aT, 0 at the place, 1 at home). The arc flies out from the place, then fades with the
// same clock as the points (uFade); the CPU never touches a live arc again.
attribute float aT;     // per vertex: position along the arc
attribute vec3 aFrom;   // per instance: the hit's place on the globe
attribute float aSpawn; // per instance: spawn time (relative to the clock's base)
attribute float aKind;  // per instance: 0 normal, 1 suspicious

uniform vec3 uHome;
uniform float uTime;
uniform float uFade;
uniform float uFly;
uniform float uShowNormal;
uniform float uShowSuspicious;

varying float vAlpha;
varying float vKind;

void main() {
  float age = uTime - aSpawn;
  float shown = aKind > 0.5 ? uShowSuspicious : uShowNormal;
  if (age < 0.0 || age > uFade || shown < 0.5) {
    gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
    vAlpha = 0.0;
    return;
  }
  float radius = length(uHome);
  vec3 a = normalize(aFrom);
  vec3 b = normalize(uHome);
  float d = acos(clamp(dot(a, b), -1.0, 1.0));
  float s = sin(d);
  // Great-circle interpolation (a straight blend when the two are nearly the same point).
  vec3 dir = s < 1e-3 ? normalize(mix(a, b, aT) + vec3(0.0, 1e-6, 0.0))
                      : (sin((1.0 - aT) * d) * a + sin(aT * d) * b) / s;
  // Longer arcs fly higher.
  float lift = 1.004 + 0.3 * (d / 3.14159265) * sin(3.14159265 * aT);
  vec4 mv = modelViewMatrix * vec4(dir * radius * lift, 1.0);
  gl_Position = projectionMatrix * mv;

  // The head flies from the place to home in uFly seconds; the trail behind it dims.
  float head = clamp(age / uFly, 0.0, 1.0);
  float behind = head - aT;
  float t = age / uFade;
  float fadeIn = smoothstep(0.0, 0.3, age);
  float fadeOut = 1.0 - smoothstep(0.35, 1.0, t);
  vAlpha = fadeIn * fadeOut * step(0.0, behind) * mix(0.2, 0.9, exp(-behind * 4.0));
  vKind = aKind;
}
