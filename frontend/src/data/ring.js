// Slot bookkeeping for a fixed-capacity ring of GPU vertices. Pure: it says which slots
// to write and which index ranges to upload; the scene layer owns the typed arrays.

export class RingCursor {
  /** @param {number} capacity slots in the ring */
  constructor(capacity) {
    if (!(capacity > 0)) throw new RangeError('capacity must be positive');
    this.capacity = capacity;
    /** Next slot to write. */
    this.head = 0;
    /** Slots written since the last flush, as [start, count] ranges (at most two). */
    this.dirty = [];
    /** Slots written in total (the ring holds the newest `capacity` of them). */
    this.written = 0;
  }

  /** Claims the next slot (overwriting the oldest when full) and returns its index. */
  claim() {
    const slot = this.head;
    this.head = (this.head + 1) % this.capacity;
    this.written += 1;
    this.#markDirty(slot);
    return slot;
  }

  #markDirty(slot) {
    const last = this.dirty[this.dirty.length - 1];
    if (last && last[0] + last[1] === slot && last[1] < this.capacity) {
      last[1] += 1;
    } else if (this.dirty.length >= 2 || (last && last[1] >= this.capacity)) {
      // More than two runs only happens after wrapping more than once: upload everything.
      this.dirty = [[0, this.capacity]];
    } else {
      this.dirty.push([slot, 1]);
    }
  }

  /** The ranges written since the last call, then forgets them. */
  flush() {
    const ranges = this.dirty;
    this.dirty = [];
    return ranges;
  }

  /** Forgets everything (after a snapshot replaced the state). */
  reset() {
    this.head = 0;
    this.written = 0;
    this.dirty = [[0, this.capacity]];
  }
}
