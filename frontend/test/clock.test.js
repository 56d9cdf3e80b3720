import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER, REBASE_SECS, SpawnClock } from '../src/data/clock.js';
import { FADE_MAX } from '../src/config.js';

const f32 = Math.fround;
const smoothstep = (a, b, x) => {
  const t = Math.min(1, Math.max(0, (x - a) / (b - a)));
  return t * t * (3 - 2 * t);
};
/** The point shader's alpha (points.vert.glsl), in float32 as the GPU computes it. */
function alpha(uniform, spawn, fade) {
  const age = f32(f32(uniform) - f32(spawn));
  if (age < 0 || age > fade) return 0;
  return smoothstep(0, 0.3, age) * (1 - smoothstep(0.35, 1, f32(age / fade)));
}

const DAY = 86_400;
const MONTH = 31 * DAY;

/** One hit's fade, frame by frame (60 fps) over `fade` seconds, spawned at page time `t0`. */
function fadeCurve(clock, slot, t0, fade) {
  clock.set(slot, t0);
  const curve = [];
  for (let frame = 0; frame <= fade * 60; frame++) {
    const time = t0 + frame / 60;
    const { uniform } = clock.tick(time);
    curve.push(alpha(uniform, clock.gpu[slot], fade));
  }
  return curve;
}

test('after a simulated month the values fed to the GPU stay small and a fade is the same as in the first minute', () => {
  const clock = new SpawnClock(64);
  const fade = 10;
  const first = fadeCurve(clock, 0, 1.234, fade);
  // A month of page time, a frame every second and a hit every 7 s into the ring.
  let slot = 1;
  let largest = 0;
  for (let time = 20; time < MONTH; time += 1) {
    if (time % 7 === 0) clock.set(slot++ % 64, time);
    const { uniform } = clock.tick(time);
    largest = Math.max(largest, Math.abs(uniform));
    for (let i = 0; i < 64; i++) {
      const age = time - clock.exact[i];
      if (age <= FADE_MAX) largest = Math.max(largest, Math.abs(clock.gpu[i]));
    }
  }
  assert.ok(largest < REBASE_SECS + FADE_MAX, `largest value fed to the GPU: ${largest}`);
  const late = fadeCurve(clock, 0, MONTH + 1.234, fade);
  assert.equal(late.length, first.length);
  let worst = 0;
  for (let i = 0; i < first.length; i++) worst = Math.max(worst, Math.abs(late[i] - first[i]));
  assert.ok(worst < 1e-3, `the month-old page fades like a new one (worst alpha difference ${worst})`);
  // What the old clock (seconds since page load, unrebased) would have drawn a month in: the
  // comparison above is sensitive enough to see it.
  let naive = 0;
  for (let frame = 0; frame <= fade * 60; frame++) {
    const t0 = MONTH + 1.234;
    naive = Math.max(naive, Math.abs(alpha(t0 + frame / 60, t0, fade) - first[frame]));
  }
  assert.ok(naive > 0.05, `float32 seconds since load step visibly after a month (${naive})`);
});

test('moving the base rewrites every live spawn from its exact time; the uniform restarts near zero', () => {
  const clock = new SpawnClock(4, 100);
  clock.set(0, 95);
  clock.set(1, 99.5);
  assert.deepEqual(clock.tick(99.9), { uniform: 99.9, rebased: false });
  const { uniform, rebased } = clock.tick(100.25);
  assert.equal(rebased, true);
  assert.equal(uniform, 0);
  assert.equal(clock.base, 100.25);
  assert.deepEqual([...clock.gpu], [-5.25, -0.75, NEVER, NEVER]);
  clock.set(2, 101);
  assert.equal(clock.gpu[2], 0.75, 'new spawns count from the new base');
  // The age the GPU sees is the exact age, before and after.
  assert.equal(clock.tick(101.5).uniform - clock.gpu[1], 101.5 - 99.5);
});

test('a hit that arrives during a long pause is rewritten exactly when the scene clock moves on', () => {
  const clock = new SpawnClock(2);
  clock.tick(10); // the scene time freezes at 10 s (paused)
  const arrival = 10 + 3 * DAY + 0.001; // three days later, still paused
  clock.set(0, arrival);
  assert.equal(clock.tick(10).rebased, false, 'a frozen scene clock does not move the base');
  const { uniform, rebased } = clock.tick(arrival + 0.5); // resumed
  assert.equal(rebased, true);
  assert.ok(Math.abs(f32(uniform) - clock.gpu[0] - 0.5) < 1e-6, "the GPU sees its age exactly");
});

test('long-dead and empty slots stay far in the past', () => {
  const clock = new SpawnClock(2, 100);
  clock.set(0, 0);
  clock.tick(2e9);
  assert.deepEqual([...clock.gpu], [NEVER, NEVER]);
  clock.clear();
  assert.deepEqual([...clock.exact], [-Infinity, -Infinity]);
});
