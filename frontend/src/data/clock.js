// The clock the GPU fades by. Shaders see float32, whose step grows with the value: seconds
// since page load would step in 62.5 ms after a week and 250 ms after a month, and the fade
// would stutter. So the time uniform and the spawn-time attribute are both kept relative to
// a base that moves forward every REBASE_SECS of scene time; the spawn times are held
// exactly (float64) on the CPU and the attribute is rewritten from them at each move.
// Pure: typed arrays in, typed arrays out; the scene layer uploads them.

/** Scene seconds between moves of the base: values fed to the GPU stay below this plus the
 * fade window, where a float32 step is 2^-13 s (0.12 ms) or finer. */
export const REBASE_SECS = 1024;

/** Attribute value of an empty slot: older than any fade window. */
export const NEVER = -1e9;

export class SpawnClock {
  /**
   * @param {number} capacity slots (one per point in the ring)
   * @param {number} rebaseSecs scene seconds between moves of the base
   */
  constructor(capacity, rebaseSecs = REBASE_SECS) {
    this.rebaseSecs = rebaseSecs;
    /** Spawn times in page seconds, exact; -Infinity for an empty slot. */
    this.exact = new Float64Array(capacity).fill(-Infinity);
    /** What the GPU gets: spawn time minus `base` (the attribute's array). */
    this.gpu = new Float32Array(capacity).fill(NEVER);
    /** Page time (seconds) that the GPU's values count from. */
    this.base = 0;
  }

  /** Sets a slot's spawn time (page seconds). */
  set(slot, t) {
    this.exact[slot] = t;
    this.gpu[slot] = t - this.base;
  }

  /** Empties every slot. */
  clear() {
    this.exact.fill(-Infinity);
    this.gpu.fill(NEVER);
  }

  /**
   * Advances to scene time `time` (seconds): the value for the time uniform, and whether the
   * base moved (then every slot was rewritten and the whole attribute must be uploaded).
   * @returns {{uniform: number, rebased: boolean}}
   */
  tick(time) {
    let rebased = false;
    if (Math.abs(time - this.base) >= this.rebaseSecs) {
      this.base = time;
      const { exact, gpu } = this;
      // Empty and long-dead slots end up at NEVER (they would only grow more negative).
      for (let i = 0; i < exact.length; i++) gpu[i] = Math.max(NEVER, exact[i] - time);
      rebased = true;
    }
    return { uniform: time - this.base, rebased };
  }
}
