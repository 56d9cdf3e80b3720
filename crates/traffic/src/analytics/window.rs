//! One key kind's sliding window: a ring of per-second buckets of the data's clock, each a
//! bounded map from key to weights.
//!
//! A bucket holds every key of its second exactly while they fit `capacity`; a new key that
//! does not fit makes room by a Misra–Gries step: with `d` the median count of the bucket,
//! every count loses `d` and the keys left at zero or below are dropped. Every estimate is
//! then a lower bound of the truth, short by at most the bucket's `bound`:
//! - count and suspicious: `bound += d` per step (a kept key lost exactly `d`; a dropped one
//!   had at most `d`; a suspicious count is kept no higher than its count);
//! - bytes: kept keys keep their bytes, so `bound += ` the most bytes of a dropped key.
//!
//! Since at least half the keys lose `d` each, the count bound of a bucket never exceeds
//! `2 × its events / capacity`. The window's answer sums the buckets it covers, estimates
//! and bounds alike; a window whose bound is zero is exact, which it always is while no
//! second had more distinct keys than `capacity`. Memory: at most `capacity` keys per
//! bucket, whatever the number of keys in the data.

use super::{Map, Weights};

/// One second of one key kind.
#[derive(Debug, Default)]
struct Bucket {
    /// The second it holds (meaningless while `keys` and `total` are empty).
    second: i64,
    keys: Map<u128, Weights>,
    /// Every event of the second, with or without a key of this kind: always exact.
    total: Weights,
    /// How far below the truth any key's estimate in this bucket may be.
    bound: Weights,
}

impl Bucket {
    fn reset(&mut self, second: i64) {
        self.second = second;
        self.keys.clear();
        self.total = Weights::default();
        self.bound = Weights::default();
    }

    /// Drops keys (Misra–Gries step) until fewer than `capacity` remain.
    fn make_room(&mut self, capacity: usize, scratch: &mut Vec<u64>) {
        while !self.keys.is_empty() && self.keys.len() >= capacity {
            scratch.clear();
            scratch.extend(self.keys.values().map(|w| w.count));
            let middle = (scratch.len() - 1) / 2;
            let (_, &mut d, _) = scratch.select_nth_unstable(middle);
            let mut dropped_bytes = 0;
            self.keys.retain(|_, w| {
                if w.count <= d {
                    dropped_bytes = dropped_bytes.max(w.bytes);
                    false
                } else {
                    w.count -= d;
                    w.suspicious = w.suspicious.min(w.count);
                    true
                }
            });
            self.bound.count += d;
            self.bound.suspicious += d;
            self.bound.bytes = self.bound.bytes.saturating_add(dropped_bytes);
        }
    }
}

/// The window of one key kind: `len` seconds ending at the data's clock.
#[derive(Debug)]
pub(super) struct Window {
    buckets: Vec<Bucket>,
    capacity: usize,
    /// Earliest second the window has complete data for: a window made longer holds nothing
    /// from before its old start.
    since: i64,
    /// Events older than the window when they arrived.
    pub(super) late: u64,
    scratch: Vec<u64>,
    /// The last second added to and its slot: most events fall in the same second as the
    /// one before, and this spares them a division.
    last: Option<(i64, usize)>,
}

/// What a window holds over its seconds: estimates, totals and the error bound.
#[derive(Debug, Default)]
pub(super) struct Merged {
    pub(super) keys: Map<u128, Weights>,
    pub(super) total: Weights,
    pub(super) bound: Weights,
    /// First and last second covered.
    pub(super) from: i64,
    pub(super) to: i64,
}

impl Window {
    pub(super) fn new(len: u32, capacity: usize) -> Self {
        Self {
            buckets: (0..len.max(1)).map(|_| Bucket::default()).collect(),
            capacity: capacity.max(2),
            since: i64::MIN,
            late: 0,
            scratch: Vec::new(),
            last: None,
        }
    }

    fn len(&self) -> i64 {
        self.buckets.len() as i64
    }

    /// First second of the window when the clock is at `clock`.
    fn from(&self, clock: i64) -> i64 {
        clock.saturating_sub(self.len() - 1).max(self.since)
    }

    /// Counts one event of `second` (the clock being at `clock >= second`), under `key` if
    /// it has one of this kind. Returns whether the key is new to its second.
    pub(super) fn add(
        &mut self,
        clock: i64,
        second: i64,
        key: Option<u128>,
        weights: Weights,
    ) -> bool {
        if second < self.from(clock) {
            self.late += 1;
            return false;
        }
        let capacity = self.capacity;
        let slot = match self.last {
            Some((last, slot)) if last == second => slot,
            _ => {
                let slot = second.rem_euclid(self.len()) as usize;
                self.last = Some((second, slot));
                slot
            }
        };
        let bucket = &mut self.buckets[slot];
        if bucket.second != second {
            bucket.reset(second);
        }
        bucket.total.add(weights);
        let Some(key) = key else { return false };
        if let Some(w) = bucket.keys.get_mut(&key) {
            w.add(weights);
            return false;
        }
        if bucket.keys.len() >= capacity {
            bucket.make_room(capacity, &mut self.scratch);
        }
        bucket.keys.insert(key, weights);
        true
    }

    /// The window's keys, totals and bound with the clock at `clock`.
    pub(super) fn merged(&self, clock: i64) -> Merged {
        let from = self.from(clock);
        let mut merged = Merged {
            from,
            to: clock,
            ..Merged::default()
        };
        let covered = |b: &&Bucket| b.second >= from && b.second <= clock && b.total.count > 0;
        // Room for every entry at once: growing the map step by step would rehash it again
        // and again (keys repeating across seconds only leave some of it unused).
        let entries: usize = self
            .buckets
            .iter()
            .filter(covered)
            .map(|b| b.keys.len())
            .sum();
        merged.keys.reserve(entries);
        for bucket in self.buckets.iter().filter(covered) {
            merged.total.add(bucket.total);
            merged.bound.add(bucket.bound);
            for (key, w) in &bucket.keys {
                merged.keys.entry(*key).or_default().add(*w);
            }
        }
        merged
    }

    /// Forgets everything (a new era of the data's clock).
    pub(super) fn clear(&mut self) {
        self.last = None;
        for bucket in &mut self.buckets {
            bucket.reset(i64::MIN);
        }
        self.since = i64::MIN;
    }

    /// A window of `len` seconds with the clock at `clock`, keeping the seconds that still
    /// fit; a longer window starts where the old one did (it holds nothing older).
    pub(super) fn resize(&mut self, len: u32, clock: Option<i64>) {
        let len = i64::from(len.max(1));
        if len == self.len() {
            return;
        }
        if let Some(clock) = clock
            && len > self.len()
        {
            self.since = self.from(clock);
        }
        self.last = None;
        let old = std::mem::take(&mut self.buckets);
        self.buckets = (0..len).map(|_| Bucket::default()).collect();
        let from = clock.map_or(i64::MIN, |c| c.saturating_sub(len - 1));
        for bucket in old {
            if bucket.total.count > 0 && bucket.second >= from {
                let slot = bucket.second.rem_euclid(len) as usize;
                self.buckets[slot] = bucket;
            }
        }
    }

    /// Holds at most `capacity` keys per second from now on, dropping keys at once where a
    /// second holds more.
    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(2);
        for bucket in &mut self.buckets {
            if bucket.keys.len() > self.capacity {
                bucket.make_room(self.capacity + 1, &mut self.scratch);
                bucket.keys.shrink_to(self.capacity);
            }
        }
    }

    /// Bytes held by the buckets' maps (their allocated capacity), roughly.
    pub(super) fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u128, Weights)>() + 1;
        std::mem::size_of::<Self>()
            + self
                .buckets
                .iter()
                .map(|b| std::mem::size_of::<Bucket>() + b.keys.capacity() * entry)
                .sum::<usize>()
            + self.scratch.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Weights {
        Weights {
            count: 1,
            bytes: 1,
            suspicious: 0,
        }
    }

    #[test]
    fn a_full_bucket_halves_itself_and_states_what_it_may_have_lost() {
        let mut window = Window::new(10, 4);
        for key in 0..4 {
            for _ in 0..=key {
                window.add(5, 5, Some(key), one());
            }
        }
        // Counts 1, 2, 3, 4: median 2; keys 0 and 1 go, 2 and 3 keep 1 and 2.
        window.add(5, 5, Some(9), one());
        let merged = window.merged(5);
        assert_eq!(merged.bound.count, 2);
        assert_eq!(merged.total.count, 11);
        let mut keys: Vec<_> = merged.keys.iter().map(|(k, w)| (*k, w.count)).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![(2, 1), (3, 2), (9, 1)]);
    }

    #[test]
    fn seconds_older_than_the_window_are_late_and_not_counted() {
        let mut window = Window::new(3, 16);
        window.add(10, 8, Some(1), one());
        window.add(10, 7, Some(1), one());
        assert_eq!(window.late, 1);
        assert_eq!(window.merged(10).total.count, 1);
        assert_eq!(window.merged(11).total.count, 0, "second 8 left the window");
    }

    #[test]
    fn a_longer_window_holds_nothing_from_before_its_old_start() {
        let mut window = Window::new(2, 16);
        window.add(10, 9, Some(1), one());
        window.add(10, 10, Some(1), one());
        window.resize(5, Some(10));
        window.add(10, 8, Some(1), one());
        assert_eq!(window.late, 1, "second 8 was already gone");
        let merged = window.merged(11);
        assert_eq!((merged.from, merged.total.count), (9, 2));
        assert_eq!(window.merged(14).from, 10);
    }
}
